"""The Xero emulator over real HTTP: OAuth, connections, every API rule, limits and faults."""

from __future__ import annotations

import base64
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal
from importlib import metadata
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs
import httpx
import pytest
from billbridge_xero import emulator as emulator_module
from billbridge_xero.dates import format_ms_date, parse_xero_date, parse_xero_datetime
from billbridge_xero.emulator import XeroEmulator
from billbridge_xero.emulator.organisation import Organisation
from starlette.responses import JSONResponse

from billbridge.domain.models import dumps, loads
from billbridge.testing.emulation.clock import ManualClock, ScaledClock
from billbridge.testing.emulation.faults import FaultPlan
from billbridge.testing.emulation.server import RunningServer

D = Decimal
REDIRECT = "http://127.0.0.1:9/callback"
SCOPES = "offline_access accounting.invoices accounting.contacts accounting.settings.read"
RATE_HEADERS = ("X-DayLimit-Remaining", "X-MinLimit-Remaining", "X-AppMinLimit-Remaining")


def basic(client_id: str = "app", secret: str = "s3cret") -> dict[str, str]:
    token = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def consent(http: httpx.Client, scope: str = SCOPES, **extra: str) -> dict[str, str]:
    response = http.get(
        "/identity/connect/authorize",
        params={
            "client_id": "app",
            "redirect_uri": REDIRECT,
            "response_type": "code",
            "scope": scope,
            "state": "st",
            **extra,
        },
    )
    assert response.status_code == 302
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}


def tokens_for(http: httpx.Client, scope: str = SCOPES, **extra: str) -> dict[str, Any]:
    code = consent(http, scope, **extra)["code"]
    response = http.post(
        "/connect/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        headers=basic(),
    )
    assert response.status_code == 200
    tokens: dict[str, Any] = response.json()
    return tokens


