"""The one clock everything runs on: the engine, its services, emulators and tests.

The engine never reads the time or sleeps on its own: it asks its :class:`Clock`, so a test
can run on a :class:`~billbridge.testing.emulation.clock.ManualClock` and a benchmark on a
:class:`~billbridge.testing.emulation.clock.ScaledClock` (an hour of rate limits in seconds),
with every component seeing the same time.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    """Something that tells the time and can wait."""

    def time(self) -> float:
        """Seconds since the epoch, in this clock's time."""
        ...

    def now(self) -> datetime:
        """The current time as an aware UTC datetime."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """Real time."""

    def time(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    def now(self) -> datetime:
        """Now, in UTC."""
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        """Sleep for real."""
        if seconds > 0:
            time.sleep(seconds)
