"""Preparing a bill for one integration: excluded lines, resolved mappings, panel defaults.

The result is what a destination plugin receives: plugins never apply the core's options
themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from billbridge.domain.mappings import require_account_mapping, resolve_mappings
from billbridge.domain.models import (
    Account,
    Bill,
    BillEntityConfig,
    ExternalMapping,
    Integration,
    InvoiceState,
    LedgerEntry,
    LineItem,
    thaw,
)
from billbridge.errors import DestinationValidationError
from billbridge.plugin.contract import Delivery, Destination
from billbridge.plugin.idempotency import idempotency_key

__all__ = [
    "apply_defaults",
    "build_delivery",
    "exclude_lines",
    "settled_document",
    "superseded_by",
]


def exclude_lines(bill: Bill, config: BillEntityConfig) -> Bill:
    """The bill without the lines the integration excludes.

    A line is dropped when its type is excluded, when its product is excluded (the accounting
    product decides where the line has one), or when its aggregation or compound aggregation
    is excluded.
    """
    types = set(config.excluded_line_item_types)
    products = set(config.excluded_products)
    aggregations = set(config.excluded_aggregations)
    if not (types or products or aggregations):
        return bill

    def kept(line: LineItem) -> bool:
        if line.line_item_type in types:
            return False
        if line.product_for_accounting in products:
            return False
        return not (
            (line.aggregation_id and line.aggregation_id in aggregations)
            or (line.compound_aggregation_id and line.compound_aggregation_id in aggregations)
        )

    return attrs.evolve(bill, line_items=tuple(li for li in bill.line_items if kept(li)))


def apply_defaults(config: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration with the panel's top-level defaults filled in where a value is unset.

    Plugins receive the full set of options, so an option added to a panel later works for
    integrations saved before it existed.
    """
    result: dict[str, Any] = thaw(config)
    for name, spec in (schema.get("properties") or {}).items():
        if name not in result and isinstance(spec, Mapping) and "default" in spec:
            result[name] = thaw(spec["default"])
    return result


def build_delivery(
    key: str,
    integration: Integration,
    destination: Destination,
    bill: Bill,
    account: Account,
    candidates: Iterable[ExternalMapping],
    previous: LedgerEntry | None,
    unseal: Callable[[Mapping[str, Any]], dict[str, Any]],
) -> Delivery:
    """Everything a plugin needs to send one bill version through one integration.

    :param key: what identifies the delivery among others (a run id; a preview uses its own).
    :param candidates: the stored mappings of the bill's entities to the destination.
    :param previous: the ledger's entry for this bill through this integration, if any.
    :param unseal: decrypts the configuration's secrets
        (:meth:`~billbridge.services.config_secrets.ConfigSecrets.unseal`).
    :raises MissingMapping: the account has no mapping the destination needs.
    :raises DestinationValidationError: nothing is left to send after the exclusions.
    """
    mappings = resolve_mappings(integration, destination, account, candidates)
    require_account_mapping(integration, destination, account, mappings)
    filtered = exclude_lines(bill, integration.entity_config)
    if not filtered.line_items:
        raise DestinationValidationError(
            "the bill has no lines left after the integration's exclusions: nothing to send"
        )
    return Delivery(
        key=key,
        bill=filtered,
        account=account,
        config=apply_defaults(unseal(integration.destination_config), destination.schema),
        mappings=mappings,
        previous=previous
        if previous is not None and previous.bill_version <= bill.version
        else None,
        idempotency_key=idempotency_key(integration.id, bill.id, bill.version),
    )


def superseded_by(version: int, delivered: LedgerEntry | None, newest_sent: int) -> str | None:
    """Why this bill version must not be sent (``None``: send it).

    An older version never goes over a newer one: not when the ledger holds a newer version
    (it would overwrite the newer invoice), and not beside a newer version of the same bill in
    the same batch (two documents, or the older one last).

    :param delivered: the ledger's entry for the bill through the integration.
    :param newest_sent: the newest version of the bill among the runs sent together.
    """
    if delivered is not None and delivered.bill_version > version:
        document = delivered.external_number or delivered.external_id
        return (
            f"superseded: version {delivered.bill_version} of this bill was already delivered "
            f"({document}); version {version} is not sent over it"
        )
    if newest_sent > version:
        return f"superseded: version {newest_sent} of this bill is sent in its place"
    return None


def settled_document(delivered: LedgerEntry | None, system: str = "the destination") -> str | None:
    """Why a new version must not be sent over the document delivered before (``None``: send).

    A document the status read-back found paid in full, voided or deleted is settled: an update
    would be refused by the destination (or would reopen a closed matter), so the run ends
    INVOICE_ALREADY_PAID before anything is sent. Adjust it there, e.g. with a credit note.

    :param delivered: the ledger's entry for the bill through the integration.
    :param system: the destination's name as people know it, for the message.
    """
    if delivered is None or delivered.status.state is None or not delivered.status.state.settled:
        return None
    status = delivered.status
    document = delivered.external_number or delivered.external_id
    if status.state is InvoiceState.PAID:
        when = f" on {status.paid_on.isoformat()}" if status.paid_on is not None else ""
        what = f"was paid in full{when}"
    elif status.state is InvoiceState.VOIDED:
        what = "was voided"
    else:
        what = "was deleted"
    checked = f" (read back {status.checked_at:%Y-%m-%d %H:%M} UTC)" if status.checked_at else ""
    return (
        f"invoice {document} (version {delivered.bill_version}) {what} in {system}{checked}; "
        "this version was not sent"
    )