@attrs.define
class Env:
    emulator: XeroEmulator
    server: RunningServer
    clock: ManualClock
    org: Organisation
    other: Organisation
    http: httpx.Client
    tokens: dict[str, Any]

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        tenant: str | None = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        sent = {
            "Authorization": f"Bearer {token or self.tokens['access_token']}",
            "xero-tenant-id": self.org.tenant_id if tenant is None else tenant,
            "Accept": "application/json",
            "Content-Type": "application/json",
            **(headers or {}),
        }
        if not sent["xero-tenant-id"]:
            del sent["xero-tenant-id"]
        return self.http.request(
            method,
            f"/api.xro/2.0{path}",
            params=params,
            content=dumps(body).encode() if body is not None else content,
            headers=sent,
        )

    def json(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        response = self.call(method, path, **kw)
        return response.status_code, loads(response.content) if response.content else None

    def write(
        self,
        method: str,
        *docs: dict[str, Any],
        kind: str = "Invoices",
        summarize: bool = False,
        params: dict[str, str] | None = None,
        **kw: Any,
    ) -> tuple[int, Any]:
        query = {} if summarize else {"summarizeErrors": "false"}
        return self.json(
            method, f"/{kind}", body={kind: list(docs)}, params={**query, **(params or {})}, **kw
        )

    def invoice(self, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "Type": "ACCREC",
            "Contact": {"ContactID": self.org.contact_id("Acme Ltd")},
            "Date": "2026-01-15",
            "DueDate": "2026-02-15",
            "LineItems": [
                {
                    "Description": "Platform",
                    "Quantity": D(2),
                    "UnitAmount": D("50.00"),
                    "LineAmount": D("100.00"),
                    "AccountCode": "200",
                    "TaxType": "OUTPUT2",
                }
            ],
        }
        body.update(overrides)
        return body

    def line(self, **overrides: Any) -> dict[str, Any]:
        line: dict[str, Any] = dict(self.invoice()["LineItems"][0])
        line.update(overrides)
        return line


@contextmanager
def make_env(emulator: XeroEmulator, clock: ManualClock) -> Iterator[Env]:
    org = emulator.add_organisation("Emu UK", base_currency="GBP")
    other = emulator.add_organisation("Emu US", base_currency="USD")
    emulator.oauth.add_client("app", "s3cret")
    server = emulator.start()
    try:
        with httpx.Client(base_url=server.url, timeout=5) as http:
            yield Env(emulator, server, clock, org, other, http, tokens_for(http))
    finally:
        server.stop()


@attrs.define
class Shared:
    emulator: XeroEmulator
    server: RunningServer
    clock: ManualClock
    http: httpx.Client


@pytest.fixture(scope="module")
def shared() -> Iterator[Shared]:
    """One emulator for the module: each test gets organisations (tenants) of its own."""
    clock = ManualClock()
    emulator = XeroEmulator(clock)
    emulator.oauth.add_client("app", "s3cret")
    with emulator.start() as server, httpx.Client(base_url=server.url, timeout=5) as http:
        yield Shared(emulator, server, clock, http)


@pytest.fixture
def env(shared: Shared, request: pytest.FixtureRequest) -> Env:
    name = request.node.name[:40]
    org = shared.emulator.add_organisation(f"UK {name}", base_currency="GBP")
    other = shared.emulator.add_organisation(f"US {name}", base_currency="USD")
    tokens = tokens_for(shared.http, emulator_organisations=f"{org.tenant_id},{other.tenant_id}")
    return Env(shared.emulator, shared.server, shared.clock, org, other, shared.http, tokens)


def errors_of(element: dict[str, Any]) -> list[str]:
    return [e["Message"] for e in element.get("ValidationErrors", [])]


# --- dates ---------------------------------------------------------------------------------------


def test_ms_dates_round_trip() -> None:
    assert format_ms_date(date(2019, 3, 7)) == "/Date(1551916800000+0000)/"
    assert parse_xero_date("/Date(1551916800000+0000)/") == date(2019, 3, 7)
    assert parse_xero_date("2019-03-07") == date(2019, 3, 7)
    assert parse_xero_date("2019-03-07T00:00:00") == date(2019, 3, 7)
    moment = parse_xero_datetime("/Date(1551981568133+1300)/")
    assert moment.isoformat() == "2019-03-07T17:59:28.133000+00:00"
    assert parse_xero_datetime("/Date(1552522535440)/").year == 2019
    with pytest.raises(ValueError, match="not a Xero date"):
        parse_xero_datetime("yesterday")


# --- OAuth and connections -------------------------------------------------------------------------


def test_oauth_tokens_rotate_with_a_thirty_minute_grace(env: Env) -> None:
    tokens = env.tokens
    assert tokens["expires_in"] == 1800
    assert set(tokens["scope"].split()) == set(SCOPES.split())

    def refresh(token: str) -> httpx.Response:
        return env.http.post(
            "/connect/token",
            data={"grant_type": "refresh_token", "refresh_token": token},
            headers=basic(),
        )

    env.clock.advance(1801)
    expired = env.call("GET", "/Invoices")
    assert expired.status_code == 401
    assert expired.json()["Detail"] == "AuthenticationUnsuccessful"
    rotated = refresh(tokens["refresh_token"]).json()
    assert rotated["refresh_token"] != tokens["refresh_token"]
    assert refresh(tokens["refresh_token"]).json() == rotated  # lost answer, within the grace
    env.clock.advance(1801)
    assert refresh(tokens["refresh_token"]).json() == {"error": "invalid_grant"}
    assert env.call("GET", "/Invoices", token=rotated["access_token"]).status_code == 401
    fresh = refresh(rotated["refresh_token"]).json()
    assert env.call("GET", "/Invoices", token=fresh["access_token"]).status_code == 200


def test_consent_accepts_granular_and_legacy_scopes_only(env: Env) -> None:
    legacy = tokens_for(env.http, "offline_access accounting.transactions accounting.settings")
    assert env.call("GET", "/Invoices", token=legacy["access_token"]).status_code == 200
    assert consent(env.http, "offline_access payroll.employees")["error"] == "invalid_scope"


def test_the_consent_connects_the_chosen_organisations(env: Env) -> None:
    def tenants(tokens: dict[str, Any]) -> list[str]:
        response = env.http.get(
            "/connections", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert response.status_code == 200
        return [c["tenantId"] for c in response.json()]

    assert tenants(env.tokens) == [env.org.tenant_id, env.other.tenant_id]
    try:
        env.emulator.consent_organisations = [env.other.name]
        assert tenants(tokens_for(env.http)) == [env.other.tenant_id]
        # The authorize URL's hint wins over the setting; ids and names both work.
        hint = f"{env.org.tenant_id},{env.other.name}"
        assert tenants(tokens_for(env.http, emulator_organisations=hint)) == [
            env.org.tenant_id,
            env.other.tenant_id,
        ]
        env.emulator.consent_organisations = []
        assert tenants(tokens_for(env.http)) == []
        env.emulator.consent_organisations = None
        assert {env.org.tenant_id, env.other.tenant_id} <= set(tenants(tokens_for(env.http)))
    finally:
        env.emulator.consent_organisations = None


def test_connections_shape_filter_and_disconnect(env: Env) -> None:
    bearer = {"Authorization": f"Bearer {env.tokens['access_token']}"}
    connections = env.http.get("/connections", headers=bearer).json()
    first = connections[0]
    assert set(first) == {
        "id",
        "authEventId",
        "tenantId",
        "tenantType",
        "tenantName",
        "createdDateUtc",
        "updatedDateUtc",
    }
    assert first["tenantType"] == "ORGANISATION" and first["tenantName"] == env.org.name
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}", first["createdDateUtc"])
    same_event = env.http.get(
        "/connections", params={"authEventId": first["authEventId"]}, headers=bearer
    ).json()
    assert len(same_event) == 2
    assert env.http.get("/connections", params={"authEventId": "x"}, headers=bearer).json() == []
    assert env.http.get("/connections").status_code == 401
    assert env.http.delete(f"/connections/{first['id']}", headers=bearer).status_code == 204
    assert [c["tenantId"] for c in env.http.get("/connections", headers=bearer).json()] == [
        env.other.tenant_id
    ]
    gone = env.call("GET", "/Invoices")
    assert gone.status_code == 403 and gone.json()["Detail"] == "AuthorizationUnsuccessful"


def test_every_call_needs_a_token_and_a_connected_tenant(env: Env) -> None:
    assert env.call("GET", "/Invoices", token="nope").status_code == 401
    missing = env.call("GET", "/Invoices", tenant="")
    assert missing.status_code == 403 and missing.json()["Detail"] == "AuthorizationUnsuccessful"
    assert env.call("GET", "/Invoices", tenant="not-a-tenant").status_code == 403
    stranger = env.emulator.add_organisation("Not connected")
    assert env.call("GET", "/Invoices", tenant=stranger.tenant_id).status_code == 403
    assert env.call("GET", "/Invoices", tenant=env.other.tenant_id).status_code == 200


def test_endpoints_need_their_scopes(env: Env) -> None:
    contacts_only = tokens_for(env.http, "offline_access accounting.contacts.read")
    assert env.call("GET", "/Contacts", token=contacts_only["access_token"]).status_code == 200
    refused = env.call("GET", "/Items", token=contacts_only["access_token"])
    assert refused.status_code == 403
    read_only = tokens_for(env.http, "accounting.invoices.read accounting.settings.read")
    status, _ = env.write("PUT", env.invoice(), token=read_only["access_token"])
    assert status == 403


# --- lists ---------------------------------------------------------------------------------------------


def test_contacts_are_paged_by_100_and_searchable(env: Env) -> None:
    status, first = env.json("GET", "/Contacts", params={"page": "1"})
    assert status == 200
    assert len(first["Contacts"]) == 100
    assert first["pagination"] == {"page": 1, "pageSize": 100, "pageCount": 2, "itemCount": 153}
    _, second = env.json("GET", "/Contacts", params={"page": "2"})
    assert len(second["Contacts"]) == 53
    names = {c["Name"] for c in first["Contacts"] + second["Contacts"]}
    assert {"Acme Ltd", "Globex Corporation", "Initech"} <= names
    assert "Old Customer (archived)" not in names
    _, found = env.json("GET", "/Contacts", params={"page": "1", "searchTerm": "GLOBEX"})
    assert [c["Name"] for c in found["Contacts"]] == ["Globex Corporation"]
    _, by_email = env.json("GET", "/Contacts", params={"searchTerm": "acme.example"})
    assert [c["Name"] for c in by_email["Contacts"]] == ["Acme Ltd"]
    _, archived = env.json("GET", "/Contacts", params={"includeArchived": "true", "page": "2"})
    assert archived["pagination"]["itemCount"] == 154
    _, one = env.json("GET", f"/Contacts/{env.org.contact_id('Initech')}")
    assert one["Contacts"][0]["Name"] == "Initech"
    assert one["Contacts"][0]["UpdatedDateUTC"].startswith("/Date(")


def test_settings_lists_and_where(env: Env) -> None:
    _, items = env.json("GET", "/Items")
    assert "PLATFORM" in {i["Code"] for i in items["Items"]}
    _, revenue = env.json("GET", "/Accounts", params={"where": 'Class=="REVENUE"'})
    assert [a["Code"] for a in revenue["Accounts"]] == ["200", "260", "270"]
    _, rates = env.json("GET", "/TaxRates")
    by_type = {r["TaxType"]: r for r in rates["TaxRates"]}
    assert by_type["OUTPUT2"]["EffectiveRate"] == D("20.0000")
    assert by_type["INPUT2"]["CanApplyToRevenue"] is False
    _, tracking = env.json("GET", "/TrackingCategories")
    region = tracking["TrackingCategories"][0]
    assert (region["Name"], [o["Name"] for o in region["Options"]]) == (
        "Region",
        ["UK", "US", "EU"],
    )
    _, themes = env.json("GET", "/BrandingThemes")
    assert [t["Name"] for t in themes["BrandingThemes"]] == ["Standard", "Special Projects"]
    _, organisation = env.json("GET", "/Organisation")
    assert organisation["Organisations"][0]["BaseCurrency"] == "GBP"
    _, searched = env.json(
        "GET", "/Items", params={"where": 'Name.Contains("seat") OR Code=="FEES"'}
    )
    assert [i["Code"] for i in searched["Items"]] == ["SEATS", "FEES"]
    status, problem = env.json("GET", "/Items", params={"where": "Name ~ 3"})
    assert status == 400 and problem["Type"] == "QueryParseException"
    assert env.call("GET", "/Nothing").status_code == 404


# --- creating invoices ---------------------------------------------------------------------------


def test_put_creates_an_invoice_with_xero_dates_and_totals(env: Env) -> None:
    status, body = env.write("PUT", env.invoice(InvoiceNumber="INV-1", Reference="PO-1"))
    assert status == 200
    assert body["Status"] == "OK" and body["DateTimeUTC"].startswith("/Date(")
    (invoice,) = body["Invoices"]
    assert invoice["StatusAttributeString"] == "OK" and invoice["HasErrors"] is False
    assert invoice["InvoiceNumber"] == "INV-1" and invoice["Reference"] == "PO-1"
    assert invoice["Date"] == "/Date(1768435200000+0000)/"
    assert parse_xero_date(invoice["DueDate"]) == date(2026, 2, 15)
    assert invoice["UpdatedDateUTC"] == format_ms_date(env.clock.now())
    assert (invoice["SubTotal"], invoice["TotalTax"], invoice["Total"]) == (
        D("100.00"),
        D("20.00"),
        D("120.00"),
    )
    assert invoice["Status"] == "DRAFT" and invoice["LineAmountTypes"] == "Exclusive"
    assert invoice["Contact"]["Name"] == "Acme Ltd"
    _, fetched = env.json("GET", f"/Invoices/{invoice['InvoiceID']}")
    assert fetched["Invoices"][0]["Total"] == D("120.00")
    assert env.call("GET", "/Invoices/00000000-0000-0000-0000-000000000000").status_code == 404


def test_inclusive_and_no_tax_amounts(env: Env) -> None:
    _, body = env.write(
        "PUT",
        env.invoice(LineAmountTypes="Inclusive"),
        env.invoice(LineAmountTypes="NoTax"),
    )
    inclusive, no_tax = body["Invoices"]
    assert (inclusive["SubTotal"], inclusive["TotalTax"], inclusive["Total"]) == (
        D("83.33"),
        D("16.67"),
        D("100.00"),
    )
    assert (no_tax["TotalTax"], no_tax["Total"]) == (D("0.00"), D("100.00"))


def test_xero_numbers_sales_invoices_and_they_must_be_unique(env: Env) -> None:
    _, body = env.write("PUT", env.invoice(), env.invoice())
    assert [i["InvoiceNumber"] for i in body["Invoices"]] == ["INV-0001", "INV-0002"]
    _, again = env.write("PUT", env.invoice(InvoiceNumber="inv-0001"))
    assert again["Invoices"][0]["StatusAttributeString"] == "ERROR"
    assert errors_of(again["Invoices"][0]) == ["Invoice # must be unique."]
    # Bills (ACCPAY) need not be unique.
    bill = env.invoice(Type="ACCPAY", InvoiceNumber="SUP-1")
    bill["LineItems"][0]["TaxType"] = "INPUT2"
    bill["LineItems"][0]["AccountCode"] = "400"
    _, bills = env.write("PUT", bill, bill)
    assert [i["StatusAttributeString"] for i in bills["Invoices"]] == ["OK", "OK"]


def test_a_number_given_up_by_a_renumbered_invoice_is_free_again(env: Env) -> None:
    _, body = env.write("PUT", env.invoice(InvoiceNumber="A-1"))
    first = body["Invoices"][0]
    _, renumbered = env.write("POST", {"InvoiceID": first["InvoiceID"], "InvoiceNumber": "A-2"})
    assert renumbered["Invoices"][0]["InvoiceNumber"] == "A-2"
    _, reused = env.write("PUT", env.invoice(InvoiceNumber="a-1"), env.invoice(InvoiceNumber="A-2"))
    free, taken = reused["Invoices"]
    assert free["StatusAttributeString"] == "OK" and free["InvoiceNumber"] == "a-1"
    assert errors_of(taken) == ["Invoice # must be unique."]


def test_credit_note_numbers_must_be_unique(env: Env) -> None:
    note = env.invoice(Type="ACCRECCREDIT", CreditNoteNumber="CN-1")
    _, body = env.write("PUT", note, note, kind="CreditNotes")
    ok, duplicate = body["CreditNotes"]
    assert ok["StatusAttributeString"] == "OK" and ok["CreditNoteNumber"] == "CN-1"
    assert ok["RemainingCredit"] == D("120.00")
    assert errors_of(duplicate) == ["Credit Note # must be unique."]
    _, wrong_type = env.write("PUT", env.invoice(), kind="CreditNotes")
    assert "Type must be specified" in errors_of(wrong_type["CreditNotes"][0])[0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"Type": None}, "A valid invoice Type must be specified (ACCREC or ACCPAY)."),
        ({"Contact": None}, "A Contact must be specified for this type of transaction"),
        (
            {"Contact": {"ContactID": "00000000-0000-0000-0000-000000000000"}},
            "The contact with ContactID 00000000-0000-0000-0000-000000000000 could not be found.",
        ),
        ({"CurrencyCode": "CHF"}, "The currency CHF is not enabled for this organisation."),
        ({"Status": "PAID"}, "A new invoice cannot have the status PAID."),
        ({"Date": "31/01/2026"}, "The Date '31/01/2026' is not a valid date."),
        ({"LineAmountTypes": "Gross"}, "LineAmountTypes must be Exclusive, Inclusive or NoTax."),
        (
            {"BrandingThemeID": "11111111-1111-1111-1111-111111111111"},
            "Branding theme is not valid.",
        ),
        ({"InvoiceNumber": "N" * 256}, "Invoice number must be 255 characters or fewer."),
        (
            {"InvoiceID": "11111111-1111-1111-1111-111111111111"},
            "A Invoice with an InvoiceID cannot be created: use POST to update it.",
        ),
    ],
)
def test_document_rules(env: Env, change: dict[str, Any], message: str) -> None:
    invoice = {k: v for k, v in env.invoice(**change).items() if v is not None}
    _, body = env.write("PUT", invoice)
    assert message in errors_of(body["Invoices"][0])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ItemCode": "NOPE", "AccountCode": None}, "Item code 'NOPE' is not valid."),
        ({"ItemCode": "PURCHASE-ONLY"}, "Item code 'PURCHASE-ONLY' cannot be used on a sale."),
        ({"AccountCode": "999"}, "Account code '999' is not a valid code for this document."),
        (
            {"TaxType": "XYZ"},
            "The TaxType code 'XYZ' does not exist or cannot be used for this type of transaction.",
        ),
        (
            {"TaxType": "INPUT2"},
            "The TaxType code 'INPUT2' does not exist or cannot be used for this type of "
            "transaction.",
        ),
        (
            {"LineAmount": D("99.99")},
            "The line amount 99.99 does not match Quantity × UnitAmount (2 × 50 = 100.00).",
        ),
        ({"Quantity": "two"}, "Quantity must be a number."),
        (
            {
                "Tracking": [
                    {"Name": "Region", "Option": "UK"},
                    {"Name": "Department", "Option": "Sales"},
                    {"Name": "Channel", "Option": "Direct"},
                ]
            },
            "A line item can only be tracked against 2 tracking categories.",
        ),
        (
            {"Tracking": [{"Name": "Colour", "Option": "Red"}]},
            "The tracking category 'Colour' does not exist or is archived.",
        ),
        (
            {"Tracking": [{"Name": "Region", "Option": "Mars"}]},
            "The tracking option 'Mars' does not exist in the tracking category 'Region'.",
        ),
        (
            {"Description": None, "AccountCode": "200"},
            "Each line item must have a Description or an ItemCode.",
        ),
    ],
)
def test_line_rules(env: Env, change: dict[str, Any], message: str) -> None:
    line = {k: v for k, v in env.line(**change).items() if v is not None}
    _, body = env.write("PUT", env.invoice(LineItems=[line]))
    assert message in errors_of(body["Invoices"][0])


