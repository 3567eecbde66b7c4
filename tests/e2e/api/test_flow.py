"""The whole flow over HTTP against the QuickBooks and Xero emulators, on SQLite and PostgreSQL.

A console's or billing service's view: destinations and their panels, credentials through the
providers' consent pages and the API's own OAuth callback (with a tenant choice), pickers filled
from the destinations, integrations saved and read back unchanged, mappings imported all or
nothing, bills explained, previewed, submitted and delivered, runs, skips and events followed
up, webhooks signed. Every answer is checked against the OpenAPI document, and at the end all
of them are scanned for tokens and secrets.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import httpx
from api_harness import QUICKBOOKS_COMPANY, XERO_UK, XERO_US, Api, Served, pretty, sample
from jsonschema import Draft7Validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from billbridge.api import BackgroundWorker
from billbridge.testing.emulation.server import serve
from support import stored_tokens

ACME = sample("account-acme-uk.json")
GLOBEX = sample("account-globex-us.json")
INITECH = sample("account-initech.json")
ACME_BILL = sample("bill-acme-uk-2025-09.json")
GLOBEX_BILL = sample("bill-globex-us-2026-09.json")
INITECH_BILL = {
    **GLOBEX_BILL,
    "id": "0c3f2a8e-5d1b-4f6e-9a7c-1b2d3e4f5a6b",
    "accountId": INITECH["id"],
    "accountCode": INITECH["code"],
    "sequentialInvoiceNumber": "INV-001043",
}
PRODUCTS = {"p-platform": "Platform", "p-api": "API Calls", "p-storage": "Storage",
            "p-events": "Events", "p-seats": "Seats"}  # fmt: skip


def consent(api: Api, authorization_url: str) -> str:
    """The user approves on the provider's page; returns the callback path the browser follows."""
    response = httpx.get(authorization_url)
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}" == api.url
    assert location.path == "/api/oauth/callback"
    return f"{location.path}?{location.query}"


def connect(api: Api, emulators: Any, destination: str, name: str, tenant: str) -> str:
    emulators[destination].grant([tenant])
    created = api.post("/api/credentials", {"name": name, "destination": destination}, expect=201)
    assert created["credential"]["displayName"] == f"{name} (Incomplete)"
    answer = api.get(consent(api, created["authorizationUrl"]), key=None)
    assert answer["credential"]["status"] == "COMPLETE"
    credential_id: str = answer["credential"]["id"]
    return credential_id


def all_entities(api: Api, path: str) -> dict[str, str]:
    """Every record of a table, walking the pages: name → id."""
    found: dict[str, str] = {}
    cursor = ""
    while True:
        page = api.get(path + (f"?cursor={cursor}" if cursor else ""), key=api.read_key)
        found.update({item["name"]: item["id"] for item in page["items"]})
        if "nextCursor" not in page:
            return found
        cursor = page["nextCursor"]


def one_entity(api: Api, path: str, name: str) -> str:
    page = api.get(path, params={"search": name}, key=api.read_key)
    return next(item["id"] for item in page["items"] if item["name"] == name)


def test_the_whole_flow_over_http(with_emulators: tuple[Served, Any]) -> None:
    served, emulators = with_emulators
    api = served.api
    integrations = set_up(api, emulators)
    map_accounts_and_products(api, integrations)
    explain_preview_submit(api, integrations)
    deliver_and_follow_up(api, served, integrations)
    round_trip_and_clean_up(api, served, integrations)
    call_every_other_route(api, integrations)
    no_secret_in_any_answer(api, served)


