"""Parsed bill versions kept between submission and delivery in one process."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping

from billbridge.domain.models import Account, Bill

__all__ = ["BillCache"]


class BillCache:
    """Parsed bill versions waiting for delivery, by ``(bill id, version)``: bounded, thread-safe.

    Submission puts each bill with the number of runs it queued, and delivery settles runs as
    they end; a bill whose runs have all ended is dropped at once. The cache so holds the bills
    still to be sent, not the month's history: less memory, and fewer long-lived objects for
    the garbage collector to walk on every full collection (a parsed 20-line bill is about 40
    of them). Past ``size`` the least recently used go first, which also covers bills whose
    runs another process delivers. A bill read back from the database for delivery is kept
    until the runs that asked for it end.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, int], tuple[Bill, Account]] = OrderedDict()
        #: Runs not yet ended, by cached bill version.
        self._open: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get_many(
        self, keys: Iterable[tuple[str, int]]
    ) -> dict[tuple[str, int], tuple[Bill, Account]]:
        """The cached ones among ``keys``."""
        found: dict[tuple[str, int], tuple[Bill, Account]] = {}
        with self._lock:
            for key in keys:
                item = self._items.get(key)
                if item is not None:
                    self._items.move_to_end(key)
                    found[key] = item
        return found

    def put_many(
        self,
        items: Mapping[tuple[str, int], tuple[Bill, Account]],
        runs: Mapping[tuple[str, int], int],
    ) -> None:
        """Keep these bills until ``runs[key]`` more of their runs have ended.

        A bill with no runs to wait for is not kept (one already kept keeps its count).
        """
        if self.size <= 0:
            return
        with self._lock:
            for key, item in items.items():
                waiting = self._open.get(key, 0) + runs.get(key, 0)
                if waiting <= 0:
                    continue
                self._open[key] = waiting
                held = self._items.get(key)
                # A bill version never changes (the store refuses other content under a kept
                # key), so a kept bill stays as it is; only its account may be newer.
                self._items[key] = item if held is None else (held[0], item[1])
                self._items.move_to_end(key)
            while len(self._items) > self.size:
                key, _ = self._items.popitem(last=False)
                self._open.pop(key, None)

    def settle(self, keys: Iterable[tuple[str, int]]) -> None:
        """One run of each of these bill versions has ended (once per run)."""
        with self._lock:
            for key in keys:
                waiting = self._open.get(key)
                if waiting is None:
                    continue
                if waiting <= 1:
                    del self._open[key]
                    self._items.pop(key, None)
                else:
                    self._open[key] = waiting - 1
