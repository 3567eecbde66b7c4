"""The worker's loop survives its database and stops only for configuration errors."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import psycopg
import pytest
from sqlalchemy import make_url

from billbridge.errors import SecretKeyError
from billbridge.services.delivery.loop import LoopSettings, WorkerLoop
from billbridge.store import SchemaTooNew
from support import World

FAST = LoopSettings(poll=0.01, backoff=0.01, max_backoff=0.05)


@pytest.fixture
def batch() -> bool:
    return False


def submit(world: World, count: int) -> None:
    world.integration()
    world.submit_numbered(range(count))


def test_a_database_busy_past_its_timeout_is_waited_for(world: World, sqlite_url: str) -> None:
    if not world.database_url.startswith("sqlite"):
        pytest.skip("SQLite's write lock")
    submit(world, 3)
    engine = world.other_engine(sqlite_busy_timeout=0.2)
    holder = sqlite3.connect(make_url(world.database_url).database or "", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process writing, for a long time
        loop = WorkerLoop(engine.deliverer, engine.clock, settings=FAST)
        waits = [loop.run_once() for _ in range(2)]
        assert loop.failures == 2 and all(w > 0 for w in waits)  # backing off, not stopped
        holder.execute("ROLLBACK")
        loop.run_once()
        assert loop.failures == 0
        statuses = {r.status.value for r in engine.runs.list(limit=None)}
        assert statuses == {"COMPLETE"}
    finally:
        holder.close()
        engine.close()


def test_connections_cut_by_the_server_are_survived(world: World) -> None:
    if not world.database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's connections")
    submit(world, 3)
    loop = WorkerLoop(world.engine.deliverer, world.engine.clock, settings=FAST)
    world.engine.runs.list(limit=None)  # the pool holds connections now
    url = make_url(world.database_url)
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (url.database,),
        )
    for _ in range(3):
        loop.run_once()
    assert {r.status.value for r in world.engine.runs.list(limit=None)} == {"COMPLETE"}


@pytest.mark.parametrize("fatal", [SchemaTooNew("newer schema"), SecretKeyError("no key")])
def test_configuration_errors_stop_the_loop(world: World, fatal: Exception) -> None:
    calls: list[int] = []

    class Broken:
        def deliver_pending(self) -> Any:
            calls.append(1)
            raise fatal

    loop = WorkerLoop(Broken(), world.engine.clock, settings=FAST)  # type: ignore[arg-type]
    with pytest.raises(type(fatal)):
        loop.run()
    assert calls == [1]


def test_stop_ends_the_loop_between_passes(world: World) -> None:
    submit(world, 2)
    loop = WorkerLoop(world.engine.deliverer, world.engine.clock, settings=LoopSettings(poll=30))
    thread = threading.Thread(target=loop.run)
    thread.start()
    loop.stop()
    thread.join(10)
    assert not thread.is_alive()


def test_the_loop_wakes_for_the_earliest_work_due(world: World) -> None:
    from datetime import timedelta

    clock = world.engine.clock
    settings = LoopSettings(poll=60.0)
    soon = [lambda: clock.now() + timedelta(seconds=7), lambda: None]
    idle = WorkerLoop(world.engine.deliverer, clock, settings=settings)
    assert idle.run_once() == 60.0  # nothing waiting: the poll interval
    reading = WorkerLoop(world.engine.deliverer, clock, settings=settings, due=soon)
    assert reading.run_once() == 7.0  # a status read-back due sooner than the poll
    submit(world, 1)
    world.engine.deliver_pending()  # nothing left due: still the read-back's time
    assert WorkerLoop(None, clock, settings=settings, due=soon).run_once() == 7.0