def test_items_fill_in_lines_and_tracking_is_resolved(env: Env) -> None:
    line = {"ItemCode": "seats", "Quantity": D(3), "Tracking": [{"Name": "region", "Option": "uk"}]}
    _, body = env.write("PUT", env.invoice(LineItems=[line]))
    (saved,) = body["Invoices"][0]["LineItems"]
    assert saved["ItemCode"] == "SEATS" and saved["Description"] == "Seats"
    assert (saved["UnitAmount"], saved["LineAmount"], saved["AccountCode"]) == (
        D("15.00"),
        D("45.00"),
        "200",
    )
    assert saved["Tracking"][0]["Name"] == "Region" and saved["Tracking"][0]["Option"] == "UK"
    assert saved["Tracking"][0]["TrackingOptionID"]


def test_line_amount_rule_with_discounts_and_computed_amounts(env: Env) -> None:
    discounted = env.line(DiscountRate=D(10), LineAmount=D("90.00"))
    computed = env.line(LineAmount=None, Quantity=D(3), UnitAmount=D("3.333"))
    computed = {k: v for k, v in computed.items() if v is not None}
    _, body = env.write("PUT", env.invoice(LineItems=[discounted, computed]))
    invoice = body["Invoices"][0]
    assert invoice["StatusAttributeString"] == "WARNING"
    assert [w["Message"] for w in invoice["Warnings"]] == [
        "The unit amount 3.333 was rounded to 3.33; send unitdp=4 to keep 4 decimal places."
    ]
    assert [li["LineAmount"] for li in invoice["LineItems"]] == [D("90.00"), D("9.99")]


