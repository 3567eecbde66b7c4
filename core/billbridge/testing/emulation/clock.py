"""Clocks for emulators and tests: scaled (faster than real) and manual.

Both implement :class:`billbridge.domain.clock.Clock`, the one clock protocol, so the engine
and the emulators can share one. Emulators enforce per-minute and per-day limits; a
:class:`ScaledClock` lets a test or benchmark run through "an hour" of limits in seconds while
every component sees the same time.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

__all__ = ["ManualClock", "ScaledClock"]


class ScaledClock:
    """Time that runs ``scale`` times faster than real time, from the moment it is made.

    ``ScaledClock(60)`` turns one real second into a minute: a 60-calls-a-minute limit becomes
    60 calls a real second. Sleeping 60 clock seconds takes one real second.
    """

    def __init__(self, scale: float, *, start: float | None = None) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.scale = scale
        self._origin_real = time.monotonic()
        self._origin = time.time() if start is None else start

    def time(self) -> float:
        """Scaled seconds since the epoch."""
        return self._origin + (time.monotonic() - self._origin_real) * self.scale

    def now(self) -> datetime:
        """The scaled time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.time(), UTC)

    def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of scaled time (``seconds / scale`` real seconds)."""
        if seconds > 0:
            time.sleep(seconds / self.scale)


class ManualClock:
    """Time that moves only when a test says so (:meth:`advance`); ``sleep`` advances it."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._now = start
        self._lock = threading.Lock()

    def time(self) -> float:
        """The current manual time."""
        with self._lock:
            return self._now

    def now(self) -> datetime:
        """The manual time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.time(), UTC)

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        """Advance instead of waiting."""
        if seconds > 0:
            self.advance(seconds)
