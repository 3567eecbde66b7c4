"""The command line's part of status read-back and schedules: ``billbridge worker`` reads
invoices back and honours delivery schedules, ``runs list --paid`` and ``runs show`` tell what
each invoice became, and ``integrations create`` refuses a schedule that does not parse."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import fakebooks_plugin as fake
from billbridge import Engine
from billbridge.cli import _State, main
from billbridge.secrets import generate_key
from billbridge.testing.emulation.clock import ManualClock
from billbridge.testing.emulation.server import serve
from support import ACME, ACME_BILL, GLOBEX, GLOBEX_BILL

HOUR = 3600


@pytest.fixture
def cli(
    sqlite_url: str, tmp_path: Path
) -> Iterator[tuple[Any, Engine, fake.Provider, ManualClock]]:
    clock = ManualClock()
    provider = fake.Provider(clock)
    with serve(provider.app) as server:
        engine = fake.make_engine(
            sqlite_url, server.url, clock, tmp_path, generate_key(), status=True
        )
        state = _State(None)
        state._engine = engine
        runner = CliRunner()

        def run(*args: str) -> Result:
            return runner.invoke(main, list(args), obj=state, catch_exceptions=False)

        try:
            yield run, engine, provider, clock
        finally:
            engine.close()


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output + result.stderr
    return result.output


def connected(engine: Engine, **config: Any) -> str:
    integration = engine.integrations.create(name="Fake", destination="fakebooks", config=config)
    engine.integrations.connect(integration.id, fake.connect(engine).id)
    for account, customer in ((ACME, "c1"), (GLOBEX, "c2")):
        engine.mappings.create(
            entity="Account",
            entity_id=account["id"],
            external_table="Customer",
            external_id=customer,
            external_system="fakebooks",
        )
    return integration.id


def test_the_worker_reads_invoices_back_and_runs_list_paid_shows_them(
    cli: tuple[Any, Engine, fake.Provider, ManualClock],
) -> None:
    run, engine, provider, clock = cli
    connected(engine)
    engine.submit_bill(ACME_BILL, ACME)
    engine.submit_bill(GLOBEX_BILL, GLOBEX)
    assert "delivered 2 run(s)" in ok(run("worker", "--once", "--quiet")).replace("\n", " ")
    acme, globex = sorted(engine.runs.list(), key=lambda r: r.bill_id != ACME_BILL["id"])
    provider.paid.add(str(acme.external_id))
    provider.voided.add(str(globex.external_id))
    clock.advance(HOUR + 1)

    result = run("worker", "--once", "--quiet")
    assert "read back 2 invoice status(es): 2 changed, 2 event(s), 0 failed, 0 deferred" in (
        ok(result) + result.stderr
    )
    listed = json.loads(ok(run("runs", "list", "--paid", "--json")))
    assert [r["id"] for r in listed] == [acme.id]
    assert listed[0]["invoice"]["state"] == "paid"
    assert listed[0]["invoice"]["amountDue"] == 0
    table = ok(run("runs", "list", "--paid"))
    assert acme.id[:8] in table and "paid" in table and globex.id[:8] not in table
    voided = json.loads(ok(run("runs", "list", "--invoice-state", "voided", "--json")))
    assert [r["id"] for r in voided] == [globex.id]
    shown = json.loads(ok(run("runs", "show", globex.id)))
    assert shown["invoice"]["state"] == "voided"
    events = ok(run("events", "list", "--type", "integration.invoice.paid"))
    assert "was paid in full in Fakebooks" in events
    refused = run("runs", "list", "--invoice-state", "settled")
    assert refused.exit_code == 2 and "'settled' is not one of" in refused.output + refused.stderr


def test_the_worker_honours_a_delivery_schedule(
    cli: tuple[Any, Engine, fake.Provider, ManualClock],
) -> None:
    run, engine, provider, clock = cli
    refused = run(
        "integrations",
        "create",
        "--name",
        "Hourly",
        "--destination",
        "fakebooks",
        "--config",
        '{"deliverySchedule": "0 * * * 8"}',
    )
    assert refused.exit_code == 1
    assert (
        "/config/deliverySchedule: the day of week field '8' is out of range (0-7 or sun-sat, "
        "0 and 7 both Sunday) at column 9" in refused.stderr
    )
    connected(engine, deliverySchedule="0 * * * *")
    engine.submit_bill(ACME_BILL, ACME)
    (waiting,) = engine.runs.list()
    # The manual clock starts on the hour: the next slot is an hour away.
    assert waiting.next_attempt_at == clock.now() + timedelta(hours=1)
    assert "delivered 0 run(s)" in ok(run("worker", "--once", "--quiet"))
    assert provider.invoices == {}
    clock.advance(HOUR)
    assert "delivered 1 run(s)" in ok(run("worker", "--once", "--quiet"))
    assert len(provider.invoices) == 1
