"""The tenant rate limiter: windows, daily caps, destination feedback, saved state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from billbridge.domain.models import dumps, loads
from billbridge.domain.ratelimit import SAFETY, SAFETY_FLOOR, TenantLimiter
from billbridge.plugin.contract import Limits

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_minute_window_with_a_safety_margin() -> None:
    limiter = TenantLimiter(Limits(requests_per_minute=4))  # one short of it: 3
    assert [limiter.acquire(at(0)) for _ in range(3)] == [0, 0, 0]
    wait = limiter.acquire(at(1))
    assert wait == pytest.approx(60 * (1 + SAFETY) + SAFETY_FLOOR - 1)
    assert limiter.acquire(at(1 + wait)) == 0


def test_batch_window_counts_only_batches() -> None:
    limiter = TenantLimiter(Limits(requests_per_minute=10, batch_requests_per_minute=1))
    assert limiter.acquire(at(0), batch=True) == 0
    assert limiter.wait_time(at(1), batch=True) > 50
    assert limiter.acquire(at(1), batch=False) == 0  # singles still have budget


def test_daily_cap_and_feedback() -> None:
    limiter = TenantLimiter(Limits(daily_cap=5))
    limiter.observe("day", 1, at(0))
    assert limiter.acquire(at(0)) == 0
    assert limiter.wait_time(at(10)) > 80000
    told = TenantLimiter(Limits(requests_per_minute=60))
    told.observe("minute", 0, at(0))
    assert told.wait_time(at(1)) > 55


def test_blocks_from_429() -> None:
    limiter = TenantLimiter(Limits())
    limiter.block(at(30), "minute limit")
    assert limiter.wait_time(at(0)) == 30
    limiter.unblock_if_over(at(31))
    assert limiter.blocked_until is None


def test_saved_counters_survive_a_json_column() -> None:
    first = TenantLimiter(Limits(requests_per_minute=2, daily_cap=100))
    first.acquire(at(0))
    first.acquire(at(1))
    # Stored with the tenant and read back as exact decimals, as the database does.
    saved = loads(dumps(first.counters()))
    second = TenantLimiter(Limits(requests_per_minute=2, daily_cap=100), saved)
    assert second.wait_time(at(2)) > 55
    assert second.acquire(at(70)) == 0
