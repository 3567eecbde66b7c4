"""One job per tenant: ``engine.due_tenants()`` and ``engine.deliver_tenant(...)``.

The entry points a job system (Celery: ``billbridge.contrib.celery``) uses to deliver each
destination tenant in its own job, under the tenant lease ``billbridge worker`` takes. Against
the ``fakebooks`` destination with two tenants (``t-uk``, ``t-us``), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

from billbridge import hookimpl
from billbridge.errors import TransientError
from billbridge.store import atomically
from support import ACME, ACME_BILL, World

UK, US = "fakebooks:t-uk", "fakebooks:t-us"


@pytest.fixture
def batch() -> bool:
    """Single sends: enough for jobs, which do not depend on how a tenant sends."""
    return False


def two_tenants(world: World) -> tuple[Any, Any]:
    """An integration to each tenant, both taking every bill; ACME mapped."""
    uk = world.integration("UK")
    world.provider.tenants = ["t-us"]
    us = world.integration("US")
    world.map_account(ACME, "cust-acme")
    return uk, us


def statuses(world: World) -> dict[str, str]:
    return {r.integration_id: r.status.value for r in world.engine.runs.list(limit=None)}


def test_each_tenant_is_delivered_by_its_own_job(world: World) -> None:
    uk, us = two_tenants(world)
    world.engine.submit_bill(ACME_BILL, ACME)
    due = {t.key: t.integration_ids for t in world.engine.due_tenants()}
    assert due == {UK: [uk.id], US: [us.id]}

    # An integration that does not send to the tenant is left out of its job.
    report = world.engine.deliver_tenant(UK, [uk.id, us.id])
    assert report is not None
    assert (report.attempted, report.completed) == (1, 1)
    assert statuses(world) == {uk.id: "COMPLETE", us.id: "WAITING"}
    assert [t.key for t in world.engine.due_tenants()] == [US]

    report = world.engine.deliver_tenant(US, [us.id])
    assert report is not None and report.completed == 1
    assert world.engine.due_tenants() == []
    assert len(world.provider.invoices) == 2


def test_a_tenant_leased_by_another_worker_is_left_to_it_until_its_lease_lapses(
    world: World,
) -> None:
    uk, _ = two_tenants(world)
    world.engine.submit_bill(ACME_BILL, ACME)
    now = world.clock.now()
    lease = timedelta(seconds=world.engine.settings.worker_lease_seconds)
    held = atomically(
        world.engine.uow,
        lambda uow: uow.tenants.acquire(UK, worker="another-worker", now=now, until=now + lease),
    )
    assert held is not None

    assert world.engine.deliver_tenant(UK, [uk.id]) is None
    assert world.provider.invoices == {}

    # The other worker died: once its lease has lapsed, the tenant is delivered here.
    world.clock.advance(lease.total_seconds() + 1)
    report = world.engine.deliver_tenant(UK, [uk.id])
    assert report is not None and report.completed == 1


def test_two_jobs_for_one_tenant_in_one_process_do_not_both_deliver(world: World) -> None:
    # Celery's threads pool runs jobs of one process on threads sharing one engine, hence one
    # lease holder: the second job must not take the lease the first holds.
    uk, _ = two_tenants(world)
    world.engine.submit_bill(ACME_BILL, ACME)
    sending, release = threading.Event(), threading.Event()

    @hookimpl(specname="send_bill")
    def held(**_: Any) -> Any:
        sending.set()
        release.wait(30)
        raise TransientError("released")

    engine = world.other_engine(hooks={"send_bill": held})
    reports: list[Any] = []
    first = threading.Thread(target=lambda: reports.append(engine.deliver_tenant(UK, [uk.id])))
    try:
        first.start()
        assert sending.wait(30)
        assert engine.deliver_tenant(UK, [uk.id]) is None
    finally:
        release.set()
        first.join(30)
        engine.close()
    assert [r.attempted for r in reports] == [1]


def test_a_job_delivers_at_most_max_runs(world: World) -> None:
    world.integration("UK")
    world.submit_numbered(range(1, 4))
    (tenant,) = world.engine.due_tenants()
    report = world.engine.deliver_tenant(tenant.key, tenant.integration_ids, max_runs=2)
    assert report is not None and report.attempted == 2
    report = world.engine.deliver_tenant(tenant.key, tenant.integration_ids)
    assert report is not None and report.attempted == 1


def test_a_job_for_a_tenant_with_nothing_due_does_nothing(world: World) -> None:
    uk, _ = two_tenants(world)
    report = world.engine.deliver_tenant(UK, [uk.id])
    assert report is not None and report.attempted == 0
