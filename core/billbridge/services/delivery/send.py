"""Sending prepared deliveries to a destination: one batch request, or single sends in parallel.

A batch goes through the plugin's ``send_bills`` with the batch's idempotency key (the same
members always give the same key); a plugin without it gets ``send_bill`` calls, up to the
destination's declared concurrency. A batch that fails as a whole with an ambiguous error (a
timeout, a lost answer) is *unsettled*: the destination may have carried it out, so its members
are sent again together, with the same key, and the destination answers with what it did.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs
import httpx

from billbridge.domain.clock import Clock
from billbridge.domain.models import Secret, dumps
from billbridge.domain.outcomes import ambiguous
from billbridge.domain.ratelimit import TenantLimiter, in_seconds
from billbridge.errors import (
    BillbridgeError,
    DestinationValidationError,
    PermanentError,
    RateLimited,
)
from billbridge.plugin.contract import Connection, Delivery, Destination, SendResult
from billbridge.plugin.idempotency import batch_idempotency_key
from billbridge.plugin.manager import PluginRegistry
from billbridge.services.credentials import Credentials
from billbridge.services.delivery.groups import TenantGroup
from billbridge.services.delivery.record import Prepared

__all__ = ["Sender", "Sent"]

Outcome = SendResult | BaseException


@attrs.frozen
class Sent:
    """Each prepared run's outcome by run id, and the runs whose outcome is unknown."""

    outcomes: dict[str, Outcome]
    unsettled: set[str]


class Sender:
    """Sends deliveries through the plugin that owns their destination."""

    def __init__(
        self,
        *,
        plugins: PluginRegistry,
        credentials: Credentials,
        clock: Clock,
        http: httpx.Client,
        api_base_url: Callable[[str], str],
    ) -> None:
        self._plugins = plugins
        self._credentials = credentials
        self._clock = clock
        self._http = http
        self._api_base_url = api_base_url

    def send(
        self,
        group: TenantGroup,
        destination: Destination,
        prepared: Sequence[Prepared],
        limiter: TenantLimiter,
        *,
        batch: bool,
        wait_for_slot: Callable[[bool], None],
    ) -> Sent:
        """Send every prepared delivery; ``wait_for_slot(batch)`` waits for the rate limiter."""
        outcomes: dict[str, Outcome] = {
            p.run.id: p.failure for p in prepared if p.failure is not None
        }
        ready = [p for p in prepared if p.delivery is not None]
        unsettled: set[str] = set()

        def report_limit(scope: str, remaining: int) -> None:
            limiter.observe(scope, remaining, self._clock.now())

        if ready and batch:
            wait_for_slot(True)
            try:
                outcomes.update(self._send_batch(group, ready, report_limit))
            except Refused as exc:
                # The destination refused the request as a whole without doing anything: when
                # one member is the reason, the others must not share its fate.
                outcomes.update(self._split(group, ready, exc, report_limit, wait_for_slot))
            except Exception as exc:  # the whole request failed: every delivery shares it
                outcomes.update({item.run.id: exc for item in ready})
                if ambiguous(exc):
                    # The destination may have carried the batch out: send the same members
                    # again, so the batch's idempotency key returns the original answer.
                    unsettled = {item.run.id for item in ready}
        elif ready:
            outcomes.update(
                self._send_singles(group, destination, ready, report_limit, wait_for_slot)
            )
        for outcome in outcomes.values():
            if isinstance(outcome, RateLimited):
                limiter.block(
                    in_seconds(self._clock.now(), outcome.retry_after), f"{outcome.scope} limit"
                )
        return Sent(outcomes, unsettled)

    def _split(
        self,
        group: TenantGroup,
        ready: Sequence[Prepared],
        refused: Exception,
        report_limit: Callable[[str, int], None],
        wait_for_slot: Callable[[bool], None],
    ) -> dict[str, Outcome]:
        """Send a refused batch again in halves, down to the member(s) it was refused for."""
        if len(ready) == 1:
            return {ready[0].run.id: refused}
        outcomes: dict[str, Outcome] = {}
        middle = len(ready) // 2
        for half in (ready[:middle], ready[middle:]):
            wait_for_slot(True)
            try:
                outcomes.update(self._send_batch(group, half, report_limit))
            except Refused as exc:
                outcomes.update(self._split(group, half, exc, report_limit, wait_for_slot))
            except Exception as exc:
                # Not a refusal this time (a lost answer, a 429): these members share it.
                outcomes.update({item.run.id: exc for item in half})
        return outcomes

    def _send_batch(
        self,
        group: TenantGroup,
        ready: Sequence[Prepared],
        report_limit: Callable[[str, int], None],
    ) -> dict[str, Outcome]:
        deliveries = [p.delivery for p in ready if p.delivery is not None]
        results = self.call(
            group,
            lambda connection: self._plugins.call(
                "send_bills",
                group.destination,
                connection=connection,
                deliveries=deliveries,
                idempotency_key=batch_idempotency_key(d.idempotency_key for d in deliveries),
            ),
            report_limit=report_limit,
        )
        results = list(results or ())
        if len(results) != len(deliveries):
            raise BillbridgeError(
                f"the {group.destination} plugin returned {len(results)} outcomes for "
                f"{len(deliveries)} deliveries"
            )
        return {
            item.run.id: checked_result(group.destination, result)
            for item, result in zip(ready, results, strict=True)
        }

    def _send_singles(
        self,
        group: TenantGroup,
        destination: Destination,
        ready: Sequence[Prepared],
        report_limit: Callable[[str, int], None],
        wait_for_slot: Callable[[bool], None],
    ) -> dict[str, Outcome]:
        def send(item: Prepared) -> tuple[str, Outcome]:
            assert item.delivery is not None  # only ready items are sent
            delivery = item.delivery
            wait_for_slot(False)
            try:
                result = self.call(
                    group,
                    lambda connection: self._send_one(group.destination, connection, delivery),
                    report_limit=report_limit,
                )
            except Exception as exc:
                return item.run.id, exc
            return item.run.id, result

        workers = max(1, min(destination.limits.concurrency or 1, len(ready)))
        with ThreadPoolExecutor(workers, thread_name_prefix="billbridge-send") as pool:
            return dict(pool.map(send, ready))

    def _send_one(self, destination: str, connection: Connection, delivery: Delivery) -> SendResult:
        result = self._plugins.call(
            "send_bill",
            destination,
            connection=connection,
            bill=delivery.bill,
            account=delivery.account,
            config=delivery.config,
            mappings=delivery.mappings,
            previous=delivery.previous,
            idempotency_key=delivery.idempotency_key,
        )
        checked = checked_result(destination, result)
        if isinstance(checked, BaseException):
            raise checked
        return checked

    def call(
        self,
        group: TenantGroup,
        work: Callable[[Connection], Any],
        *,
        report_limit: Callable[[str, int], None] | None = None,
    ) -> Any:
        """Run ``work`` with a connection to the group's tenant (token refreshed as needed)."""
        if group.credential_id is not None:
            return self._credentials.call(group.credential_id, work, report_limit=report_limit)
        connection = Connection(
            destination=group.destination,
            tenant_id=group.key.split(":", 1)[1],
            access_token=Secret(""),
            http=self._http,
            api_base_url=self._api_base_url(group.destination),
            report_limit=report_limit,
        )
        return work(connection)


