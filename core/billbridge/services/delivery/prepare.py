"""Preparing claimed runs: the bill version, the ledger's earlier document, resolved mappings.

Bills come from the process's :class:`~billbridge.services.bill_cache.BillCache` when submission
put them there, else from the store; everything a batch needs is read in one unit of work.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from billbridge.domain.mappings import mapping_keys
from billbridge.domain.models import Account, Bill, ExternalMapping, LedgerEntry, Run
from billbridge.domain.preparation import build_delivery, settled_document, superseded_by
from billbridge.errors import DestinationValidationError, InvoiceAlreadyPaid, Superseded
from billbridge.plugin.contract import Destination
from billbridge.services.bill_cache import BillCache
from billbridge.services.delivery.groups import TenantGroup
from billbridge.services.delivery.record import Prepared
from billbridge.store import UnitOfWork, UnitOfWorkFactory, atomically

__all__ = ["Preparer"]

BillKey = tuple[str, int]


@attrs.frozen
class _Loaded:
    bills: dict[BillKey, tuple[Bill, Account]]
    ledgers: dict[str, dict[str, LedgerEntry]]
    #: The batch's mappings by ``(entity, id)``, stored order kept.
    mappings: dict[tuple[str, str], list[ExternalMapping]]
    keys: dict[BillKey, set[tuple[str, str]]]


class Preparer:
    """Turns claimed runs into deliveries (or the reason each cannot be sent)."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        bill_cache: BillCache,
        unseal: Callable[[Mapping[str, Any]], dict[str, Any]],
    ) -> None:
        self._uow = uow
        self._cache = bill_cache
        self._unseal = unseal

    def prepare(
        self, group: TenantGroup, destination: Destination, claimed: Sequence[Run]
    ) -> list[Prepared]:
        """One :class:`Prepared` per claimed run, in order."""
        integrations = {i.id: i for i in group.integrations}
        loaded = atomically(self._uow, lambda uow: self._load(uow, group, claimed))
        newest: dict[tuple[str, str], int] = {}
        for run in claimed:
            at = (run.integration_id, run.bill_id)
            newest[at] = max(newest.get(at, run.bill_version), run.bill_version)
        prepared: list[Prepared] = []
        for run in claimed:
            item = Prepared(run=run, integration=integrations[run.integration_id])
            prepared.append(item)
            previous = loaded.ledgers[run.integration_id].get(run.bill_id)
            why = superseded_by(
                run.bill_version, previous, newest[(run.integration_id, run.bill_id)]
            )
            if why is not None:
                item.failure = Superseded(why)
                continue
            settled = settled_document(previous, destination.system_name or destination.title)
            if settled is not None:
                # Read back as paid, voided or deleted: nothing is sent over it.
                item.failure = InvoiceAlreadyPaid(settled)
                continue
            key = (run.bill_id, run.bill_version)
            found = loaded.bills.get(key)
            if found is None:
                item.failure = DestinationValidationError(
                    f"bill {run.bill_id} version {run.bill_version} is not stored: submit it again"
                )
                continue
            bill, account = found
            try:
                item.delivery = build_delivery(
                    run.id,
                    item.integration,
                    destination,
                    bill,
                    account,
                    [m for entity in loaded.keys[key] for m in loaded.mappings.get(entity, ())],
                    previous,
                    self._unseal,
                )
            except Exception as exc:
                item.failure = exc
        return prepared

    def _load(self, uow: UnitOfWork, group: TenantGroup, claimed: Sequence[Run]) -> _Loaded:
        wanted = [(r.bill_id, r.bill_version) for r in claimed]
        bills = self._cache.get_many(wanted)
        missing = [key for key in wanted if key not in bills]
        if missing:
            stored = uow.bills.get_many(missing)
            self._cache.put_many(stored, Counter((r.bill_id, r.bill_version) for r in claimed))
            bills.update(stored)
        ledgers = {
            iid: uow.ledger.get_many(iid, [r.bill_id for r in claimed if r.integration_id == iid])
            for iid in {r.integration_id for r in claimed}
        }
        keys = {key: mapping_keys(*pair) for key, pair in bills.items()}
        # Each delivery is given its own bill's mappings: index the batch's once, by entity,
        # instead of every delivery scanning all of them.
        by_entity: dict[tuple[str, str], list[ExternalMapping]] = {}
        for mapping in uow.mappings.for_entities(
            group.destination, sorted(set().union(*keys.values()))
        ):
            by_entity.setdefault((mapping.m3ter_entity, mapping.m3ter_id), []).append(mapping)
        return _Loaded(bills, ledgers, by_entity, keys)
