"""Delivery schedules: an integration delivers as soon as a bill arrives, or at the slots of a
cron expression ("every hour", as the QuickBooks sync products do).

A schedule is five fields, ``minute hour day-of-month month day-of-week`` (names such as
``mon-fri`` and ``jan`` allowed, ``*/15`` steps, ``1-5`` ranges, ``L`` for the last day of the
month), or one of the shorthands ``@hourly``, ``@daily`` (``@midnight``), ``@weekly``,
``@monthly``, ``@yearly`` (``@annually``); read in the integration's time zone (UTC unless it
says otherwise). Expressions are parsed and their slots computed by ``croniter``, a maintained
library; this module adds messages that say which field is wrong and where.

A run of a scheduled integration is due at the first slot after its bill arrived
(:func:`next_slot`), so the worker delivers it then without knowing about schedules.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

__all__ = ["FIELDS", "SHORTHANDS", "ScheduleError", "check_schedule", "check_timezone", "next_slot"]

#: The five fields, in order, with the values each takes.
FIELDS = (
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day of month", "1-31 or L"),
    ("month", "1-12 or jan-dec"),
    ("day of week", "0-7 or sun-sat, 0 and 7 both Sunday"),
)
SHORTHANDS = ("@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually")
_TOKEN = re.compile(r"\S+")
# Far enough back that a slot exists after it for any expression that ever matches.
_PROBE = datetime(2024, 1, 1, tzinfo=UTC)


class ScheduleError(ValueError):
    """A schedule or time zone that cannot be used; ``column`` (1-based) is where, if known."""

    def __init__(self, message: str, column: int | None = None) -> None:
        super().__init__(message, column)
        self.message = message
        self.column = column

    def __str__(self) -> str:
        return self.message if self.column is None else f"{self.message} at column {self.column}"


def _fields(expression: str) -> list[tuple[str, int]]:
    """The expression's fields with their 1-based columns."""
    return [(m.group(), m.start() + 1) for m in _TOKEN.finditer(expression)]


def check_schedule(expression: str) -> None:
    """Raise :class:`ScheduleError` saying what is wrong with ``expression``, and where.

    Each field is checked on its own first (so the message names the field at fault), then
    the whole expression must match at least one date (``0 0 30 2 *`` never does).
    """
    fields = _fields(expression)
    if not fields:
        raise ScheduleError("the schedule is empty: leave it out to deliver at once")
    first, column = fields[0]
    if first.startswith("@"):
        if first.lower() not in SHORTHANDS or len(fields) > 1:
            raise ScheduleError(
                f"unknown shorthand {expression.strip()!r}; use one of {', '.join(SHORTHANDS)} "
                "or five fields",
                column,
            )
        return
    if len(fields) != len(FIELDS):
        where = fields[len(FIELDS)][1] if len(fields) > len(FIELDS) else len(expression) + 1
        names = ", ".join(name for name, _ in FIELDS)
        raise ScheduleError(
            f"a schedule has {len(FIELDS)} fields ({names}); this one has {len(fields)}", where
        )
    for index, (token, column) in enumerate(fields):
        probe = ["*"] * len(FIELDS)
        probe[index] = token
        try:
            croniter(" ".join(probe), _PROBE)
        except CroniterError as exc:
            name, values = FIELDS[index]
            what = "is out of range" if "out of range" in str(exc) else "is not valid"
            raise ScheduleError(f"the {name} field {token!r} {what} ({values})", column) from None
    try:
        croniter(expression, _PROBE).get_next(datetime)
    except CroniterBadDateError:
        raise ScheduleError(
            f"{expression.strip()!r} never matches a date (such as 30 February)", fields[0][1]
        ) from None
    except CroniterError as exc:
        raise ScheduleError(f"the schedule is not valid: {exc}", fields[0][1]) from None


def check_timezone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``, or :class:`ScheduleError`."""
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"unknown time zone {name!r}: use an IANA name such as Europe/London or UTC"
        ) from None


def next_slot(expression: str, after: datetime, timezone: str | None = None) -> datetime:
    """The schedule's first slot strictly after ``after``, as an aware UTC time.

    :param timezone: the IANA zone the schedule's hours and days are in (default UTC).
    :raises ScheduleError: the expression or the zone cannot be used.
    """
    zone = check_timezone(timezone) if timezone else UTC
    local = after.astimezone(zone)
    try:
        slot = croniter(expression.strip(), local).get_next(datetime)
    except CroniterError:
        check_schedule(expression)  # says what is wrong
        raise
    if not isinstance(slot, datetime):  # pragma: no cover - croniter returns what it is asked
        raise ScheduleError(f"croniter gave {slot!r} for {expression!r}")
    return slot.astimezone(UTC)
