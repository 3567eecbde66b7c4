"""Batch outcome bookkeeping for ``send_bills``: one algorithm, every destination.

A destination with a batch API delivers many bill versions in as few requests as it allows, and
``send_bills`` must return one outcome per delivery, in order, without losing what was
delivered when something fails half-way. :func:`send_in_batches` keeps that books; the plugin
supplies only what is specific to its API:

* the prepared items, made with :func:`prepare_each` (a delivery that cannot be prepared keeps
  the exception as its outcome);
* a :class:`Chunking` rule: at most ``max_items`` per request, optionally only members of one
  group per request (one endpoint, one operation) and a bounded total size;
* ``send(chunk)``: make one request for a chunk and return the destination's answer for each
  member, in order (``None`` where it answered nothing for one);
* ``settle(item, answer)``: what one member's answer means: its
  :class:`~billbridge.plugin.contract.SendResult`, or raise the error it stands for (after
  reconciling a duplicate number, retrying a stale version, and so on).

The exception policy, the same for every destination:

======================================================  ========================================
what failed                                             what happens
======================================================  ========================================
preparing one delivery (in ``prepare_each``)            that delivery's outcome is the exception
settling one member's answer (in ``settle``)            that member's outcome is the exception
no answer for a member (``None``, or a short list)      ``TransientError``: it will be delivered
                                                        again
the first request, as a whole (``send`` raised)         raised: nothing was delivered, so the core
                                                        applies it to the whole batch (refresh and
                                                        retry, pause the tenant, or send the same
                                                        members again with the same key)
a later request, as a whole                             its members' outcome: raising would throw
                                                        away what earlier requests delivered
``RateLimited``, ``TokenExpired``,                      the remaining requests are not sent either;
``AuthenticationFailed`` from a later request           their members get the same error
======================================================  ========================================

"An exception" is any :class:`Exception`, the contract's errors and a plugin's bugs alike: a bug
fails only the deliveries it touched, and the core still logs it as a bug (and retries those
deliveries a bounded number of times). ``BaseException`` (``KeyboardInterrupt``) is never caught.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Generic, TypeVar

import attrs

from billbridge.errors import (
    AuthenticationFailed,
    RateLimited,
    TokenExpired,
    TransientError,
)
from billbridge.plugin.contract import DeliveryOutcome, SendResult

__all__ = ["STOPPING", "Chunking", "prepare_each", "send_apart", "send_in_batches"]

Source = TypeVar("Source")
Item = TypeVar("Item")
Answer = TypeVar("Answer")

STOPPING: tuple[type[Exception], ...] = (RateLimited, TokenExpired, AuthenticationFailed)
"""Whole-request failures after which no further request of the batch is sent.

