"""Delivery schedules: cron expressions checked with messages that say which field is wrong
and where, and the next slot after a bill arrived, in the integration's time zone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from billbridge.domain.schedule import ScheduleError, check_schedule, check_timezone, next_slot


@pytest.mark.parametrize(
    "expression",
    [
        "0 * * * *",
        "*/15 * * * *",
        "30 2 * * *",
        "0 9 * * mon-fri",
        "0 0 L * *",
        "@daily",
        " @HOURLY ",
    ],
)
def test_schedules_people_write_are_accepted(expression: str) -> None:
    check_schedule(expression)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 25 * * *", "the hour field '25' is out of range (0-23) at column 3"),
        ("61 * * * *", "the minute field '61' is out of range (0-59) at column 1"),
        (
            "0 0 * * 8",
            "the day of week field '8' is out of range (0-7 or sun-sat, 0 and 7 both Sunday) "
            "at column 9",
        ),
        ("0 0 * foo *", "the month field 'foo' is not valid (1-12 or jan-dec) at column 7"),
        ("*/0 * * * *", "the minute field '*/0' is not valid (0-59) at column 1"),
        (
            "* * *",
            "a schedule has 5 fields (minute, hour, day of month, month, day of week); this one "
            "has 3 at column 6",
        ),
        (
            "0 * * * * 2026",
            "a schedule has 5 fields (minute, hour, day of month, month, day of week); this one "
            "has 6 at column 11",
        ),
        ("0 0 30 2 *", "'0 0 30 2 *' never matches a date (such as 30 February) at column 1"),
        (
            "@every 5m",
            "unknown shorthand '@every 5m'; use one of @hourly, @daily, @midnight, @weekly, "
            "@monthly, @yearly, @annually or five fields at column 1",
        ),
        ("   ", "the schedule is empty: leave it out to deliver at once"),
    ],
)
def test_a_schedule_that_does_not_parse_says_which_field_and_where(
    expression: str, message: str
) -> None:
    with pytest.raises(ScheduleError) as caught:
        check_schedule(expression)
    assert str(caught.value) == message


def test_the_next_slot_is_strictly_after_the_bill_arrived() -> None:
    at = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    assert next_slot("0 * * * *", at) == datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    assert next_slot("0 * * * *", at.replace(minute=59, second=59)) == datetime(
        2026, 11, 2, 10, 0, tzinfo=UTC
    )
    assert next_slot("@daily", at) == datetime(2026, 11, 3, 0, 0, tzinfo=UTC)


def test_slots_are_read_in_the_integrations_time_zone() -> None:
    # 02:00 in New York is 07:00 UTC in winter and 06:00 UTC in summer.
    winter = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
    summer = datetime(2026, 7, 10, 12, 0, tzinfo=UTC)
    assert next_slot("0 2 * * *", winter, "America/New_York") == datetime(
        2026, 1, 11, 7, 0, tzinfo=UTC
    )
    assert next_slot("0 2 * * *", summer, "America/New_York") == datetime(
        2026, 7, 11, 6, 0, tzinfo=UTC
    )
    # Weekdays are the zone's weekdays: Friday 23:30 in London is not yet Saturday's slot.
    friday = datetime(2026, 1, 9, 23, 30, tzinfo=UTC)
    assert next_slot("0 9 * * mon-fri", friday, "Europe/London") == datetime(
        2026, 1, 12, 9, 0, tzinfo=UTC
    )


def test_an_unknown_time_zone_is_refused() -> None:
    assert str(check_timezone("Europe/London")) == "Europe/London"
    with pytest.raises(ScheduleError) as caught:
        check_timezone("Mars/Olympus")
    assert str(caught.value) == (
        "unknown time zone 'Mars/Olympus': use an IANA name such as Europe/London or UTC"
    )
