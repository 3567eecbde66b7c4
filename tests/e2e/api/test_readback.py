"""Status read-back and delivery schedules over HTTP, against the QuickBooks emulator, on
SQLite and PostgreSQL: the panels offer the new options, the background worker reads invoices
back and honours schedules, runs show (and filter by) what their invoice became, and a bad
schedule is refused with its position. Every answer is checked against the OpenAPI document.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import test_flow as flow
from api_harness import QUICKBOOKS_COMPANY, Api, Served

from billbridge.api import BackgroundWorker

GLOBEX = flow.GLOBEX
GLOBEX_BILL = flow.GLOBEX_BILL


def quickbooks_integration(api: Api, emulators: Any, **config: Any) -> tuple[str, str]:
    """A connected QuickBooks integration with Globex and the products mapped: (id, credential)."""
    credential = flow.connect(api, emulators, "quickbooks", "QuickBooks US", QUICKBOOKS_COMPANY[0])
    methods = flow.all_entities(api, f"/api/credentials/{credential}/external/PaymentMethod")
    assert {"Visa", "Check", "Cash"} <= set(methods)
    integration = api.post(
        "/api/integrations",
        {
            "name": "QuickBooks US",
            "destination": "quickbooks",
            "config": config,
            "entityConfig": {"excludedLineItemTypes": ["COMMITMENT_CONSUMED"]},
            "destinationConfig": {
                "paymentMethodMapping": [{"paymentMethod": methods["Visa"], "reportAs": "card"}]
            },
        },
        expect=201,
    )["id"]
    api.put(f"/api/integrations/{integration}/credential", {"credentialId": credential})
    items = flow.all_entities(api, f"/api/credentials/{credential}/external/Item")
    customers = f"/api/integrations/{integration}/external/Customer"
    api.post(
        "/api/mappings:import",
        [
            {"m3terEntity": "Account", "m3terId": GLOBEX["id"], "externalTable": "Customer",
             "externalId": flow.one_entity(api, customers, "Globex Corporation"),
             "integrationConfigId": integration},
            *[
                {"m3terEntity": "Product", "m3terId": product, "externalTable": "Item",
                 "externalId": items[name], "integrationConfigId": integration}
                for product, name in flow.PRODUCTS.items()
            ],
        ],
        expect=201,
    )  # fmt: skip
    return integration, methods["Visa"]


def read_now(served: Served, integration: str) -> None:
    """Make every delivered document of the integration due for a read-back now (the test
    does not wait an hour)."""
    engine = served.engine
    with engine.uow() as uow:
        runs = uow.runs.list(integration_id=integration)
        uow.ledger.reschedule_status(
            [(integration, r.bill_id) for r in runs], engine.clock.now() - timedelta(seconds=1)
        )
        uow.commit()


def test_invoices_are_read_back_and_shown_on_runs(with_emulators: tuple[Served, Any]) -> None:
    served, emulators = with_emulators
    api = served.api
    panels = api.get("/api/destinations/quickbooks", key=api.read_key)["forms"]
    config = panels["config"]["schema"]["properties"]
    assert config["statusCheckMinutes"]["default"] == 60
    assert {c["title"] for c in config["statusCheckMinutes"]["oneOf"]} >= {"Never", "Every hour"}
    assert "deliverySchedule" in config and "scheduleTimezone" in config
    mapping = panels["destinationConfig"]["uiSchema"]["paymentMethodMapping"]["items"]
    assert mapping["paymentMethod"]["ui:options"]["endpoint"].endswith("/external/PaymentMethod")

    integration, visa = quickbooks_integration(api, emulators)
    submitted = api.post("/api/bills", {"bill": GLOBEX_BILL, "account": GLOBEX}, expect=201)
    assert len(submitted["runs"]) == 1
    worker = BackgroundWorker(served.engine, webhooks=False)
    worker.run_once()
    (run,) = api.get("/api/runs", params={"integrationId": integration})["items"]
    assert run["status"] == "COMPLETE"
    assert set(run["invoice"]) == {"nextCheckAt"}  # not read yet: due in an hour

    company = emulators["quickbooks"].emulator
    company.record_payment(QUICKBOOKS_COMPANY[0], run["externalId"], method=visa)
    read_now(served, integration)
    worker.run_once()

    paid = api.get("/api/runs", params={"invoiceState": "paid"}, key=api.read_key)
    assert paid["total"] == 1
    invoice = paid["items"][0]["invoice"]
    assert invoice["state"] == "paid" and invoice["currency"] == "USD"
    assert invoice["amountDue"] == 0 and invoice["amountPaid"] == invoice["total"]
    assert "nextCheckAt" not in invoice  # settled: not read again
    (payment,) = invoice["payments"]
    assert (payment["kind"], payment["methodName"], payment["reportedAs"]) == (
        "payment",
        "Visa",
        "card",
    )
    assert api.get(f"/api/runs/{run['id']}")["invoice"] == invoice
    assert api.get("/api/runs", params={"invoiceState": ["voided", "deleted"]})["total"] == 0
    events = api.get("/api/events", params={"type": "integration.invoice.paid"})["items"]
    assert len(events) == 1 and events[0]["details"]["externalId"] == run["externalId"]

    # The bill regenerated after the invoice was paid: refused before anything is sent.
    api.post("/api/bills", {"bill": {**GLOBEX_BILL, "version": 2}, "account": GLOBEX}, expect=201)
    worker.run_once()
    refused = api.get("/api/runs", params={"status": "INVOICE_ALREADY_PAID"})["items"]
    assert len(refused) == 1 and "was paid in full" in refused[0]["error"]


def test_a_scheduled_integration_delivers_at_its_slots(
    with_emulators: tuple[Served, Any],
) -> None:
    served, emulators = with_emulators
    api = served.api
    refused = api.post(
        "/api/integrations:validate",
        {"destination": "quickbooks", "name": "Hourly", "config": {"deliverySchedule": "0 * *"}},
        key=api.read_key,
        expect=422,
    )
    assert refused["errors"] == [
        {
            "path": "/config/deliverySchedule",
            "message": "a schedule has 5 fields (minute, hour, day of month, month, day of "
            "week); this one has 3 at column 6",
        }
    ]
    integration, _ = quickbooks_integration(api, emulators, deliverySchedule="0 0 1 1 *")
    api.post("/api/bills", {"bill": GLOBEX_BILL, "account": GLOBEX}, expect=201)
    worker = BackgroundWorker(served.engine, webhooks=False, poll=5.0)
    wait = worker.run_once()
    (run,) = api.get("/api/runs", params={"integrationId": integration})["items"]
    # Waiting for the next 1 January, 00:00 UTC; the worker leaves it there, polling meanwhile.
    assert run["status"] == "WAITING"
    assert run["nextAttemptAt"].endswith("-01-01T00:00:00Z")
    assert wait == 5.0
    assert emulators["quickbooks"].documents(QUICKBOOKS_COMPANY[0]) == []