Each says the tenant refuses every request for now (its allowance is spent, the token or the
access is gone), so sending the rest would only earn the same refusal and spend requests.
"""


def _positive(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, got {value}")


@attrs.frozen
class Chunking(Generic[Item]):
    """How prepared items are split into requests.

    :param max_items: the most members one request carries (QuickBooks 30, Xero 50).
    :param group: members whose ``group(item)`` differ never share a request (Xero: creates and
        updates, invoices and credit notes go to different endpoints). Groups are sent in the
        order of their first members; ``None``: one group.
    :param size: a member's size in the request body; with ``max_size``, the sizes of one
        request's members add up to at most ``max_size``. A member larger than ``max_size``
        still goes, alone: refuse it while preparing if the destination would.
    :param max_size: see ``size``.
    """

    max_items: int = attrs.field(validator=_positive)
    group: Callable[[Item], Hashable] | None = None
    size: Callable[[Item], int] | None = None
    max_size: int | None = None

    def __attrs_post_init__(self) -> None:
        if (self.size is None) != (self.max_size is None):
            raise ValueError("Chunking needs size and max_size together")

    def split(self, items: Sequence[Item]) -> list[list[int]]:
        """The positions in ``items`` of each request's members, requests in sending order.

        Members keep their relative order inside a request; every position is in exactly one.
        """
        groups: dict[Hashable, list[int]] = {}
        for position, item in enumerate(items):
            key = self.group(item) if self.group is not None else None
            groups.setdefault(key, []).append(position)
        requests: list[list[int]] = []
        for positions in groups.values():
            current: list[int] = []
            total = 0
            for position in positions:
                size = self.size(items[position]) if self.size is not None else 0
                too_big = self.max_size is not None and total + size > self.max_size
                if current and (len(current) >= self.max_items or too_big):
                    requests.append(current)
                    current, total = [], 0
                current.append(position)
                total += size
            if current:
                requests.append(current)
        return requests


def prepare_each(
    sources: Iterable[Source], prepare: Callable[[Source], Item]
) -> list[Item | Exception]:
    """``prepare(source)`` for every source, in order; one that raises keeps its exception.

    The result is what :func:`send_in_batches` takes: a delivery that cannot be translated (a
    missing mapping, an invoice that would have to become a credit note) fails alone.
    """
    prepared: list[Item | Exception] = []
    for source in sources:
        try:
            prepared.append(prepare(source))
        except Exception as exc:  # one delivery's failure is its outcome (module docs)
            prepared.append(exc)
    return prepared


def send_in_batches(
    items: Sequence[Item | Exception],
    *,
    chunking: Chunking[Item],
    send: Callable[[Sequence[Item]], Sequence[Answer | None]],
    settle: Callable[[Item, Answer], SendResult],
    system: str,
    describe: Callable[[Item], str],
) -> list[DeliveryOutcome]:
    """Send prepared items in requests as ``chunking`` allows; one outcome per item, in order.

    :param items: the prepared deliveries, or the exception one ended with while preparing
        (kept as its outcome, never sent).
    :param chunking: how items are split into requests.
    :param send: makes one request for a chunk; returns the answer for each member, in order
        (``None`` where the destination answered nothing for one). Raises when the request as
        a whole failed.
    :param settle: turns one member's answer into its result, raising the error it stands for.
    :param system: the destination as people know it (``"QuickBooks"``), for messages.
    :param describe: names one item in messages (``"bill 42"``).
    :returns: a :class:`~billbridge.plugin.contract.SendResult` or an exception per item.
    :raises Exception: what the first request raised, when it failed as a whole (see the
        module's exception policy).
    """
    outcomes: list[DeliveryOutcome | None] = [
        item if isinstance(item, Exception) else None for item in items
    ]
    ready = [(index, item) for index, item in enumerate(items) if not isinstance(item, Exception)]
    delivered = False
    stop: Exception | None = None
    for request in chunking.split([item for _, item in ready]):
        members = [ready[position] for position in request]
        if stop is not None:
            for index, _item in members:
                outcomes[index] = stop
            continue
        try:
            answers = send([item for _, item in members])
        except Exception as exc:  # the whole request failed (module docs)
            if not delivered:
                raise
            for index, _item in members:
                outcomes[index] = exc
            if isinstance(exc, STOPPING):
                stop = exc
            continue
        delivered = True
        for offset, (index, item) in enumerate(members):
            answer = answers[offset] if offset < len(answers) else None
            outcomes[index] = _settle(item, answer, settle, system, describe)
    settled: list[DeliveryOutcome] = []
    for outcome in outcomes:
        assert outcome is not None  # every item is an error already or in exactly one request
        settled.append(outcome)
    return settled


def _settle(
    item: Item,
    answer: Answer | None,
    settle: Callable[[Item, Answer], SendResult],
    system: str,
    describe: Callable[[Item], str],
) -> DeliveryOutcome:
    if answer is None:
        # The request went through but says nothing about this member: it was probably not
        # processed, and its own idempotency guard (key, number) makes sending it again safe.
        return TransientError(
            f"the batch answer from {system} has no result for {describe(item)}; "
            "it will be delivered again"
        )
    try:
        return settle(item, answer)
    except Exception as exc:  # one member's failure is its outcome (module docs)
        return exc


def send_apart(
    items: Sequence[Item | Exception],
    *,
    apart: Callable[[Item], bool],
    send_one: Callable[[Item], SendResult],
    send_rest: Callable[[Sequence[Item | Exception]], Sequence[DeliveryOutcome]],
) -> list[DeliveryOutcome]:
    """Send the items ``apart`` picks one by one, and the rest together; outcomes in order.

    Some deliveries cannot go in a batch request: replacing a document with one of another
    kind takes a read, a void and a create, in that order (:mod:`billbridge.plugin.replace`).
    The rest go first, through ``send_rest`` (usually :func:`send_in_batches`), so that a
    first request failing as a whole is raised before anything was delivered, as the policy
    above wants; then each item apart through ``send_one``, whose exception is that item's
    outcome.
    """
    alone = {
        index for index, item in enumerate(items) if not isinstance(item, Exception) and apart(item)
    }
    rest = [index for index in range(len(items)) if index not in alone]
    outcomes: dict[int, DeliveryOutcome] = dict(
        zip(rest, send_rest([items[index] for index in rest]), strict=True)
    )
    for index in sorted(alone):
        item = items[index]
        assert not isinstance(item, Exception)  # only prepared items are sent apart
        try:
            outcomes[index] = send_one(item)
        except Exception as exc:  # one delivery's failure is its outcome (module docs)
            outcomes[index] = exc
    return [outcomes[index] for index in range(len(items))]