def set_up(api: Api, emulators: Any) -> dict[str, Any]:
    destinations = api.get("/api/destinations", key=api.read_key)
    assert [d["key"] for d in destinations["items"]] == ["quickbooks", "quickbooks_sandbox", "xero"]
    xero_panels = api.get("/api/destinations/xero", key=api.read_key)["forms"]
    picker = xero_panels["destinationConfig"]["uiSchema"]["defaultAccountCode"]
    assert picker["ui:widget"] == "externalEntityPicker"
    assert picker["ui:options"]["endpoint"] == "/api/credentials/{credentialId}/external/Account"

    quickbooks = connect(api, emulators, "quickbooks", "QuickBooks US", QUICKBOOKS_COMPANY[0])
    # One Xero consent covering two organisations: the callback asks which one.
    emulators["xero"].grant([XERO_UK[0], XERO_US[0]])
    created = api.post("/api/credentials", {"name": "Xero UK", "destination": "xero"}, expect=201)
    xero = created["credential"]["id"]
    refused = api.get(consent(api, created["authorizationUrl"]), key=None, expect=409)
    assert refused["code"] == "tenant_choice_required"
    assert {c["tenantId"] for c in refused["choices"]} == {XERO_UK[0], XERO_US[0]}
    assert len(api.get(f"/api/credentials/{xero}/tenants")["items"]) == 2
    chosen = api.post(f"/api/credentials/{xero}/tenant", {"tenantId": XERO_UK[0]})
    assert (chosen["status"], chosen["tenantName"]) == ("COMPLETE", XERO_UK[1])
    listed = api.get("/api/credentials", key=api.read_key)
    assert listed["total"] == 2
    assert {c["displayName"] for c in listed["items"]} == {"QuickBooks US", "Xero UK"}
    tested = api.post(f"/api/credentials/{quickbooks}/test", key=api.read_key)
    assert tested["ok"] is True, tested

    items = all_entities(api, f"/api/credentials/{quickbooks}/external/Item")
    assert set(PRODUCTS.values()) <= set(items)
    qbo = api.post(
        "/api/integrations",
        {
            "name": "QuickBooks (all accounts)",
            "destination": "quickbooks",
            "entityConfig": {"excludedLineItemTypes": ["COMMITMENT_CONSUMED"]},
            "destinationConfig": {
                "creditMemoItem": items["Credits and Adjustments"],
                "debitMemoItem": items["Fees"],
                "accountManagerEmailCustomField": "accountManagerEmail",
            },
        },
        expect=201,
    )
    qbo = api.put(f"/api/integrations/{qbo['id']}/credential", {"credentialId": quickbooks})
    xero_config = {
        "invoiceStatus": "AUTHORISED",
        "defaultAccountCode": "200",
        "lineAmountTypes": "NoTax",
    }
    refused = api.post(
        "/api/integrations:validate",
        {
            "destination": "xero",
            "name": "Xero UK",
            "destinationConfig": {**xero_config, "invoiceStatus": "PAID"},
        },
        key=api.read_key,
        expect=422,
    )
    assert refused["errors"] == [
        {
            "path": "/destinationConfig/invoiceStatus",
            "message": 'must be one of: Draft ("DRAFT"), Awaiting approval ("SUBMITTED"), '
            'Awaiting payment (authorised) ("AUTHORISED")',
        }
    ]
    uk = api.post(
        "/api/integrations",
        {
            "name": "Xero UK",
            "destination": "xero",
            "config": {"accountFilter": 'customFields.country == "UK"'},
            "destinationConfig": xero_config,
        },
        expect=201,
    )
    uk = api.put(f"/api/integrations/{uk['id']}/credential", {"credentialId": xero})
    return {"qbo": qbo, "uk": uk, "quickbooks": quickbooks, "xero": xero, "items": items}


def map_accounts_and_products(api: Api, found: dict[str, Any]) -> None:
    qbo, uk = found["qbo"]["id"], found["uk"]["id"]
    customers = f"/api/integrations/{qbo}/external/Customer"
    contacts = f"/api/integrations/{uk}/external/Contact"
    mappings = [
        {"m3terEntity": "Account", "m3terId": ACME["id"], "externalTable": "Customer",
         "externalId": one_entity(api, customers, "Acme Ltd"), "integrationConfigId": qbo},
        {"m3terEntity": "Account", "m3terId": GLOBEX["id"], "externalTable": "Customer",
         "externalId": one_entity(api, customers, "Globex Corporation"), "integrationConfigId": qbo},
        {"m3terEntity": "Account", "m3terId": ACME["id"], "externalTable": "Contact",
         "externalId": one_entity(api, contacts, "Acme Ltd"), "integrationConfigId": uk},
        *[
            {"m3terEntity": "Product", "m3terId": product, "externalTable": "Item",
             "externalId": found["items"][item], "integrationConfigId": qbo}
            for product, item in PRODUCTS.items()
        ],
    ]  # fmt: skip
    # All or nothing: one bad table refuses the whole import, with the item's index.
    bad = [*mappings, {**mappings[0], "m3terId": "x", "externalTable": "Invoice"}]
    refused = api.post("/api/mappings:import", bad, expect=422)
    assert [e["path"] for e in refused["errors"]] == [f"/{len(mappings)}/externalTable"]
    assert api.get("/api/mappings")["total"] == 0
    created = api.post("/api/mappings:import", mappings, expect=201)["items"]
    assert len(created) == len(mappings)
    listed = api.get("/api/mappings", params={"integrationId": qbo, "m3terEntity": "Product"})
    assert listed["total"] == len(PRODUCTS)
    duplicate = api.post("/api/mappings", mappings[0], expect=409)
    assert duplicate["code"] == "conflict"
    ids = [
        m["externalId"]
        for m in created
        if m["m3terEntity"] == "Account" and m["integrationConfigId"] == qbo
    ]
    names = api.get(
        f"/api/integrations/{qbo}/external/Customer/names",
        params=[("ids", i) for i in [*ids, "999999"]],
        key=api.read_key,
    )["names"]
    assert names == {ids[0]: "Acme Ltd", ids[1]: "Globex Corporation", "999999": None}


