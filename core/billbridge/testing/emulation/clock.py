"""Clocks for emulators and tests: real, scaled (faster than real) and manual.

Emulators enforce per-minute and per-day limits; a :class:`ScaledClock` lets a test or
benchmark run through "an hour" of limits in seconds while every component sees the same time.
Times are POSIX seconds (floats); :meth:`Clock.datetime` gives an aware UTC ``datetime``.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["Clock", "ManualClock", "ScaledClock", "SystemClock"]


class Clock(Protocol):
    """Something that tells the time and can wait."""

    def time(self) -> float:
        """Seconds since the epoch, in this clock's time."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


def as_datetime(clock: Clock) -> datetime:
    """The clock's current time as an aware UTC datetime."""
    return datetime.fromtimestamp(clock.time(), UTC)


class SystemClock:
    """Real time."""

    def time(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    def sleep(self, seconds: float) -> None:
        """Sleep for real."""
        if seconds > 0:
            time.sleep(seconds)


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

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        """Advance instead of waiting."""
        if seconds > 0:
            self.advance(seconds)