def test_unit_amounts_keep_4_decimals_only_with_unitdp(env: Env) -> None:
    line = env.line(Quantity=D(1000), UnitAmount=D("0.0125"), LineAmount=D("12.50"))
    _, without = env.write("PUT", env.invoice(LineItems=[line]))
    # Xero rounds the unit amount to 0.01 first; 1000 × 0.01 is not 12.50.
    assert errors_of(without["Invoices"][0]) == [
        "The line amount 12.50 does not match Quantity × UnitAmount (1000 × 0.01 = 10.00)."
    ]
    _, with_4 = env.write("PUT", env.invoice(LineItems=[line]), params={"unitdp": "4"})
    saved = with_4["Invoices"][0]
    assert saved["StatusAttributeString"] == "OK"
    assert saved["LineItems"][0]["UnitAmount"] == D("0.0125")
    invoice_id = saved["InvoiceID"]
    _, two = env.json("GET", f"/Invoices/{invoice_id}")
    _, four = env.json("GET", f"/Invoices/{invoice_id}", params={"unitdp": "4"})
    assert two["Invoices"][0]["LineItems"][0]["UnitAmount"] == D("0.01")
    assert four["Invoices"][0]["LineItems"][0]["UnitAmount"] == D("0.0125")
    assert str(four["Invoices"][0]["LineItems"][0]["Quantity"]) == "1000.0000"