def explain_preview_submit(api: Api, found: dict[str, Any]) -> None:
    qbo, uk = found["qbo"]["id"], found["uk"]["id"]
    explained = api.post(
        "/api/bills:explain", {"bill": INITECH_BILL, "account": INITECH}, key=api.read_key
    )
    decisions = {d["integrationId"]: d for d in explained["integrations"]}
    assert decisions[qbo]["decision"] == "send"
    assert decisions[uk]["decision"] == "skip"
    assert "does not match the filter" in decisions[uk]["reason"]
    assert api.get("/api/runs")["total"] == 0 and api.get("/api/skips")["total"] == 0

    preview = api.post(
        f"/api/integrations/{qbo}/preview", {"bill": ACME_BILL, "account": ACME}, key=api.read_key
    )
    assert pretty(preview).count("INV-000123") >= 1
    missing = api.post(
        f"/api/integrations/{qbo}/preview",
        {"bill": INITECH_BILL, "account": INITECH},
        key=api.read_key,
        expect=409,
    )
    assert missing["code"] == "missing_mapping"
    refused = api.post(
        "/api/bills", {"bill": {**ACME_BILL, "currency": None, "version": "v3"}, "account": ACME},
        expect=422,
    )  # fmt: skip
    assert [e["path"] for e in refused["errors"]] == ["/bill/currency", "/bill/version"]

    one = api.post("/api/bills", {"bill": ACME_BILL, "account": ACME}, expect=201)
    assert {r["integrationId"] for r in one["runs"]} == {qbo, uk}
    many = api.post(
        "/api/bills:batch",
        {"items": [{"bill": GLOBEX_BILL, "account": GLOBEX}, {"bill": INITECH_BILL, "account": INITECH}]},
        expect=201,
    )  # fmt: skip
    assert (many["bills"], len(many["runs"]), len(many["skips"])) == (2, 2, 2)


def deliver_and_follow_up(api: Api, served: Served, found: dict[str, Any]) -> None:
    qbo = found["qbo"]["id"]
    BackgroundWorker(served.engine).run_once()
    complete = api.get("/api/runs", params={"status": "COMPLETE"}, key=api.read_key)
    assert complete["total"] == 3
    failed = api.get("/api/runs", params={"billId": INITECH_BILL["id"]})["items"]
    assert [r["status"] for r in failed] == ["ERROR"]
    attempts = api.get(f"/api/runs/{failed[0]['id']}/attempts")["items"]
    assert [a["status"] for a in attempts] == ["ERROR"]
    events = api.get("/api/events", params={"actioned": "false"})
    assert [e["type"] for e in events["items"]] == ["integration.missingaccountmapping.error"]
    event = events["items"][0]
    assert INITECH["id"] in event["message"]

    # Map the account the event names, replay the run, mark the event dealt with.
    customers = f"/api/integrations/{qbo}/external/Customer"
    api.post(
        "/api/mappings",
        {"m3terEntity": "Account", "m3terId": INITECH["id"], "externalTable": "Customer",
         "externalId": one_entity(api, customers, "Initech"), "integrationConfigId": qbo},
        expect=201,
    )  # fmt: skip
    replay = api.post(f"/api/runs/{failed[0]['id']}/replay", expect=201)
    assert replay["replayedFrom"] == failed[0]["id"]
    api.post(f"/api/runs/{failed[0]['id']}/replay", expect=409)  # an open run already exists
    BackgroundWorker(served.engine).run_once()
    assert api.get(f"/api/runs/{replay['id']}")["status"] == "COMPLETE"
    actioned = api.post(f"/api/events/{event['id']}/action", {})
    assert (actioned["actioned"], actioned["actionedBy"]) == (True, "test admin")
    assert api.get("/api/events", params={"actioned": "false"})["total"] == 0

    skips = api.get("/api/skips", params={"integrationId": found["uk"]["id"]})
    assert skips["total"] == 2  # Globex and Initech are not UK accounts
    # Paging: every run once, newest first, the total on every page.
    seen, cursor = [], None
    while True:
        page = api.get("/api/runs", params={"limit": 2, **({"cursor": cursor} if cursor else {})})
        assert page["total"] == 5
        seen += [r["id"] for r in page["items"]]
        cursor = page.get("nextCursor")
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 5

    # A regenerated version updates the invoices made before.
    regenerated = {**ACME_BILL, "version": ACME_BILL["version"] + 1, "billTotal": Decimal("1300")}
    assert api.post("/api/bills", {"bill": regenerated, "account": ACME}, expect=201)["runs"]
    BackgroundWorker(served.engine).run_once()
    runs = api.get("/api/runs", params={"billId": ACME_BILL["id"]})["items"]
    assert [r["status"] for r in runs] == ["COMPLETE"] * 4
    assert len({r["externalId"] for r in runs if r["integrationId"] == qbo}) == 1


