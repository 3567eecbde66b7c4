"""Real Celery workers deliver through ``billbridge.contrib.celery``: every bill exactly once.

Two worker processes (one with the prefork pool and an embedded beat, one with the threads
pool, two slots each) run ``celery_worker_app`` against a real broker, RabbitMQ or Redis, on a
queue of this test's own. Beat fans out every half second, so copies of one tenant's delivery
task often run at once on different workers: the tenant lease must keep them apart. Bills
arrive in waves while they work, for the QuickBooks and Xero emulators with their rate limits
on. Then, as for ``billbridge worker`` (``test_reliability_crash.py``): every bill has exactly
one document at its destination, every run is COMPLETE, and no request got a 429.

The crash variant kills whichever worker process holds claimed runs (a prefork child, or the
whole threads worker, which is then started again) with SIGKILL, four times, with short leases
(1.5 s), small delivery tasks and slow emulators (0.2 s a request) so that kills land
mid-delivery; rate limits are off there, as in ``test_reliability_crash.py`` (a killed worker
cannot save the tenant's usage). Every bill must still arrive exactly once.

Brokers: ``BILLBRIDGE_TEST_RABBITMQ_URL`` (default ``amqp://guest:guest@127.0.0.1:5672//``) and
``BILLBRIDGE_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``). An unreachable broker
skips its test, except under CI (``CI`` set), where it fails the run, as PostgreSQL does.
Marked ``slow`` (processes)::

    .venv/bin/pytest -m slow tests/integration/test_celery_workers.py
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from kombu import Connection
from test_reliability_crash import claiming_pids
from test_reliability_world import (
    PYTHON,
    Emulators,
    assert_each_bill_once,
    make_engine,
    prepare,
    run_statuses,
    running_emulators,
    submit,
    worker_env,
    worker_params,
)

from billbridge.domain.clock import SystemClock
from billbridge.domain.models import RunStatus
from billbridge.secrets import generate_key
from billbridge.testing.emulation.faults import FaultPlan

pytestmark = pytest.mark.slow

BROKERS = {
    "rabbitmq": ("BILLBRIDGE_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//"),
    "redis": ("BILLBRIDGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
}
#: Bills per destination, submitted in waves of ``WAVE``.
BILLS, WAVE = 60, 10
#: Worker processes the crash variant kills.
KILLS = 4


@pytest.fixture(params=sorted(BROKERS))
def broker_url(request: pytest.FixtureRequest) -> str:
    """A reachable broker's URL (skipped when unreachable, failed under CI)."""
    variable, default = BROKERS[request.param]
    url = os.environ.get(variable, "").strip() or default
    try:
        with Connection(url, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:
        reason = f"{request.param} at {url} is unreachable ({exc}); set {variable}"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set, so the Celery tests must run)", pytrace=False)
        pytest.skip(reason)
    return url


@pytest.fixture
def queue(broker_url: str) -> Iterator[str]:
    """A queue of this test's own, deleted afterwards."""
    name = f"billbridge-test-{uuid.uuid4().hex}"
    yield name
    with Connection(broker_url, connect_timeout=3) as connection:
        channel = connection.default_channel
        channel.queue_delete(name)
        if connection.transport_cls in ("amqp", "pyamqp") or "amqp" in broker_url:
            channel.exchange_delete(name)  # Celery declares a direct exchange per queue


class CeleryWorkers:
    """Worker processes this test started (stopped by their own process group)."""

    def __init__(self, params: dict[str, Any], logs: Path) -> None:
        self.params = params
        self.logs = logs
        self.processes: list[subprocess.Popen[bytes]] = []
        self.files: list[IO[bytes]] = []

    def start(self, pool: str, *, beat: bool = False) -> None:
        n = len(self.processes) + 1
        log = (self.logs / f"celery-{n}.log").open("wb")
        self.files.append(log)
        command = [
            PYTHON, "-m", "celery", "-A", "celery_worker_app", "worker",
            "--pool", pool, "--concurrency", "2", "--queues", self.params["queue"],
            "--hostname", f"{self.params['queue']}-{n}@%h",
            "--without-mingle", "--without-gossip", "--without-heartbeat", "--loglevel", "INFO",
        ]  # fmt: skip
        if beat:
            command += ["--beat", "--schedule", str(self.logs / "beat-schedule")]
        self.processes.append(
            subprocess.Popen(
                command,
                env=worker_env(self.params),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its pool's children and beat go with it
            )
        )

    def wait_until_ready(self, timeout: float = 120) -> None:
        """Until every worker consumes (and its first engine, built on its first task, is
        not yet needed): bills sent before would all go in the first fan-out."""
        deadline = time.monotonic() + timeout
        while not all(" ready." in self.log(n) for n in range(len(self.processes))):
            assert self.failed() == [], "a Celery worker exited"
            assert time.monotonic() < deadline, "the Celery workers did not get ready in time"
            time.sleep(0.2)

    def failed(self) -> list[str]:
        """What workers that exited printed (they should run until stopped)."""
        return [self.log(n) for n, p in enumerate(self.processes) if p.poll() is not None]

    def log(self, index: int) -> str:
        return (self.logs / f"celery-{index + 1}.log").read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)  # warm shutdown: tasks finish first
        for process in self.processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        for log in self.files:
            log.close()