def test_approved_documents_need_accounts_lines_and_no_negative_total(env: Env) -> None:
    no_account = env.line(ItemCode="NOACCOUNT", AccountCode=None)
    no_account = {k: v for k, v in no_account.items() if v is not None}
    _, body = env.write(
        "PUT",
        env.invoice(Status="AUTHORISED", LineItems=[no_account]),
        env.invoice(Status="AUTHORISED", LineItems=[]),
        env.invoice(LineItems=[env.line(UnitAmount=D(-50), LineAmount=D(-100))]),
        env.invoice(LineItems=[no_account]),
    )
    first, second, third, draft = body["Invoices"]
    assert errors_of(first) == [
        "An account code must be specified for every line item of an approved document."
    ]
    assert errors_of(second) == ["Invoices must have at least one line item to be approved."]
    assert errors_of(third) == ["The total of a invoice cannot be negative."]
    assert draft["StatusAttributeString"] == "OK"  # a draft may wait for its account


def test_contact_by_name_is_matched_or_created(env: Env) -> None:
    _, body = env.write(
        "PUT", env.invoice(Contact={"Name": "acme ltd"}), env.invoice(Contact={"Name": "New Co"})
    )
    matched, created = body["Invoices"]
    assert matched["Contact"]["ContactID"] == env.org.contact_id("Acme Ltd")
    assert created["Contact"]["Name"] == "New Co"
    assert env.org.contact_by_name("New Co") is not None


# --- summarizeErrors --------------------------------------------------------------------------------


def test_summarize_errors_false_answers_per_element(env: Env) -> None:
    bad = env.invoice(LineItems=[env.line(TaxType="XYZ")])
    status, body = env.write("PUT", env.invoice(), bad, env.invoice())
    assert status == 200
    assert [i["StatusAttributeString"] for i in body["Invoices"]] == ["OK", "ERROR", "OK"]
    assert [i["HasErrors"] for i in body["Invoices"]] == [False, True, False]
    assert len(env.emulator.documents(env.org.tenant_id)) == 2


def test_summarized_errors_fail_the_request_but_save_the_good_ones(env: Env) -> None:
    bad = env.invoice(LineItems=[env.line(TaxType="XYZ")], Reference="the bad one")
    status, body = env.write("PUT", env.invoice(Reference="good"), bad, summarize=True)
    assert status == 400
    assert body["ErrorNumber"] == 10 and body["Type"] == "ValidationException"
    assert body["Message"] == "A validation exception occurred"
    assert [e["Reference"] for e in body["Elements"]] == ["the bad one"]
    assert body["Elements"][0]["ValidationErrors"][0]["Message"].startswith("The TaxType code")
    # The surprise: the good invoice was created anyway.
    assert [i["Reference"] for i in env.emulator.documents(env.org.tenant_id)] == ["good"]
    explicit_true = env.json(
        "PUT",
        "/Invoices",
        body={"Invoices": [bad]},
        params={"summarizeErrors": "true"},
    )
    assert explicit_true[0] == 400


def test_a_single_object_body_and_bad_json(env: Env) -> None:
    status, body = env.json(
        "PUT", "/Invoices", body=env.invoice(), params={"summarizeErrors": "false"}
    )
    assert status == 200 and body["Invoices"][0]["StatusAttributeString"] == "OK"
    status, body = env.json("PUT", "/Invoices", content=b"{not json")
    assert status == 400 and body["Type"] == "PostDataInvalidException"


def test_bodies_of_3_5_mb_are_refused(env: Env) -> None:
    status, body = env.json("PUT", "/Invoices", content=b" " * 3_500_000)
    assert status == 413 and body["Status"] == 413


# --- updates, statuses, locks --------------------------------------------------------------------


def create(env: Env, **overrides: Any) -> dict[str, Any]:
    _, body = env.write("PUT", env.invoice(**overrides))
    invoice: dict[str, Any] = body["Invoices"][0]
    assert invoice["StatusAttributeString"] == "OK", invoice
    return invoice


