"""The Celery integration (``billbridge.contrib.celery``) in eager mode: tasks run in this process.

Against the ``fakebooks`` destination with two tenants, on SQLite and PostgreSQL. Real workers
on RabbitMQ and Redis: ``test_celery_workers.py`` (slow).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from celery import Celery
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from billbridge import Engine
from billbridge.contrib.celery import BillbridgeTasks, beat_schedule, install
from billbridge.domain.models import loads
from billbridge.store import atomically
from billbridge.testing.emulation.server import serve
from support import ACME, ACME_BILL, World

UK, US = "fakebooks:t-uk", "fakebooks:t-us"


@pytest.fixture
def batch() -> bool:
    return False


def eager_app() -> Celery:
    app = Celery("billbridge-tests", set_as_current=False)
    app.conf.update(task_always_eager=True, task_eager_propagates=True)
    return app


@pytest.fixture
def tasks(world: World) -> BillbridgeTasks:
    return install(eager_app(), lambda: world.engine)


def two_tenants(world: World) -> tuple[Any, Any]:
    uk = world.integration("UK")
    world.provider.tenants = ["t-us"]
    us = world.integration("US")
    world.map_account(ACME, "cust-acme")
    return uk, us


def test_the_fan_out_queues_one_delivery_per_tenant_and_each_delivers(
    world: World, tasks: BillbridgeTasks
) -> None:
    two_tenants(world)
    world.engine.submit_bill(ACME_BILL, ACME)
    assert sorted(tasks.deliver_due.delay().get()) == [UK, US]
    assert sorted(r.status.value for r in world.engine.runs.list(limit=None)) == ["COMPLETE"] * 2
    assert len(world.provider.invoices) == 2
    assert tasks.deliver_due.delay().get() == []


def test_a_delivery_task_reports_what_it_did_or_that_the_tenant_is_busy(
    world: World, tasks: BillbridgeTasks
) -> None:
    uk, _ = two_tenants(world)
    world.engine.submit_bill(ACME_BILL, ACME)
    done = tasks.deliver_tenant.delay(UK, [uk.id]).get()
    assert done["tenant"] == UK and done["busy"] is False
    assert (done["attempted"], done["statuses"]) == (1, {"COMPLETE": 1})

    now = world.clock.now()
    atomically(
        world.engine.uow,
        lambda uow: uow.tenants.acquire(
            US, worker="elsewhere", now=now, until=now.replace(year=2099)
        ),
    )
    (us_tenant,) = world.engine.due_tenants()
    busy = tasks.deliver_tenant.delay(US, us_tenant.integration_ids).get()
    assert busy == {"tenant": US, "busy": True}


def test_max_runs_bounds_each_delivery_task(world: World) -> None:
    world.integration("UK")
    world.submit_numbered(range(1, 4))
    tasks = install(eager_app(), lambda: world.engine, max_runs=2)
    (tenant,) = world.engine.due_tenants()
    assert tasks.deliver_tenant.delay(tenant.key, tenant.integration_ids).get()["attempted"] == 2
    tasks.deliver_due.delay()
    assert world.engine.due_tenants() == []


def test_status_read_back_and_webhooks_run_as_tasks(world: World) -> None:
    received: list[dict[str, Any]] = []

    async def hook(request: Request) -> JSONResponse:
        received.append(loads(await request.body()))
        return JSONResponse({"ok": True})

    engine = world.other_engine(status=True)
    try:
        tasks = install(eager_app(), lambda: engine)
        integration = world.integration("UK")
        world.map_account(ACME, "cust-acme")
        with serve(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as hooks:
            engine.webhooks.create(f"{hooks.url}/hook", event_types=["run.complete"])
            engine.submit_bill(ACME_BILL, ACME)
            tasks.deliver_due.delay()
            assert tasks.dispatch_webhooks.delay().get() == 1
        assert [body["type"] for body in received] == ["run.complete"]

        (invoice_id,) = world.provider.invoices
        world.provider.paid.add(invoice_id)
        world.clock.advance(3600 + 1)  # statusCheckMinutes: hourly by default
        report = tasks.poll_invoice_statuses.delay().get()
        assert report == {
            "busy": False,
            "read": 1,
            "changed": 1,
            "failed": 0,
            "deferred": 0,
            "events": 1,
        }
        assert [r.integration_id for r in engine.runs.list(invoice_state="paid")] == [
            integration.id
        ]
    finally:
        engine.close()


class CountingFactory:
    """An engine factory that counts the engines it built (on the world's database)."""

    def __init__(self, build: Callable[[], Engine]) -> None:
        self.build = build
        self.made: list[Engine] = []

    def __call__(self) -> Engine:
        self.made.append(self.build())
        return self.made[-1]


@pytest.fixture
def factory(world: World) -> Iterator[CountingFactory]:
    made = CountingFactory(world.other_engine)
    yield made
    for engine in made.made:
        engine.close()


def test_the_engine_is_built_once_per_process_and_again_after_a_fork(
    world: World, factory: CountingFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks = install(eager_app(), factory)
    assert factory.made == []  # registering builds nothing: senders never need an engine
    tasks.deliver_due.delay()
    tasks.dispatch_webhooks.delay()
    assert len(factory.made) == 1

    # In a forked child (Celery's prefork pool), the parent's engine is not used.
    import billbridge.contrib.celery as module

    monkeypatch.setattr(module.os, "getpid", lambda: -1)
    tasks.deliver_due.delay()
    assert len(factory.made) == 2
    assert factory.made[0].deliverer.worker_id != factory.made[1].deliverer.worker_id


def test_status_read_back_runs_once_at_a_time_in_a_process(world: World) -> None:
    # The threads pool: a second read-back in the same process would share the first one's
    # tenant leases, so it stands aside.
    entered, release = threading.Event(), threading.Event()
    engine = world.other_engine()

    def slow_poll(**_: Any) -> Any:
        entered.set()
        release.wait(30)
        return type(engine.status.poll())()

    engine.poll_invoice_statuses = slow_poll  # type: ignore[method-assign]
    tasks = install(eager_app(), lambda: engine)
    first = threading.Thread(target=tasks.poll_invoice_statuses.delay)
    try:
        first.start()
        assert entered.wait(30)
        # Called directly: eager results cannot be awaited while another thread runs a task.
        assert tasks.poll_invoice_statuses() == {"busy": True}
    finally:
        release.set()
        first.join(30)
    try:
        assert tasks.poll_invoice_statuses()["busy"] is False
    finally:
        engine.close()


def test_the_beat_schedule_names_the_tasks_install_registers() -> None:
    app = eager_app()
    install(app, lambda: pytest.fail("no task runs here"), prefix="billing.bb")
    schedule = beat_schedule(prefix="billing.bb", delivery=2.0, webhooks=None)
    assert schedule == {
        "billing.bb.deliver_due": {
            "task": "billing.bb.deliver_due",
            "schedule": 2.0,
            "options": {"expires": 2.0},
        },
        "billing.bb.poll_invoice_statuses": {
            "task": "billing.bb.poll_invoice_statuses",
            "schedule": 60.0,
            "options": {"expires": 60.0},
        },
    }
    for entry in schedule.values():
        assert entry["task"] in app.tasks
    assert "billing.bb.deliver_tenant" in app.tasks
    assert "billing.bb.dispatch_webhooks" in app.tasks