def round_trip_and_clean_up(api: Api, served: Served, found: dict[str, Any]) -> None:
    uk = found["uk"]["id"]
    saved = api.get(f"/api/integrations/{uk}", key=api.read_key)
    schemas = {
        "config": api.get("/api/schemas/global-config"),
        "entityConfig": api.get("/api/schemas/bill-entity-config"),
        "destinationConfig": api.get("/api/destinations/xero/schema"),
    }
    for part, schema in schemas.items():
        problems = list(Draft7Validator(schema).iter_errors(saved[part]))
        assert problems == [], f"{part}: {problems[0].message}"
    panel = api.get(f"/api/integrations/{uk}/panel", key=api.read_key)
    assert panel["formData"]["config"] == saved["config"]
    options = panel["forms"]["destinationConfig"]["uiSchema"]["defaultTaxType"]["ui:options"]
    assert options["endpoint"] == f"/api/integrations/{uk}/external/TaxRate"

    # What was read is sent back unchanged: accepted, a new version, nothing else changed.
    body = {"version": saved["version"], **{p: saved[p] for p in schemas}}
    again = api.put(f"/api/integrations/{uk}", body)
    assert again["version"] == saved["version"] + 1
    assert {p: again[p] for p in schemas} == {p: saved[p] for p in schemas}
    stale = api.put(f"/api/integrations/{uk}", body, expect=409)
    assert stale["code"] == "stale_version"

    disabled = api.post(f"/api/integrations/{uk}/disable")
    assert disabled["enabled"] is False
    assert api.post(f"/api/integrations/{uk}/enable")["enabled"] is True
    assert (
        api.request("DELETE", f"/api/integrations/{uk}/credential", expect=200).json()["connected"]
        is False
    )
    api.delete(f"/api/credentials/{found['xero']}")
    api.delete(f"/api/integrations/{uk}")
    api.get(f"/api/integrations/{uk}", expect=404)


def call_every_other_route(api: Api, found: dict[str, Any]) -> None:
    """The routes the story did not need, so that the scan below covers every route."""
    qbo, quickbooks = found["qbo"]["id"], found["quickbooks"]
    api.get("/healthz", key=None)
    api.get("/readyz", key=None)
    api.request("GET", "/metrics", key=api.read_key, expect=200)
    for path in ("/openapi.json", "/api/openapi.json", "/api/schemas", "/api/schemas/bill"):
        api.get(path, key=api.read_key)
    api.get(f"/api/credentials/{quickbooks}", key=api.read_key)
    pending = api.post("/api/credentials", {"name": "Later", "destination": "xero"}, expect=201)
    api.post(f"/api/credentials/{pending['credential']['id']}/authorize", {})
    assert api.get("/api/integrations", params={"destination": "quickbooks"})["total"] == 1
    events = api.get("/api/events")["items"]
    api.get(f"/api/events/{events[0]['id']}")
    mappings = api.get("/api/mappings", params={"integrationId": qbo, "limit": 1})["items"]
    api.get(f"/api/mappings/{mappings[0]['id']}")
    moved = api.put(f"/api/mappings/{mappings[0]['id']}", {"externalId": "999"})
    assert (moved["id"], moved["externalId"]) == (mappings[0]["id"], "999")
    refused = api.put(
        f"/api/mappings/{mappings[0]['id']}", {"externalTable": "Invoice"}, expect=422
    )
    assert [e["path"] for e in refused["errors"]] == ["/externalTable"]
    api.delete(f"/api/mappings/{mappings[0]['id']}")
    api.post("/api/filters:check", {"expression": "address.country == US", "account": GLOBEX})
    created = api.post("/api/keys", {"name": "console"}, expect=201)
    assert created["key"] not in "\n".join(api.answers[:-1])
    api.get("/api/keys")
    api.request("DELETE", f"/api/keys/{created['apiKey']['id']}", expect=200)
    hook = api.post("/api/webhooks", {"url": "https://hooks.example.com/b"}, expect=201)
    webhook = hook["webhook"]["id"]
    api.get("/api/webhooks")
    api.get(f"/api/webhooks/{webhook}")
    api.request("PATCH", f"/api/webhooks/{webhook}", json={"enabled": False}, expect=200)
    api.get(f"/api/webhooks/{webhook}/deliveries")
    api.delete(f"/api/webhooks/{webhook}")
    api.get(f"/api/credentials/{pending['credential']['id']}/tenants")
    documented = {
        (method.upper(), path)
        for path, operations in api.documented.document["paths"].items()
        for method in operations
    }
    # The stream is scanned in test_push; a redelivery needs a delivery (test_push too).
    left = documented - api.called - {
        ("GET", "/api/stream"), ("POST", "/api/webhooks/deliveries/{deliveryId}/redeliver"),
    }  # fmt: skip
    assert left == set()


