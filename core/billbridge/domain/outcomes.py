"""What an attempt's outcome means: run status, retry time, the event a person must act on.

Plugins raise the contract's exceptions (:mod:`billbridge.errors`); :func:`classify` maps each
to a run status, a retry time and an event type, and :func:`advice` writes the event's message
(what happened, and what to do about it). Pure: the delivery services apply the result.
"""

from __future__ import annotations

import random
from datetime import datetime

import attrs

from billbridge.domain.models import EventType, Integration, Run, RunStatus
from billbridge.domain.ratelimit import in_seconds
from billbridge.domain.redaction import redact
from billbridge.domain.runs import RetryPolicy
from billbridge.errors import (
    AuthenticationFailed,
    BillbridgeError,
    DestinationError,
    DestinationValidationError,
    MissingMapping,
    PermanentError,
    RateLimited,
    SecretKeyError,
    Superseded,
    TokenExpired,
    TransientError,
)
from billbridge.plugin.contract import Destination

__all__ = ["Classified", "advice", "ambiguous", "classify", "describe"]


@attrs.frozen
class Classified:
    """A failed attempt's consequences."""

    status: RunStatus
    text: str
    retry_at: datetime | None
    event: EventType | None
    #: Not one of the contract's exceptions: a plugin bug worth logging for its author.
    unexpected: bool = False


def describe(exc: BaseException) -> str:
    """The exception as people read it: its message and the destination's own words.

    An exception that is not billbridge's (a bug in a plugin) is not shown: its text is for
    the plugin's author (the worker logs it), not for the people reading runs and events.
    """
    if not isinstance(exc, BillbridgeError):
        return "the destination's plugin failed unexpectedly (its error is in the worker's log)"
    text = str(exc) or "failed without a message"
    detail = getattr(exc, "detail", None)
    if detail and detail not in text:
        text = f"{text}: {detail}"
    # Destination text enters billbridge here (runs, attempts, events): no echoed secret.
    return redact(text)


def ambiguous(exc: BaseException) -> bool:
    """True when a failed request may still have been carried out by the destination."""
    if isinstance(exc, RateLimited | TokenExpired | AuthenticationFailed):
        return False  # refused before anything was done
    return isinstance(exc, TransientError) or not isinstance(exc, BillbridgeError)


def classify(
    outcome: BaseException,
    attempts: int,
    now: datetime,
    retry: RetryPolicy,
    rng: random.Random,
) -> Classified:
    """The consequences of an attempt that ended with ``outcome`` (the run's ``attempts``-th)."""
    text = describe(outcome)
    if isinstance(outcome, Superseded):
        return Classified(RunStatus.SUPERSEDED, text, None, None)
    if isinstance(outcome, SecretKeyError):
        # billbridge's own configuration, not the destination's nor the plugin's: retrying
        # cannot help until someone sets the key.
        return Classified(RunStatus.ERROR, text, None, EventType.PERFORM_ERROR)
    if isinstance(outcome, RateLimited):
        return Classified(
            RunStatus.RATE_LIMIT_RETRY, text, in_seconds(now, outcome.retry_after), None
        )
    if isinstance(outcome, MissingMapping):
        event = (
            EventType.MISSING_ACCOUNT_MAPPING
            if outcome.entity == "Account"
            else EventType.VALIDATION_ERROR
        )
        return Classified(RunStatus.ERROR, text, None, event)
    if isinstance(outcome, DestinationValidationError):
        return Classified(RunStatus.ERROR, text, None, EventType.VALIDATION_ERROR)
    if isinstance(outcome, PermanentError):
        return Classified(RunStatus(outcome.status), text, None, EventType.PERFORM_ERROR)
    if isinstance(outcome, AuthenticationFailed | TokenExpired):
        return Classified(RunStatus.AUTH_FAILED, text, None, EventType.AUTHENTICATION_ERROR)
    # Transient, or not one of the contract's exceptions (a plugin bug): retried a bounded
    # number of times.
    unexpected = not isinstance(outcome, TransientError | DestinationError)
    if attempts >= retry.max_attempts:
        return Classified(
            RunStatus.TIMEOUT_LIMIT_EXCEEDED,
            f"gave up after {attempts} attempts; last: {text}",
            None,
            EventType.PERFORM_ERROR,
            unexpected,
        )
    delay = retry.delay(attempts, rng)
    return Classified(RunStatus.AWAITING_RETRY, text, in_seconds(now, delay), None, unexpected)


def advice(
    event: EventType,
    status: RunStatus,
    integration: Integration,
    destination: Destination,
    run: Run,
    text: str,
) -> str:
    """An event message that says what happened and what to do about it."""
    where = f"{integration.name} ({destination.title}), bill {run.bill_id} v{run.bill_version}"
    then = f"then replay run {run.id}"
    title = destination.title
    if event is EventType.MISSING_ACCOUNT_MAPPING:
        return f"{where}: {text}; {then}."
    if event is EventType.VALIDATION_ERROR:
        return (
            f"{where}: {title} refused the invoice: {text}. Fix the mapping or "
            f"configuration, {then}."
        )
    if event is EventType.AUTHENTICATION_ERROR:
        return f"{where}: {text}. Reconnect the integration's credential, {then}."
    if status is RunStatus.INVOICE_ALREADY_PAID:
        return (
            f"{where}: the invoice is already paid or voided in {title}, so this version was not "
            f"applied: {text}. Adjust it there (for example with a credit note)."
        )
    if status is RunStatus.ACCOUNTING_PERIOD_CLOSED:
        return (
            f"{where}: the invoice date is in a closed period: {text}. Reopen the period or "
            f"change the date in {title}, {then}."
        )
    return f"{where}: {text}. Check {title}'s status, {then}."
