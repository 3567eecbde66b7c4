"""Every bill version received, kept exactly, with the account it was billed to.

One rule, on every path: **a bill version is immutable**. The same ``(bill id, version)`` with
the same content is a no-op; with different content it is a :class:`~billbridge.errors.Conflict`
that names what differs, and nothing of the request is stored (m3ter gives every change to a
bill a new version, so this is a mistake upstream, and runs of that version must keep reading
what they were queued for). The *account* document is the latest one received: a retry after
the customer's details were fixed in m3ter delivers with the fixed details.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import attrs
from sqlalchemy import ColumnElement, and_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from billbridge.domain.diff import differences
from billbridge.domain.intake import Received
from billbridge.domain.models import Account, Bill, converter, parse_account, parse_bill
from billbridge.errors import Conflict, NotFound
from billbridge.store.common import chunks, is_postgres
from billbridge.store.tables import BillRow

__all__ = ["BillRepository"]

BillKey = tuple[str, int]


def _versions(keys: Sequence[BillKey]) -> ColumnElement[bool]:
    """Rows of these ``(bill id, version)`` keys, through the primary key, plus possibly others.

    ``bill_id IN (...) AND version IN (...)``: SQLite answers a row-value ``(bill_id, version)
    IN (...)`` by reading the whole table (every stored document), so each chunk of a backfill
    cost more than the last. This form uses the key on both databases; it can also match another
    asked version of an asked bill, which callers filter out.
    """
    return and_(
        BillRow.bill_id.in_(sorted({bill_id for bill_id, _ in keys})),
        BillRow.version.in_(sorted({version for _, version in keys})),
    )


@attrs.frozen
class _Stored:
    document: str
    account_document: str


class BillRepository:
    """Bill versions as received (see the module's rule)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def save_many(self, received: Sequence[Received], *, received_at: datetime) -> list[Received]:
        """Store bill versions not stored yet; returns the ones that were new.

        :raises Conflict: a version is stored (or appears twice in ``received``) with other
            content; the message names the bill, the version and the fields that differ.
        """
        if not received:
            return []
        first: dict[BillKey, Received] = {}
        for item in received:
            key = (item.bill.id, item.bill.version)
            seen = first.setdefault(key, item)
            if seen is not item:
                _check_same(key, seen.bill, seen.bill_document, item)
        stored = self._stored(list(first))
        fresh: list[Received] = []
        changed_accounts: list[tuple[BillKey, str]] = []
        for key, item in first.items():
            existing = stored.get(key)
            if existing is None:
                fresh.append(item)
                continue
            _check_same(key, None, existing.document, item)
            if existing.account_document != item.account_document:
                changed_accounts.append((key, item.account_document))
        raced = self._insert(fresh, received_at)
        if raced:
            # Stored by a concurrent submission between the read above and the insert: the
            # same rule applies to what it stored.
            for key, existing in self._stored(sorted(raced)).items():
                _check_same(key, None, existing.document, first[key])
            fresh = [item for item in fresh if (item.bill.id, item.bill.version) not in raced]
        for (bill_id, version), account_document in changed_accounts:
            self.session.execute(
                update(BillRow)
                .where(BillRow.bill_id == bill_id, BillRow.version == version)
                .values(account_document=account_document),
                execution_options={"synchronize_session": False},
            )
        return fresh

    def _insert(self, items: Sequence[Received], received_at: datetime) -> set[BillKey]:
        """Insert new bill versions; returns the keys another transaction stored first."""
        if not items:
            return set()
        dialect_insert = postgresql.insert if is_postgres(self.session) else sqlite.insert
        statement = (
            dialect_insert(BillRow)
            .on_conflict_do_nothing(index_elements=[BillRow.bill_id, BillRow.version])
            .returning(BillRow.bill_id, BillRow.version)
        )
        rows = [
            {
                "bill_id": item.bill.id,
                "version": item.bill.version,
                "account_id": item.bill.account_id,
                "document": item.bill_document,
                "account_document": item.account_document,
                "received_at": received_at,
            }
            for item in items
        ]
        inserted = {(row.bill_id, row.version) for row in self.session.execute(statement, rows)}
        return {(i.bill.id, i.bill.version) for i in items} - inserted

    def get_many(self, keys: Iterable[BillKey]) -> dict[BillKey, tuple[Bill, Account]]:
        """Stored bill versions (with their accounts) by ``(bill id, version)``."""
        found: dict[BillKey, tuple[Bill, Account]] = {}
        for key, stored in self._stored(list(dict.fromkeys(keys))).items():
            found[key] = (parse_bill(stored.document), parse_account(stored.account_document))
        return found

    def get(self, bill_id: str, version: int) -> tuple[Bill, Account]:
        """The bill version exactly as received, and its account; or ``NotFound``."""
        found = self.get_many([(bill_id, version)])
        if not found:
            raise NotFound(f"bill {bill_id} version {version} not found")
        return found[(bill_id, version)]

    def _stored(self, keys: Sequence[BillKey]) -> dict[BillKey, _Stored]:
        found: dict[BillKey, _Stored] = {}
        for chunk in chunks(keys):
            asked = set(chunk)
            for row in self.session.execute(
                select(
                    BillRow.bill_id, BillRow.version, BillRow.document, BillRow.account_document
                ).where(_versions(chunk))
            ):
                key = (row.bill_id, row.version)
                if key in asked:  # not another version of an asked bill (see _versions)
                    found[key] = _Stored(row.document, row.account_document)
        return found


def _check_same(key: BillKey, bill: Bill | None, document: str, item: Received) -> None:
    """Raise :class:`Conflict` when ``item`` is not the bill stored (or seen) under ``key``."""
    if document == item.bill_document:
        return  # the same text: nothing to compare
    known = bill if bill is not None else parse_bill(document)
    if known == item.bill:
        return
    changed = differences(converter.unstructure(known), converter.unstructure(item.bill))
    raise Conflict(
        f"bill {key[0]} version {key[1]} was already received with different content "
        f"({', '.join(changed) or 'content'} differ); a bill version never changes: "
        "m3ter gives every change to a bill a new version"
    )