def no_secret_in_any_answer(api: Api, served: Served) -> None:
    tokens = stored_tokens(
        served.engine, served.engine.credentials.list()[0].id
    )  # the QuickBooks credential still holds its tokens
    secrets = [tokens.access_token, tokens.refresh_token]
    assert all(s is not None for s in secrets)
    leaks = [s.reveal() for s in secrets if s is not None]
    leaks += [served.engine.settings.destination(k).client_secret.reveal()  # type: ignore[union-attr]
              for k in ("quickbooks", "xero")]  # fmt: skip
    leaks += ["$sealed", "gAAAAA"]  # sealed secrets, Fernet tokens
    everything = "\n".join(api.answers)
    assert len(api.answers) > 60
    for leak in leaks:
        assert leak not in everything


# --- webhooks, on the same flow's feed ------------------------------------------------------------


class Receiver:
    """A webhook receiver: records what it gets; answers 500 to the first ``fail`` requests."""

    def __init__(self, fail: int = 0) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.fail = fail
        self.lock = threading.Lock()
        self.app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> JSONResponse:
        body = await request.body()
        with self.lock:
            self.received.append((dict(request.headers), body))
            if self.fail > 0:
                self.fail -= 1
                return JSONResponse({"error": "down"}, status_code=500)
        return JSONResponse({"ok": True})


def verify(secret: str, headers: dict[str, str], body: bytes) -> None:
    message = headers["x-billbridge-timestamp"].encode() + b"." + body
    expected = "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, headers["x-billbridge-signature"])


def test_webhooks_tell_of_events_and_outcomes(with_emulators: tuple[Served, Any]) -> None:
    served, emulators = with_emulators
    api = served.api
    receiver = Receiver()
    with serve(receiver.app) as hooks:
        created = api.post(
            "/api/webhooks",
            {"url": f"{hooks.url}/hook", "eventTypes": ["run.complete", "run.error",
             "integration.missingaccountmapping.error"]},
            expect=201,
        )  # fmt: skip
        secret, webhook = created["secret"], created["webhook"]["id"]
        found = set_up(api, emulators)
        map_accounts_and_products(api, found)
        api.post("/api/bills", {"bill": ACME_BILL, "account": ACME}, expect=201)
        api.post("/api/bills", {"bill": INITECH_BILL, "account": INITECH}, expect=201)
        BackgroundWorker(served.engine).run_once()  # delivers, then sends the webhooks
    types = sorted(received_type(body) for _, body in receiver.received)
    assert types == ["integration.missingaccountmapping.error", "run.complete", "run.complete",
                     "run.error"]  # fmt: skip
    for headers, body in receiver.received:
        verify(secret, headers, body)
    log = api.get(f"/api/webhooks/{webhook}/deliveries", key=api.read_key)
    assert log["total"] == 4
    assert {d["status"] for d in log["items"]} == {"DELIVERED"}
    assert secret not in "\n".join(api.answers[1:])  # shown once, when it was made


def received_type(body: bytes) -> str:
    import json

    kind: str = json.loads(body)["type"]
    return kind
