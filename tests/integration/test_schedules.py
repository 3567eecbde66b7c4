"""Delivery schedules end to end against the QuickBooks and Xero emulators, on SQLite and
PostgreSQL: a scheduled integration's runs wait for their slot (in the integration's time zone)
and the worker delivers them then; an unscheduled one delivers at once; a schedule that does not
parse is refused when saved and loses no run."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_reliability_world import (
    START,
    Emulators,
    Prepared,
    make_engine,
    prepare,
    running_emulators,
    submit,
)

from billbridge.domain.models import RunStatus
from billbridge.engine import Engine
from billbridge.errors import ValidationFailed
from billbridge.secrets import generate_key
from billbridge.testing.emulation.clock import ManualClock

#: START is 2026-11-02 09:00:00 UTC, a Monday.
NOW = datetime.fromtimestamp(START, UTC)


@pytest.fixture
def scheduled(
    database_url: str, tmp_path: Path
) -> Iterator[tuple[Engine, Emulators, ManualClock, Prepared]]:
    clock = ManualClock(START + 5)  # a little after nine: the slot at nine has passed
    with running_emulators(clock) as world:
        engine = make_engine(database_url, world, tmp_path, generate_key())
        try:
            yield engine, world, clock, prepare(engine, world, quickbooks=3, xero=2)
        finally:
            engine.close()


def schedule(engine: Engine, integration_id: str, **config: str) -> None:
    integration = engine.integrations.get(integration_id)
    engine.integrations.update(
        integration.id,
        version=integration.version,
        config={
            "name": integration.name,
            "accountFilter": integration.config.account_filter,
            **config,
        },
    )


def test_runs_of_a_scheduled_integration_wait_for_their_slot(
    scheduled: tuple[Engine, Emulators, ManualClock, Prepared],
) -> None:
    engine, world, clock, prepared = scheduled
    quickbooks = prepared.integrations["quickbooks"]
    schedule(engine, quickbooks, deliverySchedule="0 * * * *")
    assert submit(engine, quickbooks=3, xero=2) == 5

    report = engine.deliver_pending()
    # Xero delivers at once; QuickBooks waits for ten o'clock.
    assert report.statuses == {RunStatus.COMPLETE.value: 2}
    waiting = engine.runs.list(integration_id=quickbooks, limit=None)
    assert {(r.status, r.next_attempt_at) for r in waiting} == {
        (RunStatus.WAITING, NOW + timedelta(hours=1))
    }
    assert engine.next_due_at() == NOW + timedelta(hours=1)
    assert world.quickbooks.calls["batch"] == 0

    clock.advance(3600 - 6)  # 09:59:59
    assert engine.deliver_pending().attempted == 0
    clock.advance(1)
    report = engine.deliver_pending()
    assert report.statuses == {RunStatus.COMPLETE.value: 3}
    assert world.quickbooks.calls["batch"] == 1  # one batch at the slot


def test_slots_are_in_the_integrations_time_zone(
    scheduled: tuple[Engine, Emulators, ManualClock, Prepared],
) -> None:
    engine, _, _, prepared = scheduled
    xero = prepared.integrations["xero"]
    # 08:00 on weekdays in New York: 13:00 UTC in November (EST).
    schedule(engine, xero, deliverySchedule="0 8 * * mon-fri", scheduleTimezone="America/New_York")
    submit(engine, quickbooks=0, xero=2)
    runs = engine.runs.list(integration_id=xero, limit=None)
    assert {r.next_attempt_at for r in runs} == {datetime(2026, 11, 2, 13, 0, tzinfo=UTC)}


def test_a_schedule_that_does_not_parse_is_refused_and_loses_no_run(
    scheduled: tuple[Engine, Emulators, ManualClock, Prepared],
) -> None:
    engine, _, clock, prepared = scheduled
    quickbooks = prepared.integrations["quickbooks"]
    schedule(engine, quickbooks, deliverySchedule="30 * * * *")
    submit(engine, quickbooks=2, xero=0)
    before = engine.integrations.get(quickbooks)
    with pytest.raises(ValidationFailed) as refused:
        schedule(engine, quickbooks, deliverySchedule="0 0 31 2 *")
    assert [e.to_dict() for e in refused.value.errors] == [
        {
            "path": "/config/deliverySchedule",
            "message": "'0 0 31 2 *' never matches a date (such as 30 February) at column 1",
        }
    ]
    assert engine.integrations.get(quickbooks) == before
    clock.advance(30 * 60)
    assert engine.deliver_pending().statuses == {RunStatus.COMPLETE.value: 2}
