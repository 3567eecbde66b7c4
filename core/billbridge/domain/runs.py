"""What happens to a run after an attempt: retry timing, final statuses, auto-disable counting.

Pure functions; the delivery services apply them and the store records the result.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import attrs

__all__ = ["AutoDisable", "RetryPolicy", "count_successive_errors"]


@attrs.frozen
class RetryPolicy:
    """When to try again after a transient failure, and when to give up."""

    base: float = 30.0
    cap: float = 3600.0
    max_attempts: int = 12

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds before attempt ``attempt + 1``: exponential, capped, with equal jitter."""
        ceiling: float = min(self.cap, self.base * 2.0 ** max(attempt - 1, 0))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


@attrs.frozen
class AutoDisable:
    """The successive-error count after some outcomes, and whether it disables the integration."""

    count: int
    disable: bool


def count_successive_errors(
    current: int, outcomes: Sequence[bool], *, threshold: int, enabled: bool
) -> AutoDisable:
    """Count successive error events: each error adds one, each success starts again at zero.

    :param current: the integration's count before these outcomes.
    :param outcomes: in order, ``True`` for an outcome that raised an error event, ``False`` for
        a success. Outcomes that raise no event (retries) are not passed.
    :param threshold: the integration's ``autoDisableThreshold``.
    :param enabled: whether the integration is enabled now (a disabled one is not disabled again).
    """
    count = current
    for is_error in outcomes:
        count = count + 1 if is_error else 0
    return AutoDisable(count=count, disable=enabled and count >= threshold)