def throttled(world: Emulators) -> int:
    """429s the emulators answered."""
    return sum(world.quickbooks.throttled.values()) + sum(world.xero.rate_limited.values())


def test_celery_workers_deliver_every_bill_once_within_the_limits(
    broker_url: str, queue: str, database_url: str, tmp_path: Path
) -> None:
    with running_emulators(SystemClock()) as world:
        key = generate_key()
        engine = make_engine(database_url, world, tmp_path, key)
        workers = CeleryWorkers(
            worker_params(world, database_url, tmp_path, key, broker=broker_url, queue=queue),
            tmp_path,
        )
        try:
            prepare(engine, world, quickbooks=BILLS, xero=BILLS)
            workers.start("prefork", beat=True)
            workers.start("threads")
            workers.wait_until_ready()
            for start in range(1, BILLS + 1, WAVE):
                submit(engine, quickbooks=WAVE, xero=WAVE, start=start)
                time.sleep(0.4)
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                assert workers.failed() == [], "a Celery worker exited"
                if run_statuses(engine) == {RunStatus.COMPLETE.value: 2 * BILLS}:
                    break
                time.sleep(0.5)
        finally:
            workers.stop()
        try:
            assert run_statuses(engine) == {RunStatus.COMPLETE.value: 2 * BILLS}, [
                workers.log(n) for n in range(len(workers.processes))
            ]
            assert_each_bill_once(world, quickbooks=BILLS, xero=BILLS)
            assert throttled(world) == 0
        finally:
            engine.close()


def test_celery_workers_killed_mid_delivery_still_deliver_every_bill_once(
    broker_url: str, queue: str, postgres_url: str, tmp_path: Path
) -> None:
    slow = FaultPlan(latency=0.2)
    with running_emulators(
        SystemClock(), limits=False, quickbooks_faults=slow, xero_faults=FaultPlan(latency=0.2)
    ) as world:
        key = generate_key()
        engine = make_engine(postgres_url, world, tmp_path, key)
        params = worker_params(
            world,
            postgres_url,
            tmp_path,
            key,
            broker=broker_url,
            queue=queue,
            settings={"worker_lease_seconds": 1.5, "http_timeout": 10.0},
            max_runs=10,
        )
        workers = CeleryWorkers(params, tmp_path)
        killed: set[int] = set()
        try:
            prepare(engine, world, quickbooks=BILLS, xero=BILLS)
            workers.start("prefork", beat=True)
            workers.start("threads")
            workers.wait_until_ready()
            submit(engine, quickbooks=BILLS, xero=BILLS)
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                if run_statuses(engine) == {RunStatus.COMPLETE.value: 2 * BILLS}:
                    break
                # A killed worker's claims outlive it until they lapse: not killed twice.
                claiming = claiming_pids(engine) - killed if len(killed) < KILLS else set()
                for pid in claiming:
                    time.sleep(0.1)  # into the request or the write of its outcome
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    killed.add(pid)
                    threads_worker = [p for p in workers.processes if p.pid == pid]
                    if threads_worker:
                        threads_worker[0].wait(10)
                        workers.start("threads")
                    break
                time.sleep(0.2)
        finally:
            workers.stop()
        try:
            assert len(killed) == KILLS
            assert run_statuses(engine) == {RunStatus.COMPLETE.value: 2 * BILLS}, [
                workers.log(n) for n in range(len(workers.processes))
            ]
            assert_each_bill_once(world, quickbooks=BILLS, xero=BILLS)
        finally:
            engine.close()
