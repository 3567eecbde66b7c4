"""Faults: 5 % errors, timeouts and lost answers, and 429 bursts; everything completes once.

Both emulators inject, on their API writes, 5 % server errors (500/503 with the provider's
body), 5 % hangs (the engine's HTTP timeout is 0.5 s, the hang 1 s: nothing is written) and 5 %
answers lost after the write was committed (the connection is cut mid-response), each drawn
from a seeded generator; one of each is also scripted first so that every kind surely happens.
429 bursts come from another app sharing the tenant's limits: before some delivery rounds it
spends the rest of the tenant's minute allowance, and the engine's next requests are refused.

Bills arrive in waves, so there are many small requests. The engine and both emulators share a
:class:`~billbridge.testing.emulation.clock.ManualClock`: backoff (30 s … 1 h) and 429 waits pass without
real waiting. Afterwards every run is COMPLETE (nothing waiting, started or retrying), every bill
has exactly one document at its destination, no run took more than the retry policy's attempts,
and the engine really did receive 429s and every kind of fault.

Quick variant: 100 deliveries. Heavy variant (``slow``): 1,000 deliveries::

    .venv/bin/pytest -m slow tests/integration/test_reliability_faults.py
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import func, select
from test_reliability_world import (
    START,
    Emulators,
    assert_each_bill_once,
    make_engine,
    prepare,
    run_statuses,
    running_emulators,
    submit,
)

from billbridge.domain.models import RunStatus
from billbridge.domain.runs import RetryPolicy
from billbridge.secrets import generate_key
from billbridge.store.tables import RunRow
from billbridge.testing.emulation.clock import ManualClock
from billbridge.testing.emulation.faults import FaultPlan
from support import db_session

RATE = 0.05
BURNER_ID = "another-app"
BURNER_SECRET = "another-app-secret"


def _plan(prefix: str, seed: int) -> FaultPlan:
    plan = FaultPlan(
        error_rate=RATE,
        timeout_rate=RATE,
        lost_response_rate=RATE,
        hang_seconds=1.0,
        path_prefixes=(prefix,),
        # Writes only: those are where a lost answer matters (and the other app's reads, which
        # spend the allowance, stay quick).
        methods=("POST", "PUT"),
        seed=seed,
    )
    plan.script("error", "timeout", "lost")
    return plan


class Burner:
    """Another app connected to the same tenants, spending their shared minute allowance."""

    def __init__(self, world: Emulators) -> None:
        self.world = world
        self.http = httpx.Client(timeout=5)
        self.burns = 0
        world.quickbooks.oauth.add_client(BURNER_ID, BURNER_SECRET)
        world.xero.oauth.add_client(BURNER_ID, BURNER_SECRET)

    def _token(self, urls: dict[str, str], scope: str) -> str:
        consent = self.http.get(
            urls["authorize_url"],
            params={
                "client_id": BURNER_ID,
                "redirect_uri": "http://127.0.0.1:9/burner",
                "response_type": "code",
                "scope": scope,
                "state": "burn",
            },
        )
        code = parse_qs(urlsplit(consent.headers["location"]).query)["code"][0]
        answer = self.http.post(
            urls["token_url"],
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": "http://127.0.0.1:9/burner",
            },
            auth=(BURNER_ID, BURNER_SECRET),
        )
        token: str = answer.json()["access_token"]
        return token

    def burn(self, destination: str) -> None:
        """Spend the tenant's minute allowance until the provider refuses this app too."""
        urls = self.world.endpoints()[destination]
        if destination == "quickbooks":
            token = self._token(urls, "com.intuit.quickbooks.accounting")
            realm = self.world.company.realm_id
            url = f"{urls['api_base_url']}/v3/company/{realm}/companyinfo/{realm}"
            headers = {"Authorization": f"Bearer {token}"}
        else:
            token = self._token(urls, "offline_access accounting.settings.read")
            url = f"{urls['api_base_url']}/BrandingThemes"
            headers = {
                "Authorization": f"Bearer {token}",
                "xero-tenant-id": self.world.org.tenant_id,
            }
        self.burns += 1
        for _ in range(600):
            if self.http.get(url, headers=headers).status_code == 429:
                return
        raise AssertionError(f"{destination} never refused the burner")

    def close(self) -> None:
        self.http.close()


def deliver_through_faults(
    database_url: str, tmp_path: Path, *, per_destination: int, wave: int, seed: int
) -> dict[str, Any]:
    """Deliver ``2 × per_destination`` bills through faults; check every guarantee."""
    rng = random.Random(seed)
    clock = ManualClock(start=START)
    quickbooks_plan = _plan("/v3/company/", seed)
    xero_plan = _plan("/api.xro/2.0/", seed + 1)
    with running_emulators(
        clock, quickbooks_faults=quickbooks_plan, xero_faults=xero_plan
    ) as world:
        engine = make_engine(database_url, world, tmp_path, generate_key(), http_timeout=0.5)
        burner = Burner(world)
        try:
            prepare(engine, world, quickbooks=per_destination, xero=per_destination)
            submitted, rounds = 0, 0
            while rounds < 2000:
                rounds += 1
                if submitted < per_destination:
                    size = min(wave, per_destination - submitted)
                    submit(engine, quickbooks=size, xero=size, start=submitted + 1)
                    submitted += size
                for destination in ("quickbooks", "xero"):
                    if rng.random() < 0.25:
                        burner.burn(destination)
                engine.deliver_pending()
                due = engine.next_due_at()
                if due is None and submitted >= per_destination:
                    break
                if due is not None and due > engine.clock.now():
                    clock.advance((due - engine.clock.now()).total_seconds() + 0.001)
            expected = 2 * per_destination
            assert run_statuses(engine) == {RunStatus.COMPLETE.value: expected}
            assert_each_bill_once(world, quickbooks=per_destination, xero=per_destination)
            with db_session(engine) as session:
                most, total = session.execute(
                    select(func.max(RunRow.attempts), func.sum(RunRow.attempts))
                ).one()
            assert most <= RetryPolicy().max_attempts
            assert total <= 4 * expected, f"{total} attempts for {expected} runs"
            received_429 = (
                sum(world.quickbooks.throttled.values())
                + sum(world.xero.rate_limited.values())
                - burner.burns  # each burn ends with the burner's own 429
            )
            assert received_429 > 0, "the engine never met a 429 burst"
            for plan in (quickbooks_plan, xero_plan):
                assert set(plan.injected) == {"error", "timeout", "lost"}, plan.injected
            return {
                "attempts": int(total),
                "most_attempts": int(most),
                "429s": received_429,
                "injected": dict(quickbooks_plan.injected + xero_plan.injected),
                "rounds": rounds,
            }
        finally:
            burner.close()
            engine.close()


def test_faults_and_429_bursts_deliver_every_bill_once(database_url: str, tmp_path: Path) -> None:
    deliver_through_faults(database_url, tmp_path, per_destination=50, wave=10, seed=7)


@pytest.mark.slow
def test_faults_and_429_bursts_1000_deliveries(database_url: str, tmp_path: Path) -> None:
    outcome = deliver_through_faults(
        database_url, tmp_path, per_destination=500, wave=25, seed=1000
    )
    assert outcome["injected"]["lost"] >= 2
