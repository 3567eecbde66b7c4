"""Keeping to a destination tenant's limits, so that deliveries are fast and never refused.

One worker at a time holds a tenant's lease (see
:class:`~billbridge.store.repositories.TenantRepository`) and keeps its usage in a
:class:`TenantLimiter`: sliding windows for the declared per-second, per-minute and batch
limits, a daily count, what the destination's own headers say is left, and blocks from
``429 Retry-After``. The usage is saved with the tenant when the lease is released, so the next
worker carries on from it.

Windows are kept a little wider than the destination's (:data:`SAFETY`) and one request short
of its limit: requests are counted when they leave, the destination counts them when they
arrive, and the difference must never turn into a 429.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from billbridge.plugin.contract import Limits

__all__ = ["SAFETY", "TenantLimiter"]

#: Extra fraction of each window (and a floor in seconds) added for safety.
SAFETY = 0.02
SAFETY_FLOOR = 0.25


def _ts(value: datetime) -> float:
    return value.timestamp()


class _Window:
    def __init__(self, limit: int, seconds: float, stamps: list[float] | None = None) -> None:
        # One request of headroom: under load the gap between sending and arriving can exceed
        # the time margin, and a request that leaves in one window may land in the next.
        self.limit = limit - 1 if limit > 2 else limit
        self.seconds = seconds * (1 + SAFETY) + SAFETY_FLOOR
        # Saved counters come back from a JSON column as Decimals: time here is float seconds.
        self.stamps: deque[float] = deque(sorted(float(t) for t in stamps or [])[-limit:])

    def wait(self, now: float) -> float:
        while self.stamps and self.stamps[0] <= now - self.seconds:
            self.stamps.popleft()
        if len(self.stamps) < self.limit:
            return 0.0
        return self.stamps[0] + self.seconds - now

    def add(self, now: float) -> None:
        self.stamps.append(now)


class TenantLimiter:
    """The limits of one tenant, as one worker sees them while it holds the lease.

    :param limits: what the plugin declared.
    :param counters: the saved usage (from :meth:`counters` of the previous holder).
    :param blocked_until: a block in force (429, a spent daily allowance).
    """

    def __init__(
        self,
        limits: Limits,
        counters: Mapping[str, Any] | None = None,
        *,
        blocked_until: datetime | None = None,
        blocked_reason: str | None = None,
    ) -> None:
        counters = counters or {}
        self.limits = limits
        self._lock = threading.Lock()
        self._windows: dict[str, _Window] = {}
        for name, limit, seconds in (
            ("second", limits.requests_per_second, 1.0),
            ("minute", limits.requests_per_minute, 60.0),
            ("batch_minute", limits.batch_requests_per_minute, 60.0),
            ("app_minute", limits.app_requests_per_minute, 60.0),
        ):
            if limit:
                self._windows[name] = _Window(limit, seconds, counters.get(name))
        day = counters.get("day") or [None, 0]
        self._day_start: float | None = None if day[0] is None else float(day[0])
        self._day_used: int = int(day[1])
        self.blocked_until: datetime | None = blocked_until
        self.blocked_reason: str | None = blocked_reason
        #: Requests the destination says are left in its current minute (None: not told).
        self._told_minute_left: int | None = None
        self._told_at: float | None = None
        self.requests = 0
        self.throttled = 0

    # -- asking ---------------------------------------------------------------------------------

    def wait_time(self, now: datetime, *, batch: bool = False) -> float:
        """Seconds until one more request may be sent (0: now)."""
        with self._lock:
            return self._wait_locked(_ts(now), batch=batch)

    def _wait_locked(self, t: float, *, batch: bool) -> float:
        waits = [0.0]
        if self.blocked_until is not None:
            waits.append(_ts(self.blocked_until) - t)
        for name, window in self._windows.items():
            if name == "batch_minute" and not batch:
                continue
            waits.append(window.wait(t))
        if self.limits.daily_cap:
            self._roll_day(t)
            if self._day_used >= self.limits.daily_cap:
                assert self._day_start is not None
                waits.append(self._day_start + 86400 - t)
        if self._told_minute_left is not None and self._told_minute_left <= 0:
            assert self._told_at is not None
            # The destination says its minute is spent although our count disagrees (other
            # apps or a restarted worker used it): wait out a full window from then.
            waits.append(self._told_at + 60 * (1 + SAFETY) - t)
        return max(waits)

    def _roll_day(self, t: float) -> None:
        if self._day_start is None or t - self._day_start >= 86400:
            self._day_start = t
            self._day_used = 0

    def acquire(self, now: datetime, *, batch: bool = False) -> float:
        """Take a slot now if one is free (returns 0), else the seconds to wait (takes none)."""
        with self._lock:
            wait = self._wait_locked(_ts(now), batch=batch)
            if wait <= 0:
                self._record_locked(_ts(now), batch=batch)
            return wait

    # -- telling --------------------------------------------------------------------------------

    def record(self, now: datetime, *, batch: bool = False) -> None:
        """Count one request sent now."""
        with self._lock:
            self._record_locked(_ts(now), batch=batch)

    def _record_locked(self, t: float, *, batch: bool) -> None:
        self.requests += 1
        for name, window in self._windows.items():
            if name == "batch_minute" and not batch:
                continue
            window.add(t)
        if self.limits.daily_cap:
            self._roll_day(t)
            self._day_used += 1
        if self._told_minute_left is not None:
            self._told_minute_left -= 1

    def observe(self, scope: str, remaining: int, now: datetime) -> None:
        """What the destination's headers say is left (``minute`` or ``day``)."""
        t = _ts(now)
        with self._lock:
            if scope == "minute":
                self._told_minute_left = remaining
                self._told_at = t
            elif scope == "day" and self.limits.daily_cap:
                self._roll_day(t)
                self._day_used = max(self._day_used, self.limits.daily_cap - remaining)

    def block(self, until: datetime, reason: str) -> None:
        """The destination refused (429): send nothing to this tenant before ``until``."""
        with self._lock:
            self.throttled += 1
            if self.blocked_until is None or until > self.blocked_until:
                self.blocked_until = until
                self.blocked_reason = reason

    def unblock_if_over(self, now: datetime) -> None:
        """Forget a block whose time has passed."""
        with self._lock:
            if self.blocked_until is not None and self.blocked_until <= now:
                self.blocked_until = None
                self.blocked_reason = None

    def counters(self) -> dict[str, Any]:
        """The usage to save with the tenant (JSON-able)."""
        with self._lock:
            saved: dict[str, Any] = {
                name: list(window.stamps) for name, window in self._windows.items()
            }
            if self.limits.daily_cap:
                saved["day"] = [self._day_start, self._day_used]
            return saved


def in_seconds(now: datetime, seconds: float) -> datetime:
    """``now`` plus ``seconds``, as an aware UTC time."""
    return (now + timedelta(seconds=seconds)).astimezone(UTC)
