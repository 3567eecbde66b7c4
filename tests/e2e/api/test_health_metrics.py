"""Health, readiness and Prometheus metrics."""

from __future__ import annotations

from pathlib import Path

import httpx
from alembic import command
from api_harness import Served, sample

import fakebooks_plugin as fake
from billbridge.api import ApiSettings, BackgroundWorker, create_app
from billbridge.secrets import generate_key
from billbridge.store import Database, alembic_config
from billbridge.testing.emulation.clock import ManualClock
from billbridge.testing.emulation.server import serve

ACME = sample("account-acme-uk.json")
ACME_BILL = sample("bill-acme-uk-2025-09.json")

#: The newest schema revision this billbridge knows.
HEAD = Database("sqlite://").head_revision()


def test_health_and_readiness(served: Served) -> None:
    api, engine = served.api, served.engine
    assert api.get("/healthz", key=None) == {"status": "ok"}
    ready = api.get("/readyz", key=None)
    assert ready == {
        "ready": True,
        "database": "ok",
        "migration": HEAD,
        "expectedMigration": HEAD,
    }
    with engine.db.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0005_open_run_indexes")
    assert api.get("/readyz", key=None, expect=503)["migration"] == "0005_open_run_indexes"


def metric(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{line_start} not in the metrics:\n{text}")


def test_metrics_count_runs_queue_deliveries_latency_and_429s(
    database_url: str, tmp_path: Path
) -> None:
    clock = ManualClock()
    provider = fake.Provider(clock)
    provider.faults.error_statuses = (429,)
    provider.faults.script("error")  # the first invoice request is answered 429
    with serve(provider.app) as destination:
        engine = fake.make_engine(database_url, destination.url, clock, tmp_path, generate_key())
        app = create_app(engine, ApiSettings())
        _, key = engine.api_keys.create("prometheus", "read")
        headers = {"Authorization": f"Bearer {key}"}
        try:
            with serve(app) as server:
                integration = engine.integrations.create(name="Fake", destination="fakebooks")
                engine.integrations.connect(integration.id, fake.connect(engine).id)
                for n in (1, 2):
                    account = {**ACME, "id": f"acct-{n}"}
                    engine.mappings.create(
                        entity="Account", entity_id=account["id"], external_table="Customer",
                        external_id=f"c-{n}", external_system="fakebooks",
                    )  # fmt: skip
                    bill = {**ACME_BILL, "id": f"bill-{n}", "accountId": account["id"]}
                    engine.submit_bill(bill, account)
                before = httpx.get(f"{server.url}/metrics", headers=headers).text
                assert metric(before, 'billbridge_queue_depth{tenant="fakebooks:t-uk"}') == 2
                assert metric(before, 'billbridge_runs{status="WAITING"}') == 2
                clock.advance(30)  # latency: submitted 30 s before the delivery
                worker = BackgroundWorker(engine, metrics=app.state.metrics, webhooks=False)
                worker.run_once()
                clock.advance(5)  # past the 429's Retry-After, if the pass did not wait it out
                worker.run_once()
                httpx.get(f"{server.url}/api/runs", headers=headers)
                after = httpx.get(f"{server.url}/metrics", headers=headers)
        finally:
            engine.close()
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text
    done = 'destination="fakebooks",outcome="COMPLETE"'
    # The run answered 429 is delivered on its second attempt.
    retried = 'destination="fakebooks",outcome="RATE_LIMIT_RETRY"'
    assert metric(text, f"billbridge_deliveries_total{{{done}}}") == 2
    assert metric(text, f"billbridge_deliveries_total{{{retried}}}") == 1
    assert metric(text, 'billbridge_rate_limited_total{destination="fakebooks"}') == 1
    assert metric(text, 'billbridge_delivery_latency_seconds_count{destination="fakebooks"}') == 3
    assert metric(text, 'billbridge_delivery_latency_seconds_sum{destination="fakebooks"}') >= 90
    assert provider.faults.injected
    assert metric(text, 'billbridge_runs{status="COMPLETE"}') == 2
    assert "billbridge_queue_depth{tenant=" not in text  # nothing is due any more
    assert (
        metric(text, 'billbridge_http_requests_total{method="GET",route="/api/runs",status="200"}')
        == 1
    )
