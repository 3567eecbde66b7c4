"""Submitting bills: read them, store each version once, route it, record every decision.

``engine.submit_bill(bill, account)`` is what a billing service calls when m3ter produces or
regenerates a bill; ``engine.submit_bills(pairs)`` does the same for many (a backfill), in
bounded chunks with set-based queries so memory stays flat and throughput high.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import simplejson

from billbridge.domain.models import (
    Account,
    Bill,
    Integration,
    Run,
    RunStatus,
    Skip,
    dumps,
    parse_account,
    parse_bill,
)
from billbridge.domain.routing import account_document, route
from billbridge.errors import FieldError, ValidationFailed
from billbridge.store import IntegrationRepository, new_id
from billbridge.store.queue import DeliveryQueue

if TYPE_CHECKING:
    from billbridge.engine import Engine

__all__ = ["Received", "SubmitCounts", "SubmitResult", "Submitter", "read_pair", "receive"]

BillInput = Bill | Mapping[str, Any] | str | bytes
AccountInput = Account | Mapping[str, Any] | str | bytes


@attrs.frozen
class SubmitResult:
    """What submitting bills decided: runs queued, and skips with their reasons."""

    runs: tuple[Run, ...]
    skips: tuple[Skip, ...]
    bills: int = 1

    def __add__(self, other: SubmitResult) -> SubmitResult:
        return SubmitResult(
            self.runs + other.runs, self.skips + other.skips, self.bills + other.bills
        )


@attrs.frozen
class Received:
    """A bill and its account as read, with the documents to store exactly as received."""

    bill: Bill
    account: Account
    bill_document: str
    account_document: str


def _document_text(value: Any, parsed: Any) -> str:
    # Stored exactly as m3ter sent it: the text itself, or the parsed JSON written back (the
    # fast C encoder, exact Decimals); domain objects are written through the converter.
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, Mapping):
        return simplejson.dumps(value, use_decimal=True, ensure_ascii=False, default=str)
    return dumps(parsed)


def receive(bill: BillInput, account: AccountInput) -> Received:
    """Read a bill and its account, check they belong together, keep their documents."""
    parsed_bill, parsed_account = read_pair(bill, account)
    return Received(
        parsed_bill,
        parsed_account,
        _document_text(bill, parsed_bill),
        _document_text(account, parsed_account),
    )


def read_pair(bill: BillInput, account: AccountInput) -> tuple[Bill, Account]:
    """Parse a bill and its account (m3ter JSON or domain objects) and check they belong."""
    parsed_bill = bill if isinstance(bill, Bill) else parse_bill(bill)
    parsed_account = account if isinstance(account, Account) else parse_account(account)
    if parsed_bill.account_id != parsed_account.id:
        raise ValidationFailed(
            [
                FieldError(
                    "/account/id",
                    f"the bill is for account {parsed_bill.account_id}, "
                    f"but the account given is {parsed_account.id}",
                )
            ],
            summary="the account does not match the bill",
        )
    return parsed_bill, parsed_account


class Submitter:
    """Routes bills for an engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def submit(self, received: Iterable[Received], *, keep: bool = True) -> SubmitResult:
        """Store, route and record one chunk of bills in one unit of work.

        :param keep: return the runs and skips (False for backfills: only counts matter).
        """
        batch = list(received)
        items = [(r.bill, r.account) for r in batch]
        engine = self._engine
        now = engine.clock()

        def work(session: Any) -> SubmitResult:
            queue = DeliveryQueue(session)
            integrations: list[Integration] = IntegrationRepository(session).list(
                entity_type="Bill"
            )
            queue.save_bills(
                [(r.bill, r.account, r.bill_document, r.account_document) for r in batch],
                received_at=now,
            )
            bill_ids = [bill.id for bill, _ in items]
            delivered = queue.delivered_versions(bill_ids)
            queued = queue.queued_versions(bill_ids)
            runs: list[Run] = []
            skips: list[Skip] = []
            for bill, account in items:
                document = account_document(account)
                for integration in integrations:
                    decision = route(
                        bill,
                        account,
                        integration,
                        delivered_version=delivered.get((integration.id, bill.id)),
                        queued_versions=frozenset(queued.get((integration.id, bill.id), ())),
                        account_json=document,
                    )
                    if decision.take:
                        runs.append(
                            Run(
                                id=new_id(),
                                integration_id=integration.id,
                                bill_id=bill.id,
                                bill_version=bill.version,
                                account_id=account.id,
                                status=RunStatus.WAITING,
                                created_at=now,
                                updated_at=now,
                            )
                        )
                        # The same version twice in one chunk is queued once.
                        queued.setdefault((integration.id, bill.id), set()).add(bill.version)
                    else:
                        skips.append(
                            Skip(
                                id=new_id(),
                                integration_id=integration.id,
                                bill_id=bill.id,
                                bill_version=bill.version,
                                account_id=account.id,
                                reason=decision.reason or "not taken",
                                created_at=now,
                            )
                        )
            queue.add_runs(runs)
            queue.add_skips(skips)
            # Before the commit, not after: once committed, another thread may claim these runs
            # at once, miss the cache, load the bill with its own count, and this count would
            # then be added on top (the bill kept until the cache's bound pushes it out).
            engine.bill_cache.put_many(
                {(b.id, b.version): (b, a) for b, a in items},
                Counter((r.bill_id, r.bill_version) for r in runs),
            )
            if keep:
                return SubmitResult(tuple(runs), tuple(skips), len(items))
            return SubmitResult((), (), len(items))

        return engine._unit_of_work(work)

    def submit_many(
        self, pairs: Iterable[tuple[BillInput, AccountInput]], *, chunk: int = 500
    ) -> Iterator[SubmitCounts]:
        """Submit a stream of bills in chunks of ``chunk``; yields each chunk's counts.

        Only counts are kept: a backfill of 100,000 bills must not hold every run in memory.
        """
        buffer: list[Received] = []
        for bill, account in pairs:
            buffer.append(receive(bill, account))
            if len(buffer) >= chunk:
                yield SubmitCounts.of(self.submit(buffer))
                buffer = []
        if buffer:
            yield SubmitCounts.of(self.submit(buffer))


@attrs.frozen
class SubmitCounts:
    """How many bills one chunk held, and how many runs and skips routing made."""

    bills: int
    runs: int
    skips: int

    @classmethod
    def of(cls, result: SubmitResult) -> SubmitCounts:
        """The counts of a result."""
        return cls(result.bills, len(result.runs), len(result.skips))
