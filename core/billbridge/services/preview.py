"""Previews: the exact request an integration would send for a bill, sending and storing nothing."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from billbridge.domain.intake import AccountInput, BillInput, read_pair, read_pair_at
from billbridge.domain.mappings import mapping_keys
from billbridge.domain.models import ExternalMapping, Integration, LedgerEntry, thaw
from billbridge.domain.preparation import build_delivery
from billbridge.errors import BillbridgeError
from billbridge.plugin.manager import PluginRegistry
from billbridge.store import UnitOfWork, UnitOfWorkFactory, atomically

__all__ = ["Previewer"]


class Previewer:
    """Builds a delivery exactly as the worker would and asks the plugin for its request."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        plugins: PluginRegistry,
        unseal: Callable[[Mapping[str, Any]], dict[str, Any]],
    ) -> None:
        self._uow = uow
        self._plugins = plugins
        self._unseal = unseal

    def preview(
        self,
        bill: BillInput,
        account: AccountInput,
        integration_id: str,
        *,
        base_path: str | None = None,
    ) -> dict[str, Any]:
        """The request the integration would send for this bill (see :meth:`Engine.preview`).

        :param base_path: report refused input under ``{base_path}/bill`` and
            ``{base_path}/account`` rather than at the document's own paths.
        """
        if base_path is None:
            parsed_bill, parsed_account = read_pair(bill, account)
        else:
            parsed_bill, parsed_account = read_pair_at(bill, account, base_path)
        keys = sorted(mapping_keys(parsed_bill, parsed_account))

        def load(uow: UnitOfWork) -> tuple[Integration, list[ExternalMapping], LedgerEntry | None]:
            integration = uow.integrations.get(integration_id)
            return (
                integration,
                uow.mappings.for_entities(integration.destination, keys),
                uow.ledger.get(integration.id, parsed_bill.id),
            )

        integration, candidates, previous = atomically(self._uow, load)
        if not self._plugins.has_hook(integration.destination, "preview_bill"):
            raise BillbridgeError(f"{integration.destination} cannot preview invoices")
        delivery = build_delivery(
            "preview",
            integration,
            self._plugins.destination(integration.destination),
            parsed_bill,
            parsed_account,
            candidates,
            previous,
            self._unseal,
        )
        payload = self._plugins.call(
            "preview_bill",
            integration.destination,
            bill=delivery.bill,
            account=delivery.account,
            config=delivery.config,
            mappings=delivery.mappings,
            previous=delivery.previous,
        )
        return thaw(payload)  # type: ignore[no-any-return]
