"""The QuickBooks Online emulator, over real HTTP: OAuth, every API rule, limits and faults."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs
import httpx
import pytest
from billbridge_quickbooks.emulator import Company, QuickBooksEmulator
from billbridge_quickbooks.emulator import launch as emulator_module

from billbridge.domain.models import dumps, loads
from billbridge.testing.emulation.clock import ManualClock
from billbridge.testing.emulation.faults import FaultPlan
from billbridge.testing.emulation.server import RunningServer

D = Decimal
REDIRECT = "http://127.0.0.1:9/callback"
SCOPE = "com.intuit.quickbooks.accounting"


@attrs.define
class Env:
    emulator: QuickBooksEmulator
    server: RunningServer
    clock: ManualClock
    company: Company
    http: httpx.Client
    tokens: dict[str, Any]

    @property
    def realm(self) -> str:
        return self.company.realm_id

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        token: str | None = None,
        realm: str | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        return self.http.request(
            method,
            f"/v3/company/{realm or self.realm}/{path}",
            params={"minorversion": "75", **(params or {})},
            content=dumps(body).encode() if body is not None else content,
            headers={
                "Authorization": f"Bearer {token or self.tokens['access_token']}",
                "Accept": "application/json",
                "Content-Type": "application/json",
            },
        )

    def json(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        response = self.call(method, path, **kw)
        return response.status_code, loads(response.content)

    def query(self, statement: str) -> tuple[int, Any]:
        return self.json("GET", "query", params={"query": statement})

    def invoice(self, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "CustomerRef": {"value": self.company.id_of("Customer", "Globex Corporation")},
            "Line": [sales_line(self.company, "Platform", "100.00", 2, "50")],
        }
        body.update(overrides)
        return body


def sales_line(company: Company, item: str, amount: str, qty: Any, price: str) -> dict[str, Any]:
    return {
        "Amount": D(amount),
        "DetailType": "SalesItemLineDetail",
        "Description": item,
        "SalesItemLineDetail": {
            "ItemRef": {"value": company.id_of("Item", item)},
            "Qty": D(str(qty)),
            "UnitPrice": D(price),
        },
    }


def basic(client_id: str = "app", secret: str = "s3cret") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def consent(http: httpx.Client) -> dict[str, str]:
    response = http.get(
        "/connect/oauth2",
        params={
            "client_id": "app",
            "redirect_uri": REDIRECT,
            "response_type": "code",
            "scope": SCOPE,
            "state": "st",
        },
    )
    assert response.status_code == 302
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}


def exchange(http: httpx.Client, code: str, **headers: str) -> httpx.Response:
    return http.post(
        "/oauth2/v1/tokens/bearer",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        headers={**basic(), **headers},
    )


def make_env(plan: FaultPlan | None = None, *, limits: bool = False) -> Iterator[Env]:
    clock = ManualClock()
    emulator = QuickBooksEmulator(clock, faults=plan, limits=limits)
    company = emulator.add_company(name="Test Company")
    emulator.oauth.add_client("app", "s3cret")
    with emulator.start() as server, httpx.Client(base_url=server.url, timeout=5) as http:
        tokens = exchange(http, consent(http)["code"]).json()
        yield Env(emulator, server, clock, company, http, tokens)


@pytest.fixture
def env() -> Iterator[Env]:
    yield from make_env()


# --- OAuth --------------------------------------------------------------------------------------


def test_endpoints_mirror_intuit_paths() -> None:
    assert QuickBooksEmulator.endpoints("http://127.0.0.1:8081/") == {
        "api_base_url": "http://127.0.0.1:8081",
        "authorize_url": "http://127.0.0.1:8081/connect/oauth2",
        "token_url": "http://127.0.0.1:8081/oauth2/v1/tokens/bearer",
        "revoke_url": "http://127.0.0.1:8081/v2/oauth2/tokens/revoke",
    }


def test_oauth_consent_tokens_refresh_and_revoke(env: Env) -> None:
    assert env.tokens["expires_in"] == 3600
    assert env.tokens["x_refresh_token_expires_in"] == 8_726_400
    assert "x_refresh_token_hard_expires_in" not in env.tokens
    second = env.emulator.add_company(name="Second Company")
    env.emulator.choose_company(second.realm_id)
    callback = consent(env.http)
    assert callback["realmId"] == second.realm_id and callback["state"] == "st"
    asked = exchange(
        env.http, callback["code"], **{"x-include-refresh-token-hard-expires-in": "true"}
    )
    assert asked.json()["x_refresh_token_hard_expires_in"] == 5 * 365 * 86400

    refresh = {"grant_type": "refresh_token", "refresh_token": env.tokens["refresh_token"]}
    rotated = env.http.post("/oauth2/v1/tokens/bearer", data=refresh, headers=basic()).json()
    assert rotated["refresh_token"] != env.tokens["refresh_token"]
    assert rotated["x_refresh_token_expires_in"] == 8_726_400
    spent = env.http.post("/oauth2/v1/tokens/bearer", data=refresh, headers=basic())
    assert spent.status_code == 400 and spent.json() == {"error": "invalid_grant"}

    # The first company's token does not open the second company.
    status, body = env.json(
        "GET",
        f"companyinfo/{second.realm_id}",
        realm=second.realm_id,
        token=rotated["access_token"],
    )
    assert status == 403 and body["Fault"]["Error"][0]["code"] == "120"
    revoked = env.http.post(
        "/v2/oauth2/tokens/revoke", json={"token": rotated["refresh_token"]}, headers=basic()
    )
    assert revoked.status_code == 200
    status, body = env.json("GET", f"companyinfo/{env.realm}", token=rotated["access_token"])
    assert status == 401


def test_expired_or_missing_token_is_3200(env: Env) -> None:
    env.clock.advance(3601)
    status, body = env.json("GET", f"companyinfo/{env.realm}")
    assert status == 401
    assert body["Fault"]["type"] == "AuthenticationFault"
    assert body["Fault"]["Error"][0]["code"] == "3200"
    assert "time" in body
    anonymous = env.http.get(f"/v3/company/{env.realm}/companyinfo/{env.realm}")
    assert anonymous.status_code == 401


def test_company_info_and_minor_version(env: Env) -> None:
    status, body = env.json("GET", f"companyinfo/{env.realm}")
    assert status == 200 and body["CompanyInfo"]["CompanyName"] == "Test Company"
    assert env.emulator.last_minor_version == "75"
    env.http.get(
        f"/v3/company/{env.realm}/companyinfo/{env.realm}",
        headers={"Authorization": f"Bearer {env.tokens['access_token']}"},
    )
    assert env.emulator.last_minor_version is None
    assert env.emulator.minor_versions["75"] == 1


# --- invoices -----------------------------------------------------------------------------------


def test_create_read_and_number(env: Env) -> None:
    status, body = env.json("POST", "invoice", body=env.invoice(TxnDate="2026-01-05"))
    assert status == 200
    invoice = body["Invoice"]
    assert invoice["SyncToken"] == "0" and invoice["DocNumber"] == "1001"
    assert invoice["TotalAmt"] == D("100.00") and invoice["Balance"] == D("100.00")
    assert invoice["CustomerRef"]["name"] == "Globex Corporation"
    assert invoice["Line"][0]["Id"] == "1"
    assert invoice["Line"][-1]["DetailType"] == "SubTotalLineDetail"
    assert invoice["TxnDate"] == "2026-01-05"
    status, read = env.json("GET", f"invoice/{invoice['Id']}")
    assert status == 200 and read["Invoice"] == invoice
    status, missing = env.json("GET", "invoice/999")
    assert status == 400 and missing["Fault"]["Error"][0]["code"] == "610"
    assert env.company.created["Invoice"] == 1
    # Without a TxnDate QuickBooks dates the invoice today (the emulator's clock).
    _, undated = env.json("POST", "invoice", body=env.invoice())
    assert undated["Invoice"]["TxnDate"] == "2026-01-01"
    assert undated["Invoice"]["DocNumber"] == "1002"


def test_full_and_sparse_updates_and_stale_sync_token(env: Env) -> None:
    _, created = env.json("POST", "invoice", body=env.invoice(DocNumber="A-1", PrivateNote="one"))
    invoice_id = created["Invoice"]["Id"]
    full = env.invoice(Id=invoice_id, SyncToken="0", DocNumber="A-1")
    full["Line"] = [sales_line(env.company, "Seats", "30.00", 3, "10")]
    status, body = env.json("POST", "invoice", body=full)
    assert status == 200
    updated = body["Invoice"]
    assert updated["SyncToken"] == "1" and updated["TotalAmt"] == D("30.00")
    assert "PrivateNote" not in updated  # a full update clears what it leaves out
    assert env.company.updated["Invoice"] == 1

    stale = env.invoice(Id=invoice_id, SyncToken="0")
    status, body = env.json("POST", "invoice", body=stale)
    assert status == 400 and body["Fault"]["Error"][0]["code"] == "5010"

    sparse = {"Id": invoice_id, "SyncToken": "1", "sparse": True, "PrivateNote": "two"}
    status, body = env.json("POST", "invoice", body=sparse)
    assert status == 200
    assert body["Invoice"]["PrivateNote"] == "two" and body["Invoice"]["TotalAmt"] == D("30.00")
    assert body["Invoice"]["DocNumber"] == "A-1" and body["Invoice"]["SyncToken"] == "2"
    lines = {
        "Id": invoice_id,
        "SyncToken": "2",
        "sparse": True,
        "Line": [sales_line(env.company, "Fees", "5.00", 1, "5")],
    }
    _, body = env.json("POST", "invoice", body=lines, params={"operation": "update"})
    assert body["Invoice"]["TotalAmt"] == D("5.00")
    assert [ln.get("Description") for ln in body["Invoice"]["Line"][:-1]] == ["Fees"]
    status, body = env.json("POST", "invoice", body={**lines, "SyncToken": None})
    assert status == 400 and body["Fault"]["Error"][0]["element"] == "SyncToken"
    status, body = env.json("POST", "invoice", body={**lines, "Id": "404"})
    assert status == 400 and body["Fault"]["Error"][0]["code"] == "610"


def test_duplicate_doc_number_is_6140(env: Env) -> None:
    _, first = env.json("POST", "invoice", body=env.invoice(DocNumber="INV-7"))
    status, body = env.json("POST", "invoice", body=env.invoice(DocNumber="INV-7"))
    assert status == 400
    error = body["Fault"]["Error"][0]
    assert error["code"] == "6140" and "Duplicate Document Number" in error["Message"]
    assert f"TxnId={first['Invoice']['Id']}" in error["Detail"]
    # Numbers are unique per document type; and without custom numbers, never checked.
    memo = env.invoice(DocNumber="INV-7")
    assert env.json("POST", "creditmemo", body=memo)[0] == 200
    env.company.custom_doc_numbers = False
    assert env.json("POST", "invoice", body=env.invoice(DocNumber="INV-7"))[0] == 200
    status, body = env.json("POST", "invoice", body=env.invoice(DocNumber="X" * 22))
    assert status == 400 and body["Fault"]["Error"][0]["code"] == "2050"


def test_amount_must_multiply_out_6070(env: Env) -> None:
    bad = env.invoice(Line=[sales_line(env.company, "Platform", "10.01", 3, "3.333")])
    status, body = env.json("POST", "invoice", body=bad)
    assert status == 400
    error = body["Fault"]["Error"][0]
    assert error["code"] == "6070" and "Supplied value:10.01" in error["Detail"]
    good = env.invoice(Line=[sales_line(env.company, "Platform", "10.00", 3, "3.333")])
    assert env.json("POST", "invoice", body=good)[0] == 200
    # Half-up to the cent: 0.005 → 0.01.
    half = env.invoice(Line=[sales_line(env.company, "Platform", "0.01", 1, "0.005")])
    assert env.json("POST", "invoice", body=half)[0] == 200
    # JPY: to the yen.
    acme = env.company.add_customer("Yen KK", currency="JPY")
    yen = env.invoice(
        CustomerRef={"value": acme["Id"]},
        CurrencyRef={"value": "JPY"},
        Line=[sales_line(env.company, "Platform", "1000", 3, "333.3333")],
    )
    assert env.json("POST", "invoice", body=yen)[0] == 200


def test_references_must_exist_and_be_active_610(env: Env) -> None:
    legacy = env.company.id_of("Item", "Legacy Plan")
    line = sales_line(env.company, "Platform", "1.00", 1, "1")
    line["SalesItemLineDetail"]["ItemRef"] = {"value": legacy}
    status, body = env.json("POST", "invoice", body=env.invoice(Line=[line]))
    assert status == 400
    assert (body["Fault"]["Error"][0]["code"], body["Fault"]["Error"][0]["element"]) == (
        "610",
        "ItemRef",
    )
    old = env.company.id_of("Customer", "Old Customer Inc")
    for ref in (old, "9999"):
        status, body = env.json("POST", "invoice", body=env.invoice(CustomerRef={"value": ref}))
        assert body["Fault"]["Error"][0]["element"] == "CustomerRef"
    tax = sales_line(env.company, "Platform", "1.00", 1, "1")
    tax["SalesItemLineDetail"]["TaxCodeRef"] = {"value": "NOPE"}
    assert (
        env.json("POST", "invoice", body=env.invoice(Line=[tax]))[1]["Fault"]["Error"][0]["element"]
        == "TaxCodeRef"
    )
    term = env.invoice(SalesTermRef={"value": "77"})
    assert (
        env.json("POST", "invoice", body=term)[1]["Fault"]["Error"][0]["element"] == "SalesTermRef"
    )
    platform = env.company.id_of("Item", "Platform")
    env.emulator.deactivate_item(env.realm, platform)
    status, body = env.json("POST", "invoice", body=env.invoice())
    assert body["Fault"]["Error"][0]["element"] == "ItemRef"


def test_required_unknown_and_business_rules(env: Env) -> None:
    status, body = env.json("POST", "invoice", body={"Line": env.invoice()["Line"]})
    assert status == 400
    assert (
        body["Fault"]["Error"][0]["code"] == "2020"
        and body["Fault"]["Error"][0]["element"] == "CustomerRef"
    )
    status, body = env.json("POST", "invoice", body=env.invoice(Line=[]))
    assert body["Fault"]["Error"][0]["element"] == "Line"
    status, body = env.json("POST", "invoice", body=env.invoice(Colour="blue"))
    assert (
        body["Fault"]["Error"][0]["code"] == "2010"
        and "Colour" in body["Fault"]["Error"][0]["Detail"]
    )
    # Invoice-only fields are refused on a credit memo.
    status, body = env.json("POST", "creditmemo", body=env.invoice(DueDate="2026-02-01"))
    assert body["Fault"]["Error"][0]["code"] == "2010"
    status, body = env.json("POST", "invoice", content=b"{not json")
    assert body["Fault"]["Error"][0]["code"] == "2010"
    negative = env.invoice(Line=[sales_line(env.company, "Platform", "-5.00", 1, "-5")])
    status, body = env.json("POST", "invoice", body=negative)
    assert (
        body["Fault"]["Error"][0]["code"] == "6000"
        and "negative" in body["Fault"]["Error"][0]["Detail"]
    )
    gbp = env.invoice(CurrencyRef={"value": "GBP"})
    assert "currency" in env.json("POST", "invoice", body=gbp)[1]["Fault"]["Error"][0]["Detail"]
    description = {
        "DetailType": "DescriptionOnly",
        "Description": "note",
        "DescriptionLineDetail": {},
    }
    with_note = env.invoice(Line=[*env.invoice()["Line"], description])
    _, ok = env.json("POST", "invoice", body=with_note)
    assert ok["Invoice"]["TotalAmt"] == D("100.00")


def taxed(env: Env, code: str, amount: str = "100.00") -> dict[str, Any]:
    line = sales_line(env.company, "Platform", amount, 1, amount)
    line["SalesItemLineDetail"]["TaxCodeRef"] = {"value": code}
    return line


def test_tax_codes_and_rates_are_listed(env: Env) -> None:
    standard = env.company.id_of("TaxCode", "20.0% S")
    _, body = env.json("GET", f"taxcode/{standard}")
    (detail,) = body["TaxCode"]["SalesTaxRateList"]["TaxRateDetail"]
    _, rate = env.json("GET", f"taxrate/{detail['TaxRateRef']['value']}")
    assert (rate["TaxRate"]["Name"], rate["TaxRate"]["RateValue"]) == ("20.0% S", D("20"))
    status, listed = env.query("select * from TaxRate")
    assert status == 200
    assert {r["Name"]: r["RateValue"] for r in listed["QueryResponse"]["TaxRate"]} == {
        "20.0% S": D("20"),
        "5.0% R": D("5"),
        "0.0% Z": D("0"),
    }


@pytest.mark.parametrize(
    ("calculation", "total", "tax"),
    [
        (None, "180.00", "30.00"),  # not sent: tax is added, as TaxExcluded
        ("TaxExcluded", "180.00", "30.00"),
        # Inside the amounts: 100 × 20/120 = 16.67 and 50 × 20/120 = 8.33, one tax line.
        ("TaxInclusive", "150.00", "25.00"),
        ("NotApplicable", "150.00", "0"),
    ],
)
def test_tax_is_computed_from_the_companys_rates(
    env: Env, calculation: str | None, total: str, tax: str
) -> None:
    standard = env.company.id_of("TaxCode", "20.0% S")
    extra = {"GlobalTaxCalculation": calculation} if calculation else {}
    lines = [taxed(env, standard), taxed(env, standard, "50.00"), taxed(env, "NON", "0.00")]
    status, created = env.json("POST", "invoice", body=env.invoice(Line=lines, **extra))
    assert status == 200, created
    invoice = created["Invoice"]
    assert (invoice["TotalAmt"], invoice["Balance"]) == (D(total), D(total))
    assert invoice["TxnTaxDetail"]["TotalTax"] == D(tax)
    if D(tax):
        (tax_line,) = invoice["TxnTaxDetail"]["TaxLine"]
        detail = tax_line["TaxLineDetail"]
        assert (tax_line["Amount"], detail["TaxPercent"]) == (D(tax), D("20"))
    # US codes carry no rate of their own: no tax.
    _, plain = env.json("POST", "invoice", body=env.invoice(Line=[taxed(env, "TAX")]))
    assert plain["Invoice"]["TotalAmt"] == D("100.00")
    assert plain["Invoice"]["TxnTaxDetail"]["TotalTax"] == D("0")


def test_tax_rounds_per_rate_and_refuses_unknown_calculations(env: Env) -> None:
    reduced = env.company.id_of("TaxCode", "5.0% R")
    lines = [taxed(env, reduced, "0.10") for _ in range(3)]
    _, created = env.json("POST", "invoice", body=env.invoice(Line=lines))
    # 0.30 × 5 % = 0.015 → 0.02 on the rate's total, where each line alone would round to 0.01.
    assert created["Invoice"]["TxnTaxDetail"]["TotalTax"] == D("0.02")
    status, body = env.json(
        "POST", "invoice", body=env.invoice(GlobalTaxCalculation="TaxSometimes")
    )
    assert status == 400 and body["Fault"]["Error"][0]["code"] == "2010"
    status, body = env.json("POST", "invoice", body=env.invoice(Line=[taxed(env, "NO-SUCH")]))
    assert status == 400
    assert (body["Fault"]["Error"][0]["code"], body["Fault"]["Error"][0]["element"]) == (
        "610",
        "TaxCodeRef",
    )


def test_paid_closed_and_ended_subscription(env: Env) -> None:
    _, created = env.json("POST", "invoice", body=env.invoice(TxnDate="2026-02-10"))
    invoice = created["Invoice"]
    env.emulator.mark_paid(env.realm, invoice["Id"])
    assert env.company.invoices[invoice["Id"]]["Balance"] == 0
    status, body = env.json("POST", "invoice", body=env.invoice(Id=invoice["Id"], SyncToken="0"))
    assert status == 400 and "has been paid" in body["Fault"]["Error"][0]["Detail"]

    env.emulator.close_books(env.realm, "2026-01-31")
    status, body = env.json("POST", "invoice", body=env.invoice(TxnDate="2026-01-31"))
    assert status == 400 and "closing date" in body["Fault"]["Error"][0]["Detail"]
    assert env.json("POST", "invoice", body=env.invoice(TxnDate="2026-02-01"))[0] == 200

    env.emulator.end_subscription(env.realm)
    status, body = env.json("POST", "invoice", body=env.invoice(TxnDate="2026-02-01"))
    assert status == 400 and body["Fault"]["Error"][0]["code"] == "6190"
    assert env.json("GET", f"invoice/{invoice['Id']}")[0] == 200


def test_void_zeroes_an_invoice_and_keeps_it(env: Env) -> None:
    _, created = env.json("POST", "invoice", body=env.invoice(PrivateNote="bill 7"))
    invoice = created["Invoice"]
    body = {"Id": invoice["Id"], "SyncToken": "1"}
    status, stale = env.json("POST", "invoice", body=body, params={"operation": "void"})
    assert status == 400 and stale["Fault"]["Error"][0]["code"] == "5010"
    body["SyncToken"] = "0"
    status, voided = env.json("POST", "invoice", body=body, params={"operation": "void"})
    assert status == 200, voided
    kept = voided["Invoice"]
    assert (kept["Id"], kept["DocNumber"], kept["SyncToken"]) == (
        invoice["Id"],
        invoice["DocNumber"],
        "1",
    )
    assert (kept["TotalAmt"], kept["Balance"]) == (D("0"), D("0"))
    assert kept["PrivateNote"] == "Voided - bill 7"
    assert [line["Amount"] for line in kept["Line"]] == [D("0"), D("0")]
    assert env.company.invoices[invoice["Id"]]["TotalAmt"] == 0
    assert env.emulator.calls["void:Invoice"] == 1
    # The number stays taken by the voided invoice.
    again = env.invoice(DocNumber=invoice["DocNumber"])
    assert env.json("POST", "invoice", body=again)[1]["Fault"]["Error"][0]["code"] == "6140"


def test_void_refuses_paid_invoices_and_credit_memos_and_delete_removes(env: Env) -> None:
    _, created = env.json("POST", "invoice", body=env.invoice())
    paid = created["Invoice"]
    env.emulator.mark_paid(env.realm, paid["Id"])
    status, body = env.json(
        "POST", "invoice", body={"Id": paid["Id"], "SyncToken": "0"}, params={"operation": "void"}
    )
    assert status == 400 and "linked to a payment" in body["Fault"]["Error"][0]["Detail"]
    assert env.company.invoices[paid["Id"]]["TotalAmt"] == D("100.00")
    _, memo = env.json("POST", "creditmemo", body=env.invoice())
    memo_id = memo["CreditMemo"]["Id"]
    status, body = env.json(
        "POST", "creditmemo", body={"Id": memo_id, "SyncToken": "0"}, params={"operation": "void"}
    )
    assert status == 400 and body["Fault"]["Error"][0]["code"] == "4001"
    status, body = env.json(
        "POST",
        "creditmemo",
        body={"Id": memo_id, "SyncToken": "0"},
        params={"operation": "delete"},
    )
    assert status == 200 and body["CreditMemo"] == {
        "Id": memo_id,
        "status": "Deleted",
        "domain": "QBO",
    }
    assert memo_id not in env.company.credit_memos
    assert env.json("GET", f"creditmemo/{memo_id}")[1]["Fault"]["Error"][0]["code"] == "610"


def test_requestid_replays_the_first_answer(env: Env) -> None:
    first = env.call("POST", "invoice", body=env.invoice(), params={"requestid": "rid-1"})
    again = env.call(
        "POST", "invoice", body=env.invoice(DocNumber="other"), params={"requestid": "rid-1"}
    )
    assert again.content == first.content
    assert env.company.created["Invoice"] == 1 and env.emulator.calls["replay"] == 1
    # Per realm: another company may use the same id.
    other = env.emulator.add_company(name="Other")
    assert other.replies == {}
    refused = env.call(
        "POST",
        "invoice",
        body=env.invoice(CustomerRef={"value": "9999"}),
        params={"requestid": "rid-2"},
    )
    assert refused.status_code == 400
    assert (
        env.call("POST", "invoice", body=env.invoice(), params={"requestid": "rid-2"}).content
        == refused.content
    )
    status, body = env.json("POST", "invoice", body=env.invoice(), params={"requestid": "r" * 51})
    assert status == 400 and body["Fault"]["Error"][0]["element"] == "requestid"
    assert (
        env.call("POST", "invoice", body=env.invoice(), params={"requestid": "r" * 50}).status_code
        == 200
    )


# --- queries ------------------------------------------------------------------------------------


def test_query_paging_quoting_and_defaults(env: Env) -> None:
    for n in range(25):
        env.company.add_customer(f"Paged {n:02d}")
    statement = "select * from Customer where DisplayName like 'Paged%' orderby DisplayName"
    status, body = env.query(f"{statement} startposition 1 maxresults 10")
    page = body["QueryResponse"]
    assert status == 200 and page["startPosition"] == 1 and page["maxResults"] == 10
    assert [c["DisplayName"] for c in page["Customer"]][:2] == ["Paged 00", "Paged 01"]
    _, body = env.query(f"{statement} STARTPOSITION 21 MAXRESULTS 10")
    assert [c["DisplayName"] for c in body["QueryResponse"]["Customer"]] == [
        f"Paged {n}" for n in range(20, 25)
    ]
    _, body = env.query(f"{statement} STARTPOSITION 26 MAXRESULTS 10")
    assert body["QueryResponse"] == {}  # the entity key is absent when empty
    _, body = env.query("select * from Customer where DisplayName = 'Amy\\'s Bird Sanctuary'")
    assert [c["DisplayName"] for c in body["QueryResponse"]["Customer"]] == ["Amy's Bird Sanctuary"]
    _, body = env.query("SELECT COUNT(*) FROM Customer")
    assert body["QueryResponse"] == {"totalCount": 7 + 25}  # the inactive one is not counted
    _, body = env.query("select * from Customer where Active = false")
    assert [c["DisplayName"] for c in body["QueryResponse"]["Customer"]] == ["Old Customer Inc"]
    _, body = env.query("select Id, DisplayName from Customer where DisplayName like '%WINDSURF%'")
    assert body["QueryResponse"]["Customer"] == [
        {
            "Id": env.company.id_of("Customer", "Bill's Windsurf Shop"),
            "DisplayName": "Bill's Windsurf Shop",
        }
    ]
    _, body = env.query("select * from Term where DueDays >= 30 orderby DueDays desc")
    assert [t["Name"] for t in body["QueryResponse"]["Term"]] == ["Net 60", "Net 30"]
    _, body = env.query("select * from Item where Name in ('Seats', 'Fees') orderby Name")
    assert [i["Name"] for i in body["QueryResponse"]["Item"]] == ["Fees", "Seats"]
    _, body = env.query("select * from Customer")
    assert len(body["QueryResponse"]["Customer"]) == 32  # default MAXRESULTS is 100
    posted = env.call("POST", "query", content=b"select * from TaxCode where Name = 'TAX'")
    assert loads(posted.content)["QueryResponse"]["TaxCode"][0]["Id"] == "TAX"


def test_query_refusals(env: Env) -> None:
    for statement, fragment in [
        ("select * from Customer where DisplayName = 'a' OR DisplayName = 'b'", "OR"),
        ("select * from Customer maxresults 1001", "MAXRESULTS"),
        ("select * from Customer startposition 0", "STARTPOSITION"),
        ("select * from Spaceship", "Spaceship"),
        ('select * from Customer where DisplayName = "double"', "Encountered"),
        ("select * from", "EOF"),
    ]:
        status, body = env.query(statement)
        assert status == 400, statement
        error = body["Fault"]["Error"][0]
        assert error["code"] == "4000" and fragment in error["Detail"], (statement, error)
    # "or" inside a string is data.
    status, body = env.query("select * from Customer where DisplayName = 'Cool or Cars'")
    assert status == 200 and body["QueryResponse"] == {}


def test_query_invoices_by_doc_number_and_customer(env: Env) -> None:
    env.json("POST", "invoice", body=env.invoice(DocNumber="Q-1"))
    globex = env.company.id_of("Customer", "Globex Corporation")
    _, body = env.query(
        f"select * from Invoice where CustomerRef = '{globex}' and DocNumber = 'Q-1'"
    )
    assert [i["DocNumber"] for i in body["QueryResponse"]["Invoice"]] == ["Q-1"]
    _, body = env.query(
        "select * from Invoice where TotalAmt > '99.99' and TxnDate <= '2026-01-01'"
    )
    assert len(body["QueryResponse"]["Invoice"]) == 1


# --- batch --------------------------------------------------------------------------------------


def test_batch_mixed_with_per_item_faults(env: Env) -> None:
    _, created = env.json("POST", "invoice", body=env.invoice(DocNumber="B-0"))
    bad = env.invoice(Line=[sales_line(env.company, "Platform", "1.02", 1, "1")])
    request = {
        "BatchItemRequest": [
            {"bId": "1", "operation": "create", "Invoice": env.invoice(DocNumber="B-1")},
            {"bId": "2", "operation": "create", "Invoice": bad},
            {
                "bId": "3",
                "operation": "update",
                "Invoice": env.invoice(Id=created["Invoice"]["Id"], SyncToken="0", DocNumber="B-0"),
            },
            {"bId": "4", "Query": "select * from Invoice where DocNumber = 'B-1'"},
            {"bId": "5", "operation": "create", "CreditMemo": env.invoice(DocNumber="B-1")},
        ]
    }
    status, body = env.json("POST", "batch", body=request, params={"requestid": "batch-1"})
    assert status == 200
    answers = {a["bId"]: a for a in body["BatchItemResponse"]}
    assert answers["1"]["Invoice"]["DocNumber"] == "B-1"
    assert answers["2"]["Fault"]["Error"][0]["code"] == "6070"
    assert answers["3"]["Invoice"]["SyncToken"] == "1"
    assert answers["4"]["QueryResponse"]["Invoice"][0]["DocNumber"] == "B-1"
    assert answers["5"]["CreditMemo"]["DocNumber"] == "B-1"
    assert env.emulator.calls["batch"] == 1
    replay = env.call("POST", "batch", body=request, params={"requestid": "batch-1"})
    assert loads(replay.content) == body and env.company.created["Invoice"] == 2
    status, body = env.json("POST", "batch", body=request, params={"requestid": "b" * 37})
    assert status == 400


def test_batch_limits(env: Env) -> None:
    many = {"BatchItemRequest": [{"bId": str(i), "Query": "select * from Item"} for i in range(31)]}
    status, body = env.json("POST", "batch", body=many)
    assert status == 400 and "at most 30" in body["Fault"]["Error"][0]["Detail"]
    for items in (
        [{"bId": "12345678901", "Query": "select * from Item"}],
        [{"bId": "a", "Query": "select * from Item"}, {"bId": "a", "Query": "select * from Item"}],
        [{"Query": "select * from Item"}],
    ):
        status, body = env.json("POST", "batch", body={"BatchItemRequest": items})
        assert status == 400 and body["Fault"]["Error"][0]["element"] == "bId"
    thirty = {
        "BatchItemRequest": [{"bId": str(i), "Query": "select * from Item"} for i in range(30)]
    }
    assert env.json("POST", "batch", body=thirty)[0] == 200


# --- limits -------------------------------------------------------------------------------------


@pytest.fixture
def limited() -> Iterator[Env]:
    yield from make_env(limits=True)


def _throttled(response: httpx.Response) -> None:
    assert response.status_code == 429
    error = loads(response.content)["Fault"]["Error"][0]
    assert error["code"] == "003001" and "ThrottleExceeded" in error["Message"]
    assert "retry-after" not in response.headers


def test_ten_requests_a_second(limited: Env) -> None:
    path = f"companyinfo/{limited.realm}"
    assert all(limited.call("GET", path).status_code == 200 for _ in range(10))
    _throttled(limited.call("GET", path))
    assert limited.emulator.throttled == {"second": 1}
    limited.clock.advance(1)
    assert limited.call("GET", path).status_code == 200


def test_five_hundred_requests_a_minute(limited: Env) -> None:
    path = f"companyinfo/{limited.realm}"
    for n in range(500):
        if n % 10 == 0:
            limited.clock.advance(1.1)  # ten a second keeps inside 10/s: 55 s for 500
        assert limited.call("GET", path).status_code == 200, n
    limited.clock.advance(1.1)  # 56 s after the first: the minute still holds 500
    _throttled(limited.call("GET", path))
    assert limited.emulator.throttled["minute"] == 1
    limited.clock.advance(60)
    assert limited.call("GET", path).status_code == 200


def test_forty_batches_a_minute(limited: Env) -> None:
    request = {"BatchItemRequest": [{"bId": "1", "Query": "select * from Term"}]}
    for _ in range(40):
        limited.clock.advance(0.2)
        assert limited.call("POST", "batch", body=request).status_code == 200
    limited.clock.advance(0.2)
    _throttled(limited.call("POST", "batch", body=request))
    assert limited.emulator.throttled == {"batch": 1}
    # Other requests still pass; batches again after the minute.
    assert limited.call("GET", f"companyinfo/{limited.realm}").status_code == 200
    limited.clock.advance(60)
    assert limited.call("POST", "batch", body=request).status_code == 200
    limited.emulator.limits_enabled = False
    assert all(
        limited.call("GET", f"companyinfo/{limited.realm}").status_code == 200 for _ in range(15)
    )


# --- faults -------------------------------------------------------------------------------------


@pytest.fixture
def faulty() -> Iterator[Env]:
    yield from make_env(FaultPlan(hang_seconds=0.5, path_prefixes=("/v3/",)))


def test_injected_faults_are_quickbooks_shaped(faulty: Env) -> None:
    plan = faulty.emulator.faults
    plan.script("error")
    response = faulty.call("POST", "invoice", body=faulty.invoice(), params={"requestid": "f-1"})
    assert response.status_code in (500, 503)
    assert loads(response.content)["Fault"]["type"] == "SystemFault"
    assert faulty.company.created["Invoice"] == 0

    plan.script("lost")
    with pytest.raises(httpx.RemoteProtocolError):
        faulty.call("POST", "invoice", body=faulty.invoice(), params={"requestid": "f-1"})
    assert faulty.company.created["Invoice"] == 1  # committed although the answer was lost
    retried = faulty.call("POST", "invoice", body=faulty.invoice(), params={"requestid": "f-1"})
    assert retried.status_code == 200 and faulty.company.created["Invoice"] == 1
    assert loads(retried.content)["Invoice"]["Id"] == next(iter(faulty.company.invoices))

    plan.script("timeout")
    with (
        httpx.Client(base_url=faulty.server.url, timeout=0.2) as impatient,
        pytest.raises(httpx.TimeoutException),
    ):
        impatient.get(f"/v3/company/{faulty.realm}/companyinfo/{faulty.realm}")
    # OAuth is outside the plan's paths.
    plan.script("error")
    assert consent(faulty.http)["realmId"] == faulty.realm
    plan.clear()


def test_main_serves_a_seeded_company(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    served: dict[str, Any] = {}

    def fake_run(app: Any, **kwargs: Any) -> None:
        served.update(kwargs, app=app)

    monkeypatch.setattr(emulator_module.uvicorn, "run", fake_run)
    monkeypatch.setenv("BILLBRIDGE_EMULATOR_CLIENT_ID", "demo-id")
    monkeypatch.setenv("BILLBRIDGE_EMULATOR_CLIENT_SECRET", "demo-secret")
    emulator_module.main(port=18081)
    out = capsys.readouterr().out
    assert served["port"] == 18081 and served["host"] == "127.0.0.1"
    assert "http://127.0.0.1:18081/oauth2/v1/tokens/bearer" in out
    assert "demo-id" in out and "realmId" in out and "Acme Ltd=" in out