def test_post_updates_by_id_and_creates_without_one(env: Env) -> None:
    invoice = create(env, InvoiceNumber="INV-9")
    env.clock.advance(60)
    change = {
        "InvoiceID": invoice["InvoiceID"],
        "Reference": "changed",
        "LineItems": [env.line(Quantity=D(3), LineAmount=D("150.00"))],
    }
    _, body = env.write("POST", change)
    updated = body["Invoices"][0]
    assert updated["InvoiceID"] == invoice["InvoiceID"]
    assert updated["InvoiceNumber"] == "INV-9" and updated["Reference"] == "changed"
    assert updated["Total"] == D("180.00")
    assert updated["UpdatedDateUTC"] != invoice["UpdatedDateUTC"]
    _, created = env.write("POST", env.invoice())
    assert created["Invoices"][0]["InvoiceID"] != invoice["InvoiceID"]
    assert len(env.emulator.documents(env.org.tenant_id)) == 2
    _, unknown = env.write("POST", {"InvoiceID": "00000000-0000-0000-0000-000000000001"})
    assert errors_of(unknown["Invoices"][0]) == [
        "The document with the supplied id was not found for this endpoint."
    ]
    # An invoice id is not a credit note id.
    _, wrong = env.write("POST", {"CreditNoteID": invoice["InvoiceID"]}, kind="CreditNotes")
    assert errors_of(wrong["CreditNotes"][0]) == [
        "The document with the supplied id was not found for this endpoint."
    ]


def test_status_changes_follow_xero(env: Env) -> None:
    invoice = create(env, Status="AUTHORISED")
    invoice_id = invoice["InvoiceID"]
    _, back = env.write("POST", {"InvoiceID": invoice_id, "Status": "DRAFT"})
    assert errors_of(back["Invoices"][0]) == ["Invoice not of valid status for modification"]
    _, same = env.write("POST", {"InvoiceID": invoice_id, "Reference": "still authorised"})
    assert same["Invoices"][0]["Status"] == "AUTHORISED"
    env.emulator.mark_paid(env.org.tenant_id, invoice_id)
    _, paid = env.write("POST", {"InvoiceID": invoice_id, "Reference": "late"})
    assert errors_of(paid["Invoices"][0]) == [
        "This document cannot be edited as it has a payment or credit note allocated to it."
    ]
    _, fetched = env.json("GET", f"/Invoices/{invoice_id}")
    assert fetched["Invoices"][0]["Status"] == "PAID"
    assert fetched["Invoices"][0]["AmountDue"] == D("0.00")
    other = create(env)
    env.emulator.void(env.org.tenant_id, other["InvoiceID"])
    _, voided = env.write("POST", {"InvoiceID": other["InvoiceID"], "Reference": "x"})
    assert errors_of(voided["Invoices"][0]) == ["Invoice not of valid status for modification"]
    draft = create(env)
    _, deleted = env.write("POST", {"InvoiceID": draft["InvoiceID"], "Status": "DELETED"})
    assert deleted["Invoices"][0]["Status"] == "DELETED"


def test_voiding_and_deleting_follow_the_status(env: Env) -> None:
    # AUTHORISED and SUBMITTED void (REFERENCE: "AUTHORISED or SUBMITTED, no payments"); the
    # voided document keeps its number and amounts.
    for status in ("AUTHORISED", "SUBMITTED"):
        invoice = create(env, Status=status, InvoiceNumber=f"V-{status}")
        _, voided = env.write("POST", {"InvoiceID": invoice["InvoiceID"], "Status": "VOIDED"})
        (answer,) = voided["Invoices"]
        assert (answer["Status"], answer["InvoiceNumber"]) == ("VOIDED", invoice["InvoiceNumber"])
        assert answer["Total"] == invoice["Total"]
    # A draft cannot be voided, only deleted, which gives its number up.
    draft = create(env, InvoiceNumber="D-1")
    _, refused = env.write("POST", {"InvoiceID": draft["InvoiceID"], "Status": "VOIDED"})
    assert errors_of(refused["Invoices"][0]) == ["Invoice not of valid status for modification"]
    env.write("POST", {"InvoiceID": draft["InvoiceID"], "Status": "DELETED"})
    assert create(env, InvoiceNumber="D-1")["StatusAttributeString"] == "OK"
    # Credit notes likewise.
    _, made = env.write(
        "PUT", env.invoice(Type="ACCRECCREDIT", Status="AUTHORISED"), kind="CreditNotes"
    )
    note = made["CreditNotes"][0]
    _, voided = env.write(
        "POST", {"CreditNoteID": note["CreditNoteID"], "Status": "VOIDED"}, kind="CreditNotes"
    )
    assert voided["CreditNotes"][0]["Status"] == "VOIDED"


def test_locked_periods_refuse_documents_dated_in_them(env: Env) -> None:
    before = create(env, Date="2026-01-10")
    env.emulator.lock_period(env.org.tenant_id, date(2026, 1, 31))
    _, body = env.write("PUT", env.invoice(Date="2026-01-31"), env.invoice(Date="2026-02-01"))
    locked, fine = body["Invoices"]
    assert errors_of(locked) == [
        "The document date cannot be before the end of year lock date, currently set at "
        "31-Jan-2026."
    ]
    assert fine["StatusAttributeString"] == "OK"
    _, update = env.write("POST", {"InvoiceID": before["InvoiceID"], "Date": "2026-03-01"})
    assert "lock date" in errors_of(update["Invoices"][0])[0]
    env.emulator.lock_period(env.org.tenant_id, date(2026, 1, 31), end_of_year=False)
    _, period = env.write("PUT", env.invoice(Date="2026-01-02"))
    assert "before the period lock date" in errors_of(period["Invoices"][0])[0]
    _, org = env.json("GET", "/Organisation")
    assert org["Organisations"][0]["PeriodLockDate"].startswith("/Date(")
    env.emulator.lock_period(env.org.tenant_id, None)
    assert create(env, Date="2026-01-02")["StatusAttributeString"] == "OK"


