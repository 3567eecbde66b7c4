"""The delivery commands: bills submit, preview, worker, runs, events, skips."""

from __future__ import annotations

import json
from collections.abc import Iterator
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
from support import SAMPLES

ACME_BILL = SAMPLES / "bill-acme-uk-2025-09.json"
ACME = SAMPLES / "account-acme-uk.json"
GLOBEX_BILL = SAMPLES / "bill-globex-us-2026-09.json"
GLOBEX = SAMPLES / "account-globex-us.json"


@pytest.fixture
def cli(sqlite_url: str, tmp_path: Path) -> Iterator[tuple[Any, Engine]]:
    clock = ManualClock()
    provider = fake.Provider(clock)
    with serve(provider.app) as server:
        engine = fake.make_engine(
            sqlite_url, server.url, clock, tmp_path, generate_key(), batch=True
        )
        state = _State(None)
        state._engine = engine
        runner = CliRunner()

        def run(*args: str) -> Result:
            return runner.invoke(main, list(args), obj=state, catch_exceptions=False)

        try:
            yield run, engine
        finally:
            engine.close()


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output + result.stderr
    return result.output


def test_submit_deliver_inspect_and_act(cli: tuple[Any, Engine]) -> None:
    run, engine = cli
    integration = engine.integrations.create(name="Fake", destination="fakebooks")
    engine.integrations.connect(integration.id, fake.connect(engine).id)
    account_id = json.loads(ACME.read_text())["id"]
    engine.mappings.create(
        entity="Account",
        entity_id=account_id,
        external_table="Customer",
        external_id="c1",
        external_system="fakebooks",
    )
    submitted = json.loads(
        ok(
            run(
                "bills",
                "submit",
                str(ACME_BILL),
                str(GLOBEX_BILL),
                "--account",
                str(ACME),
                "--account",
                str(GLOBEX),
                "--json",
            )
        )
    )
    assert len(submitted["runs"]) == 2
    preview = json.loads(
        ok(run("preview", "--integration", integration.id, str(ACME_BILL), "--account", str(ACME)))
    )
    assert preview["body"]["customer"] == "c1"
    worker = run("worker", "--once", "--quiet")
    ok(worker)
    assert "delivered 2 run(s)" in worker.stderr
    assert "1 COMPLETE" in worker.stderr and "1 ERROR" in worker.stderr
    runs = json.loads(ok(run("runs", "list", "--json")))
    failed = next(r for r in runs if r["status"] == "ERROR")
    shown = json.loads(ok(run("runs", "show", failed["id"])))
    assert shown["attemptLog"][0]["status"] == "ERROR"
    assert "COMPLETE" in ok(run("runs", "list", "--status", "complete"))
    events = json.loads(ok(run("events", "list", "--open", "--json")))
    assert [e["type"] for e in events] == ["integration.missingaccountmapping.error"]
    assert "Globex" in events[0]["message"]
    ok(run("events", "action", events[0]["id"], "--by", "ops"))
    assert json.loads(ok(run("events", "list", "--open", "--json"))) == []
    engine.mappings.create(
        entity="Account",
        entity_id=failed["accountId"],
        external_table="Customer",
        external_id="c2",
        external_system="fakebooks",
    )
    assert "queued run" in ok(run("runs", "replay", failed["id"]))
    ok(run("worker", "--once", "--quiet"))
    assert {r["status"] for r in json.loads(ok(run("runs", "list", "--json")))} == {
        "COMPLETE",
        "ERROR",
    }
    assert "already delivered" in ok(run("bills", "submit", str(ACME_BILL), "--account", str(ACME)))
    assert "already delivered" in ok(run("skips", "list"))


def test_bad_input_is_one_line(cli: tuple[Any, Engine], tmp_path: Path) -> None:
    run, _engine = cli
    broken = tmp_path / "broken.json"
    broken.write_text("{nope")
    result = run("bills", "submit", str(broken), "--account", str(ACME))
    assert result.exit_code == 1 and "is not valid JSON" in result.stderr
    result = run("bills", "submit", str(ACME_BILL), "--account", str(GLOBEX))
    assert result.exit_code == 1 and "no --account given" in result.stderr
    result = run("runs", "list", "--status", "SIDEWAYS")
    assert result.exit_code == 2 and "unknown status" in result.stderr
    result = run("runs", "show", "nope")
    assert result.exit_code == 1 and "run nope not found" in result.stderr


def test_the_worker_also_sends_the_webhooks_its_deliveries_raise(
    cli: tuple[Any, Engine],
) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    received: list[dict[str, Any]] = []

    async def hook(request: Request) -> JSONResponse:
        received.append(json.loads(await request.body()))
        return JSONResponse({"ok": True})

    run, engine = cli
    integration = engine.integrations.create(name="Fake", destination="fakebooks")
    engine.integrations.connect(integration.id, fake.connect(engine).id)
    engine.mappings.create(
        entity="Account", entity_id=json.loads(ACME.read_text())["id"],
        external_table="Customer", external_id="c1", external_system="fakebooks",
    )  # fmt: skip
    with serve(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as hooks:
        engine.webhooks.create(f"{hooks.url}/hook", event_types=["run.complete"])
        ok(run("bills", "submit", str(ACME_BILL), "--account", str(ACME)))
        ok(run("worker", "--once", "--quiet"))
    assert [body["type"] for body in received] == ["run.complete"]
