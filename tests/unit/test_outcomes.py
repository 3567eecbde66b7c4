"""What an attempt's outcome means for its run: status, retry, event, message. Pure."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from builders import DESTINATION, T0, integration, run
from hypothesis import given
from hypothesis import strategies as st

from billbridge.domain.models import EventType, RunStatus
from billbridge.domain.outcomes import advice, ambiguous, classify, describe
from billbridge.domain.runs import RetryPolicy, count_successive_errors
from billbridge.errors import (
    AccountingPeriodClosed,
    AuthenticationFailed,
    BillbridgeError,
    DestinationValidationError,
    InvoiceAlreadyPaid,
    MissingMapping,
    RateLimited,
    TokenExpired,
    TransientError,
)

POLICY = RetryPolicy()


def classified(exc: BaseException, attempts: int = 1):  # type: ignore[no-untyped-def]
    return classify(exc, attempts, T0, POLICY, random.Random(1))


@pytest.mark.parametrize(
    ("exc", "status", "event"),
    [
        (MissingMapping("Account", "acc-1", "Customer"), RunStatus.ERROR,
         EventType.MISSING_ACCOUNT_MAPPING),
        (MissingMapping("Product", "p-1", "Item"), RunStatus.ERROR, EventType.VALIDATION_ERROR),
        (DestinationValidationError("bad tax code"), RunStatus.ERROR, EventType.VALIDATION_ERROR),
        (InvoiceAlreadyPaid("paid"), RunStatus.INVOICE_ALREADY_PAID, EventType.PERFORM_ERROR),
        (AccountingPeriodClosed("closed"), RunStatus.ACCOUNTING_PERIOD_CLOSED,
         EventType.PERFORM_ERROR),
        (AuthenticationFailed("revoked"), RunStatus.AUTH_FAILED, EventType.AUTHENTICATION_ERROR),
        (TokenExpired("401"), RunStatus.AUTH_FAILED, EventType.AUTHENTICATION_ERROR),
        (TransientError("503"), RunStatus.AWAITING_RETRY, None),
    ],
)  # fmt: skip
def test_each_contract_exception_has_its_status_and_event(
    exc: BaseException, status: RunStatus, event: EventType | None
) -> None:
    found = classified(exc)
    assert (found.status, found.event) == (status, event)
    assert found.retry_at is None if status is not RunStatus.AWAITING_RETRY else found.retry_at


def test_a_rate_limit_waits_what_the_destination_asked() -> None:
    found = classified(RateLimited("slow down", retry_after=60, scope="minute"))
    assert found.status is RunStatus.RATE_LIMIT_RETRY
    assert found.retry_at == T0 + timedelta(seconds=60)
    assert found.event is None


def test_retries_stop_at_the_cap_with_an_event() -> None:
    found = classified(TransientError("503"), attempts=POLICY.max_attempts)
    assert found.status is RunStatus.TIMEOUT_LIMIT_EXCEEDED
    assert found.event is EventType.PERFORM_ERROR
    assert f"gave up after {POLICY.max_attempts} attempts; last: 503" == found.text


def test_an_unexpected_exception_is_retried_and_flagged_for_the_plugin_author() -> None:
    found = classified(KeyError("oops"))
    assert found.status is RunStatus.AWAITING_RETRY
    assert found.unexpected
    assert not classified(TransientError("503")).unexpected


def test_the_destinations_own_words_are_kept() -> None:
    assert describe(DestinationValidationError("refused", detail="Invoice # must be unique.")) == (
        "refused: Invoice # must be unique."
    )
    assert describe(BillbridgeError()) == "failed without a message"
    assert "KeyError" not in describe(KeyError("x"))


def test_only_failures_that_may_have_been_carried_out_are_ambiguous() -> None:
    assert ambiguous(TransientError("timeout"))
    assert ambiguous(ValueError("plugin bug"))
    for refused in (RateLimited("x", retry_after=1), TokenExpired("x"), AuthenticationFailed("x")):
        assert not ambiguous(refused)
    assert not ambiguous(DestinationValidationError("x"))


def test_event_messages_say_what_to_do() -> None:
    text = advice(
        EventType.VALIDATION_ERROR,
        RunStatus.ERROR,
        integration(),
        DESTINATION,
        run(),
        "bad item",
    )
    assert text.startswith("Books UK (Books), bill bill-1 v2: Books refused the invoice: bad item")
    assert text.endswith("then replay run run-1.")
    paid = advice(
        EventType.PERFORM_ERROR,
        RunStatus.INVOICE_ALREADY_PAID,
        integration(),
        DESTINATION,
        run(),
        "paid",
    )
    assert "credit note" in paid


@given(st.integers(min_value=1, max_value=40), st.integers(min_value=0, max_value=2**32))
def test_retry_delays_grow_are_capped_and_jittered(attempt: int, seed: int) -> None:
    delay = POLICY.delay(attempt, random.Random(seed))
    ceiling = min(POLICY.cap, POLICY.base * 2 ** (attempt - 1))
    assert ceiling / 2 <= delay <= ceiling


@given(st.lists(st.booleans(), max_size=50), st.integers(min_value=0, max_value=30))
def test_successive_errors_count_from_the_last_success(outcomes: list[bool], start: int) -> None:
    counted = count_successive_errors(start, outcomes, threshold=20, enabled=True)
    if False in outcomes:
        last_success = len(outcomes) - 1 - outcomes[::-1].index(False)
        expected = len(outcomes) - 1 - last_success
    else:
        expected = start + len(outcomes)
    assert counted.count == expected
    assert counted.disable == (expected >= 20)


def test_a_disabled_integration_is_not_disabled_again() -> None:
    assert not count_successive_errors(25, [True], threshold=20, enabled=False).disable
