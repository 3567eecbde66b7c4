"""Crash: worker processes killed with SIGKILL at random points; every bill arrives exactly once.

Worker processes run ``engine.deliver_pending()`` in a loop against one database and the two
emulators served by this process. Bills arrive in waves while they work (as at month-end), so
there are many small batches in flight. This process kills a random worker with SIGKILL at a
random moment (mid-claim, mid-request, between the destination's answer and the write of the
outcome) and starts a new one, until the kill budget is spent; then the workers are left to
finish. Afterwards every bill has exactly one document at its destination (QuickBooks: by the
``PrivateNote`` marker; Xero: by invoice number) and every run is COMPLETE.

Leases are short (``worker_lease_seconds=1.5``) so that a dead worker's tenant and claims are
taken over quickly. The emulators' rate limits are off: a killed worker cannot save its limiter
state, and the 60-second QuickBooks penalty would only make the test slow; limits have their
own tests and benchmarks. The emulators add 0.2 s to every request so that deliveries take a while, and half the
kills wait until the victim holds claimed runs.

Quick variant (normal suite): 100 deliveries, 2 workers, 6 kills. Heavy variant (``slow``):
1,000 deliveries, 3 workers, 40 kills::

    .venv/bin/pytest -m slow tests/integration/test_reliability_crash.py
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import IO, Any

import attrs
import pytest
from sqlalchemy import func, select
from test_reliability_world import (
    PYTHON,
    assert_each_bill_once,
    make_engine,
    prepare,
    read_worker_params,
    run_statuses,
    running_emulators,
    submit,
    worker_engine,
    worker_env,
    worker_params,
)

from billbridge.domain.clock import SystemClock
from billbridge.domain.models import RunStatus
from billbridge.engine import Engine
from billbridge.secrets import generate_key
from billbridge.store.tables import RunRow
from billbridge.testing.emulation.faults import FaultPlan
from support import db_session

LEASE_SECONDS = 1.5


def worker_main() -> None:
    """A worker process: deliver whatever is due until told to stop (or the deadline)."""
    params = read_worker_params()
    engine = worker_engine(
        params, worker_lease_seconds=LEASE_SECONDS, worker_threads=2, http_timeout=10.0
    )
    stop = Path(params["stop_file"])
    deadline = time.monotonic() + float(params["seconds"])
    try:
        while time.monotonic() < deadline:
            engine.deliver_pending()
            if stop.exists() and engine.next_due_at() is None:
                break
            time.sleep(0.05)
    finally:
        engine.close()


@attrs.define
class Workers:
    """Worker processes this test started (and only those: killed by their own pid)."""

    params: dict[str, Any]
    logs: Path
    processes: list[subprocess.Popen[bytes]] = attrs.field(factory=list)
    files: list[IO[bytes]] = attrs.field(factory=list)
    started: int = 0

    def start(self) -> subprocess.Popen[bytes]:
        self.started += 1
        log = (self.logs / f"worker-{self.started}.log").open("wb")
        self.files.append(log)
        process = subprocess.Popen(
            [PYTHON, "-c", "import test_reliability_crash as t; t.worker_main()"],
            env=worker_env(self.params),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)

    def stop_all(self, timeout: float) -> None:
        Path(self.params["stop_file"]).touch()
        for process in self.processes:
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill(process)
        for log in self.files:
            log.close()

    def failures(self) -> list[str]:
        """Logs of workers that ended with an error (not killed by us, not stopped cleanly)."""
        return [
            (self.logs / f"worker-{n + 1}.log").read_text(errors="replace")[-2000:]
            for n, process in enumerate(self.processes)
            if process.returncode not in (0, -signal.SIGKILL)
        ]


def _kill_plan(rng: random.Random) -> tuple[float, bool]:
    """When to kill a new worker, and whether to wait until it holds claimed runs.

    Half the kills come at a random moment (starting up, idle, claiming, sending, recording);
    the other half wait until the worker has runs claimed and then strike within 0.4 s, so that
    deliveries really are cut off in the middle (the case exactly-once is about).
    """
    return time.monotonic() + rng.uniform(2.0, 4.5), rng.random() < 0.5


def claiming_pids(engine: Engine) -> set[int]:
    """Pids of workers holding claimed runs (a worker's id is ``host:pid:random``)."""
    with db_session(engine) as session:
        owners = session.scalars(
            select(RunRow.claimed_by)
            .where(RunRow.status == RunStatus.STARTED.value, RunRow.claimed_by.is_not(None))
            .distinct()
        ).all()
    pids = set()
    for owner in owners:
        parts = str(owner).split(":")
        if len(parts) >= 3 and parts[-2].isdigit():
            pids.add(int(parts[-2]))
    return pids


def crash_and_recover(
    database_url: str,
    tmp_path: Path,
    *,
    per_destination: int,
    workers: int,
    kills: int,
    seed: int,
) -> dict[str, Any]:
    """Deliver ``2 × per_destination`` bills while killing workers; check exactly once."""
    rng = random.Random(seed)
    latency = FaultPlan(latency=0.2)
    other = FaultPlan(latency=0.2)
    with running_emulators(
        SystemClock(), limits=False, quickbooks_faults=latency, xero_faults=other
    ) as world:
        key = generate_key()
        engine = make_engine(database_url, world, tmp_path, key, worker_lease_seconds=1.5)
        try:
            prepare(engine, world, quickbooks=per_destination, xero=per_destination)
            params = worker_params(
                world, database_url, tmp_path, key, stop_file=str(tmp_path / "stop"), seconds=600
            )
            pool = Workers(params, tmp_path)
            live = {pool.start(): _kill_plan(rng) for _ in range(workers)}
            wave, submitted, killed = 10, 0, 0
            next_wave = time.monotonic()
            deadline = time.monotonic() + 300
            while (submitted < per_destination or killed < kills) and time.monotonic() < deadline:
                now = time.monotonic()
                if submitted < per_destination and now >= next_wave:
                    size = min(wave, per_destination - submitted)
                    submit(engine, quickbooks=size, xero=size, start=submitted + 1)
                    submitted += size
                    next_wave = now + rng.uniform(0.4, 1.2)
                claiming = claiming_pids(engine) if any(t for _, t in live.values()) else set()
                for process, (when, targeted) in list(live.items()):
                    if killed >= kills or now < when:
                        continue
                    if targeted:
                        # Wait long for claims: on a loaded machine a worker's start-up alone
                        # can take seconds, and giving up early made every kill miss.
                        if process.pid in claiming or now > when + 20:
                            # It holds claimed runs: kill it somewhere in the next moments
                            # (claiming, sending, waiting for the answer, recording).
                            live[process] = (now + rng.uniform(0.0, 0.4), False)
                        continue
                    pool.kill(process)
                    killed += 1
                    del live[process]
                    live[pool.start()] = _kill_plan(rng)
                time.sleep(0.02)
            # No more kills: the survivors deliver whatever is left, then stop.
            deadline = time.monotonic() + 240
            expected = 2 * per_destination
            while time.monotonic() < deadline:
                if run_statuses(engine).get(RunStatus.COMPLETE.value, 0) == expected:
                    break
                time.sleep(0.2)
            pool.stop_all(timeout=30)
            assert pool.failures() == [], "a worker failed:\n" + "\n---\n".join(pool.failures())
            assert run_statuses(engine) == {RunStatus.COMPLETE.value: expected}
            assert_each_bill_once(world, quickbooks=per_destination, xero=per_destination)
            with db_session(engine) as session:
                resumed = session.scalar(
                    select(func.count()).select_from(RunRow).where(RunRow.attempts > 1)
                )
            return {"killed": killed, "resumed": int(resumed or 0), "workers": pool.started}
        finally:
            engine.close()


@pytest.mark.slow
def test_killed_workers_deliver_every_bill_exactly_once(database_url: str, tmp_path: Path) -> None:
    outcome = crash_and_recover(
        database_url, tmp_path, per_destination=50, workers=2, kills=6, seed=8
    )
    assert outcome["killed"] == 6


@pytest.mark.slow
def test_killed_workers_1000_deliveries(database_url: str, tmp_path: Path) -> None:
    outcome = crash_and_recover(
        database_url, tmp_path, per_destination=500, workers=3, kills=40, seed=1000
    )
    assert outcome["killed"] == 40
    # Some deliveries were cut off mid-way and taken over by another worker.
    assert outcome["resumed"] > 0