def test_listing_and_filtering_invoices(env: Env) -> None:
    start = env.clock.now()
    first = create(env, InvoiceNumber="A-1")
    env.clock.advance(10)
    create(env, InvoiceNumber="A-2", Contact={"ContactID": env.org.contact_id("Initech")})
    _, by_number = env.json("GET", "/Invoices", params={"InvoiceNumbers": "a-1,NOPE"})
    assert [i["InvoiceID"] for i in by_number["Invoices"]] == [first["InvoiceID"]]
    _, by_id = env.json("GET", "/Invoices", params={"IDs": first["InvoiceID"]})
    assert len(by_id["Invoices"]) == 1
    _, by_contact = env.json(
        "GET", "/Invoices", params={"ContactIDs": env.org.contact_id("Initech")}
    )
    assert [i["InvoiceNumber"] for i in by_contact["Invoices"]] == ["A-2"]
    _, by_where = env.json("GET", "/Invoices", params={"where": 'InvoiceNumber=="A-2"'})
    assert [i["InvoiceNumber"] for i in by_where["Invoices"]] == ["A-2"]
    _, drafts = env.json("GET", "/Invoices", params={"Statuses": "DRAFT", "page": "1"})
    assert drafts["pagination"]["itemCount"] == 2
    after_first = (start + timedelta(seconds=5)).isoformat()
    _, since = env.json("GET", "/Invoices", headers={"If-Modified-Since": after_first})
    assert [i["InvoiceNumber"] for i in since["Invoices"]] == ["A-2"]
    note = env.invoice(Type="ACCRECCREDIT", CreditNoteNumber="CN-5")
    env.write("PUT", note, kind="CreditNotes")
    _, notes = env.json("GET", "/CreditNotes", params={"where": 'CreditNoteNumber=="cn-5"'})
    assert [n["CreditNoteNumber"] for n in notes["CreditNotes"]] == ["CN-5"]
    _, one = env.json("GET", f"/CreditNotes/{notes['CreditNotes'][0]['CreditNoteID']}")
    assert one["CreditNotes"][0]["Type"] == "ACCRECCREDIT"


# --- idempotency ------------------------------------------------------------------------------------


def test_idempotency_key_replays_the_original_answer(env: Env) -> None:
    key = {"Idempotency-Key": "bill-1-v1"}
    first = env.call(
        "PUT",
        "/Invoices",
        body={"Invoices": [env.invoice()]},
        params={"summarizeErrors": "false"},
        headers=key,
    )
    again = env.call(
        "PUT",
        "/Invoices",
        body={"Invoices": [env.invoice()]},
        params={"summarizeErrors": "false"},
        headers=key,
    )
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(env.emulator.documents(env.org.tenant_id)) == 1
    different = env.call(
        "PUT",
        "/Invoices",
        body={"Invoices": [env.invoice(Reference="other")]},
        params={"summarizeErrors": "false"},
        headers=key,
    )
    assert different.status_code == 400
    assert "different request" in different.json()["Detail"]
    too_long = env.call(
        "PUT",
        "/Invoices",
        body={"Invoices": [env.invoice()]},
        headers={"Idempotency-Key": "k" * 129},
    )
    assert too_long.status_code == 400
    # Keys are per tenant, and are forgotten after the replay window.
    other = env.invoice(Contact={"ContactID": env.other.contact_id("Acme Ltd")})
    elsewhere = env.call(
        "PUT", "/Invoices", body={"Invoices": [other]}, tenant=env.other.tenant_id, headers=key
    )
    assert elsewhere.status_code == 200
    env.clock.advance(5 * 60 + 1)
    later = env.call(
        "PUT",
        "/Invoices",
        body={"Invoices": [env.invoice()]},
        params={"summarizeErrors": "false"},
        headers=key,
    )
    assert later.status_code == 200 and "Idempotent-Replayed" not in later.headers
    assert len(env.emulator.documents(env.org.tenant_id)) == 2


def test_a_lost_response_retried_with_its_key_creates_once() -> None:
    clock = ManualClock()
    plan = FaultPlan(path_prefixes=("/api.xro/2.0/Invoices",), methods=("PUT",))
    with make_env(XeroEmulator(clock, faults=plan), clock) as env:
        plan.script("lost")
        request: dict[str, Any] = {
            "body": {"Invoices": [env.invoice()]},
            "params": {"summarizeErrors": "false"},
            "headers": {"Idempotency-Key": "retry-me"},
        }
        with pytest.raises(httpx.RemoteProtocolError):
            env.call("PUT", "/Invoices", **request)
        retried = env.call("PUT", "/Invoices", **request)
        assert retried.status_code == 200
        assert len(env.emulator.documents(env.org.tenant_id)) == 1
        assert (
            retried.json()["Invoices"][0]["InvoiceID"]
            == (env.emulator.documents(env.org.tenant_id)[0]["InvoiceID"])
        )


# --- limits ---------------------------------------------------------------------------------------


def test_rate_headers_on_every_response(env: Env) -> None:
    responses = [
        env.call("GET", "/Contacts", params={"page": "1"}),
        env.call("PUT", "/Invoices", body={"Invoices": [env.invoice(Type=None)]}),
        env.call("GET", "/Invoices/00000000-0000-0000-0000-000000000000"),
        env.call("GET", "/Items", params={"where": "?"}),
    ]
    assert [r.status_code for r in responses] == [200, 400, 404, 400]
    for response in responses:
        for header in RATE_HEADERS:
            assert header in response.headers
    assert [int(r.headers["X-MinLimit-Remaining"]) for r in responses] == [59, 58, 57, 56]
    assert [int(r.headers["X-DayLimit-Remaining"]) for r in responses] == [4999, 4998, 4997, 4996]
    app = [int(r.headers["X-AppMinLimit-Remaining"]) for r in responses]
    assert app == list(range(app[0], app[0] - 4, -1)) and app[0] < 10_000


def test_sixty_a_minute_per_tenant(env: Env) -> None:
    refused_before = env.emulator.rate_limited["minute"]
    for _ in range(60):
        assert env.call("GET", "/BrandingThemes").status_code == 200
    env.clock.advance(20)
    refused = env.call("GET", "/BrandingThemes")
    assert refused.status_code == 429
    assert refused.headers["X-Rate-Limit-Problem"] == "minute"
    assert refused.headers["Retry-After"] == "40"
    assert refused.headers["X-MinLimit-Remaining"] == "0"
    # Another organisation has its own minute.
    assert env.call("GET", "/BrandingThemes", tenant=env.other.tenant_id).status_code == 200
    assert env.emulator.rate_limited["minute"] == refused_before + 1
    env.clock.advance(40)
    assert env.call("GET", "/BrandingThemes").status_code == 200


