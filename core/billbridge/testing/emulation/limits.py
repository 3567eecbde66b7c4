"""Rate-limit bookkeeping for emulators: sliding windows and in-flight caps, per key.

Each emulator keeps one limiter per documented limit (per tenant per minute, per day, per app...)
and answers 429 with the provider's own headers when one is exhausted.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict, deque
from collections.abc import Hashable, Iterator
from contextlib import contextmanager

from billbridge.domain.clock import Clock

__all__ = ["ConcurrencyLimit", "SlidingWindow"]


class SlidingWindow:
    """At most ``limit`` events per ``window`` seconds per key (a true sliding window)."""

    def __init__(self, limit: int, window: float, clock: Clock) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._events: defaultdict[Hashable, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _prune(self, key: Hashable, now: float) -> deque[float]:
        events = self._events[key]
        while events and events[0] <= now - self.window:
            events.popleft()
        return events

    def acquire(self, key: Hashable) -> float:
        """Count one event; returns 0 when allowed, else seconds until one would be."""
        now = self._clock.time()
        with self._lock:
            events = self._prune(key, now)
            if len(events) >= self.limit:
                return max(events[0] + self.window - now, 0.001)
            events.append(now)
            return 0.0

    def retry_after(self, key: Hashable) -> int:
        """Whole seconds (rounded up) until the next event is allowed."""
        now = self._clock.time()
        with self._lock:
            events = self._prune(key, now)
            if len(events) < self.limit:
                return 0
            return max(1, math.ceil(events[0] + self.window - now))

    def remaining(self, key: Hashable) -> int:
        """Events still allowed in the current window."""
        now = self._clock.time()
        with self._lock:
            return max(self.limit - len(self._prune(key, now)), 0)

    def reset(self) -> None:
        """Forget every event."""
        with self._lock:
            self._events.clear()


class ConcurrencyLimit:
    """At most ``limit`` requests in flight per key."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._in_flight: defaultdict[Hashable, int] = defaultdict(int)
        self._lock = threading.Lock()
        self.peak = 0

    @contextmanager
    def hold(self, key: Hashable) -> Iterator[bool]:
        """Yields True while holding a slot, False (holding nothing) when none is free."""
        with self._lock:
            granted = self._in_flight[key] < self.limit
            if granted:
                self._in_flight[key] += 1
                self.peak = max(self.peak, self._in_flight[key])
        try:
            yield granted
        finally:
            if granted:
                with self._lock:
                    self._in_flight[key] -= 1

    def in_flight(self, key: Hashable) -> int:
        """Requests in flight now for ``key``."""
        with self._lock:
            return self._in_flight[key]
