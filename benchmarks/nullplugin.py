"""A destination that costs nothing: what is left of a delivery is the engine's own work.

``nullbooks`` answers every ``send_bills`` / ``send_bill`` at once, in process, without HTTP
and without rate limits, with one :class:`~billbridge.plugin.contract.SendResult` per delivery. It
is
registered like any plugin (an object holding hook implementations), so the engine runs its
whole delivery path: routing, claiming, preparation, mapping resolution, the hook call, and
recording outcomes, runs, attempts and the ledger.

It declares no OAuth (no credential, no token refresh) and batches of :data:`BATCH_SIZE`, the
size Xero takes per request; ``batch=False`` builds the variant without ``send_bills``, to
measure the engine's single-send path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from billbridge import hookimpl
from billbridge.domain.models import Account, Bill, LedgerEntry
from billbridge.plugin.contract import (
    Connection,
    Delivery,
    DeliveryOutcome,
    Destination,
    Limits,
    ResolvedMappings,
    SendResult,
)

__all__ = ["BATCH_SIZE", "KEY", "NullBooks", "plugin"]

KEY = "nullbooks"
BATCH_SIZE = 50

PANEL: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Null books",
    "description": "A destination that accepts everything at once (benchmarks).",
    "type": "object",
    "properties": {},
    "additionalProperties": False,
}


class NullBooks:
    """The plugin object: hook implementations as attributes (pluggy needs a hashable object).

    :param batch: offer ``send_bills`` (else only ``send_bill``).
    :param batch_size: deliveries per ``send_bills`` call the engine is told to make.
    """

    def __init__(self, *, batch: bool = True, batch_size: int = BATCH_SIZE) -> None:
        self.invoices = 0
        limits = Limits(batch_size=batch_size if batch else 1, concurrency=10)

        @hookimpl
        def register_destinations() -> list[Destination]:
            return [
                Destination(
                    key=KEY,
                    title="Null books",
                    schema=PANEL,
                    external_tables=("Customer", "Item"),
                    limits=limits,
                    account_table="Customer",
                    item_table="Item",
                    api_base_url="https://nullbooks.invalid",
                    system_name="Null books",
                )
            ]

        @hookimpl
        def send_bill(
            bill: Bill,
            account: Account,
            config: Mapping[str, Any],
            mappings: ResolvedMappings,
            previous: LedgerEntry | None,
            idempotency_key: str,
        ) -> SendResult:
            self.invoices += 1
            return SendResult(external_id=bill.id, number=bill.sequential_invoice_number)

        self.register_destinations = register_destinations
        self.send_bill = send_bill
        if batch:

            @hookimpl
            def send_bills(
                connection: Connection, deliveries: Sequence[Delivery]
            ) -> Sequence[DeliveryOutcome]:
                self.invoices += len(deliveries)
                return [
                    SendResult(external_id=d.bill.id, number=d.bill.sequential_invoice_number)
                    for d in deliveries
                ]

            self.send_bills = send_bills


def plugin(*, batch: bool = True, batch_size: int = BATCH_SIZE) -> NullBooks:
    """A fresh ``nullbooks`` plugin object (see :class:`NullBooks`)."""
    return NullBooks(batch=batch, batch_size=batch_size)