def test_the_daily_cap_and_the_app_minute() -> None:
    clock = ManualClock()
    emulator = XeroEmulator(clock, daily_cap=3, app_minute_limit=4)
    with make_env(emulator, clock) as env:
        for _ in range(3):
            assert env.call("GET", "/Items").status_code == 200
        day = env.call("GET", "/Items")
        assert day.status_code == 429
        assert day.headers["X-Rate-Limit-Problem"] == "day"
        assert int(day.headers["Retry-After"]) == 86_400
        assert day.headers["X-DayLimit-Remaining"] == "0"
        assert env.call("GET", "/Items", tenant=env.other.tenant_id).status_code == 200
        app = env.call("GET", "/Items", tenant=env.other.tenant_id)
        assert app.status_code == 429 and app.headers["X-Rate-Limit-Problem"] == "appminute"
        assert app.headers["X-AppMinLimit-Remaining"] == "0"
        assert emulator.rate_limited == {"day": 1, "appminute": 1}
        clock.advance(86_400)
        fresh = tokens_for(env.http)["access_token"]  # the old one expired hours ago
        assert env.call("GET", "/Items", token=fresh).status_code == 200


def test_five_in_flight_per_tenant() -> None:
    clock = ManualClock()
    plan = FaultPlan(latency=0.4, path_prefixes=("/api.xro/2.0/Items",))
    emulator = XeroEmulator(clock, faults=plan)
    with make_env(emulator, clock) as env:
        statuses: list[int] = []
        problems: list[str | None] = []

        barrier = threading.Barrier(6)

        def call() -> None:
            barrier.wait(timeout=5)
            response = env.call("GET", "/Items")
            statuses.append(response.status_code)
            problems.append(response.headers.get("X-Rate-Limit-Problem"))

        threads = [threading.Thread(target=call) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(statuses) == [200] * 5 + [429]
        assert "concurrent" in problems
        assert emulator.rate_limited["concurrent"] == 1


def test_limits_on_a_scaled_clock() -> None:
    clock = ScaledClock(600)  # a minute passes in a tenth of a second
    emulator = XeroEmulator(clock, minute_limit=3)
    org = emulator.add_organisation("Fast")
    emulator.oauth.add_client("app", "s3cret")
    with emulator.start() as server, httpx.Client(base_url=server.url, timeout=5) as http:
        token = tokens_for(http)["access_token"]
        headers = {"Authorization": f"Bearer {token}", "xero-tenant-id": org.tenant_id}
        codes = [http.get("/api.xro/2.0/Items", headers=headers).status_code for _ in range(4)]
        assert codes[:3] == [200, 200, 200]
        clock.sleep(61)
        assert http.get("/api.xro/2.0/Items", headers=headers).status_code == 200


def test_limits_can_be_switched_off() -> None:
    clock = ManualClock()
    emulator = XeroEmulator(clock, limits=False, minute_limit=2)
    with make_env(emulator, clock) as env:
        responses = [env.call("GET", "/Items") for _ in range(4)]
        assert [r.status_code for r in responses] == [200] * 4
        assert responses[-1].headers["X-MinLimit-Remaining"] == "0"


# --- faults ------------------------------------------------------------------------------------------


def test_faults_are_xero_shaped_and_count_against_the_limits() -> None:
    clock = ManualClock()
    plan = FaultPlan(path_prefixes=("/api.xro/2.0/Invoices",), hang_seconds=1.0)
    emulator = XeroEmulator(clock, faults=plan)
    with make_env(emulator, clock) as env:
        plan.script("error")
        failed = env.call("PUT", "/Invoices", body={"Invoices": [env.invoice()]})
        assert failed.status_code in (500, 503)
        assert failed.json()["Title"] in ("An error occurred", "Service Unavailable")
        for header in RATE_HEADERS:
            assert header in failed.headers
        assert env.emulator.documents(env.org.tenant_id) == []
        assert emulator_module.xero_fault_response(503).status_code == 503
        assert b"status.developer.xero.com" in emulator_module.xero_fault_response(500).body
        plan.script("timeout")
        headers = {
            "Authorization": f"Bearer {env.tokens['access_token']}",
            "xero-tenant-id": env.org.tenant_id,
        }
        with pytest.raises(httpx.ReadTimeout):
            env.http.get("/api.xro/2.0/Invoices", headers=headers, timeout=0.3)
        assert plan.injected == {"error": 1, "timeout": 1}


def test_a_plan_with_its_own_error_bodies_keeps_them() -> None:
    def custom(status: int) -> Any:
        return JSONResponse({"mine": status}, status_code=status)

    plan = FaultPlan(error_response=custom)
    XeroEmulator(faults=plan)
    assert plan.error_response is custom


# --- the foreground command ------------------------------------------------------------------------


def test_main_is_the_emulators_entry_point_and_serves() -> None:
    (entry,) = [e for e in metadata.entry_points(group="billbridge.emulators") if e.name == "xero"]
    assert entry.load() is emulator_module  # the module: main() and start_demo()
    assert callable(emulator_module.main) and callable(emulator_module.start_demo)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "BILLBRIDGE_EMULATOR_CLIENT_ID": "demo",
        "BILLBRIDGE_EMULATOR_CLIENT_SECRET": "shh",
    }
    process = subprocess.Popen(
        [sys.executable, "-c", f"from billbridge_xero.emulator import main; main(port={port})"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    # Whatever happens, the child does not outlive the test.
    watchdog = threading.Timer(20, process.kill)
    watchdog.start()
    try:
        assert process.stdout is not None
        lines: list[str] = []
        while not lines or "client secret" not in lines[-1]:
            line = process.stdout.readline()
            assert line, "the emulator stopped before printing its settings"
            lines.append(line)
        text = "".join(lines)
        assert f"http://127.0.0.1:{port}" in text and "client id: demo" in text
        assert "shh" not in text  # a secret from the environment is not printed
        deadline = time.monotonic() + 10
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/connections", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert response.status_code == 401
    finally:
        watchdog.cancel()
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