#: Whole-request failures that mean the destination did nothing (it refused the request).
Refused = (DestinationValidationError, PermanentError)

#: What the store keeps of a result (its columns' lengths).
MAX_EXTERNAL_ID = 200
MAX_NUMBER = 200
MAX_URL = 2000


def checked_result(destination: str, result: object) -> Outcome:
    """A plugin's outcome for one delivery, or the error that says why it cannot be kept.

    Plugins are other people's code: what they return is checked before it reaches the store,
    so that a value the store cannot hold becomes a clear error on that run, naming the
    plugin, instead of a failed transaction that would send the bill again and again.
    """
    if isinstance(result, BaseException):
        return result
    problem = _result_problem(result)
    if problem is None:
        return result  # type: ignore[return-value]  # checked by _result_problem
    return PermanentError(
        f"the {destination} plugin returned {problem}; the invoice may exist in the destination: "
        "this is for the plugin's author to fix"
    )


def _result_problem(result: object) -> str | None:
    if not isinstance(result, SendResult):
        return "something that is not a send result"
    if not isinstance(result.external_id, str) or not result.external_id.strip():
        return "no external id"
    if len(result.external_id) > MAX_EXTERNAL_ID:
        return f"an external id of {len(result.external_id)} characters (at most {MAX_EXTERNAL_ID})"
    if result.number is not None and (
        not isinstance(result.number, str) or len(result.number) > MAX_NUMBER
    ):
        return f"a document number that is not text of at most {MAX_NUMBER} characters"
    if result.url is not None and (not isinstance(result.url, str) or len(result.url) > MAX_URL):
        return f"a URL that is not text of at most {MAX_URL} characters"
    try:
        dumps(result.state)
    except (TypeError, ValueError):
        return "state that cannot be written as JSON"
    return None
