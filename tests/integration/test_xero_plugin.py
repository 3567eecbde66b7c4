"""The Xero plugin end to end over real HTTP against the emulator.

A token is obtained as the core would: consent at the emulator's authorize URL and a code
exchange with httpx. Hooks are called with keyword arguments, as the core calls them, with a
:class:`~billbridge.plugin.contract.Connection` built per test. Every body the plugin sends is checked
against Xero's OpenAPI spec after each test (see ``test_xero_openapi.py``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs
import httpx
import pytest
from billbridge_xero import hooks
from billbridge_xero.client import (
    MAX_IDEMPOTENCY_KEY,
    DuplicateNumber,
    ElementResult,
    RateLimitStatus,
    XeroClient,
    api_host,
    element_error,
    idempotency_key,
)
from billbridge_xero.emulator import XeroEmulator
from billbridge_xero.emulator.organisation import Organisation
from billbridge_xero.send import document_url
from test_xero_openapi import assert_valid_body

from billbridge.domain.models import (
    Account,
    Bill,
    Credential,
    CredentialStatus,
    LedgerEntry,
    Secret,
    dumps,
    parse_account,
    parse_bill,
)
from billbridge.errors import (
    AccountingPeriodClosed,
    AuthenticationFailed,
    DestinationValidationError,
    InvoiceAlreadyPaid,
    MissingMapping,
    PermanentError,
    RateLimited,
    TokenExpired,
    TransientError,
)
from billbridge.plugin.contract import (
    Connection,
    Delivery,
    OAuthCallback,
    ResolvedMappings,
    SendResult,
)
from billbridge.plugin.idempotency import batch_idempotency_key
from billbridge.testing.emulation.clock import ManualClock
from billbridge.testing.emulation.faults import FaultPlan
from billbridge.testing.emulation.server import RunningServer
from support import SAMPLES

D = Decimal
REDIRECT = "http://127.0.0.1:9/callback"
SCOPES = "offline_access accounting.invoices accounting.contacts accounting.settings.read"
CONFIG: dict[str, Any] = {"defaultAccountCode": "200", "defaultTaxType": "OUTPUT2"}


def basic() -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(b"app:s3cret").decode()}


def consent_and_exchange(http: httpx.Client, **extra: str) -> tuple[dict[str, str], dict[str, Any]]:
    """What the core does: send the user to consent, then exchange the code for tokens."""
    response = http.get(
        "/identity/connect/authorize",
        params={
            "client_id": "app",
            "redirect_uri": REDIRECT,
            "response_type": "code",
            "scope": SCOPES,
            "state": "state-1",
            **extra,
        },
    )
    callback = {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}
    tokens = http.post(
        "/connect/token",
        data={
            "grant_type": "authorization_code",
            "code": callback["code"],
            "redirect_uri": REDIRECT,
        },
        headers=basic(),
    ).json()
    return callback, tokens


@attrs.define
class Shared:
    emulator: XeroEmulator
    server: RunningServer
    clock: ManualClock
    plan: FaultPlan
    http: httpx.Client


@pytest.fixture(scope="module")
def shared() -> Iterator[Shared]:
    clock = ManualClock(start=datetime(2026, 3, 1, tzinfo=UTC).timestamp())
    plan = FaultPlan(hang_seconds=0.6)
    emulator = XeroEmulator(clock, faults=plan)
    emulator.oauth.add_client("app", "s3cret")
    with emulator.start() as server, httpx.Client(base_url=server.url, timeout=5) as http:
        yield Shared(emulator, server, clock, plan, http)


@attrs.define
class Xero:
    shared: Shared
    org: Organisation
    other: Organisation
    tokens: dict[str, Any]
    http: httpx.Client

    @property
    def emulator(self) -> XeroEmulator:
        return self.shared.emulator

    @property
    def api_base_url(self) -> str:
        return self.shared.server.url + "/api.xro/2.0"

    def connection(self, tenant: str | None = None, token: str | None = None) -> Connection:
        return Connection(
            destination="xero",
            tenant_id=tenant or self.org.tenant_id,
            access_token=Secret(token or self.tokens["access_token"]),
            http=self.http,
            api_base_url=self.api_base_url,
        )

    def mappings(
        self, account: Account, contact: str = "Acme Ltd", **items: str
    ) -> ResolvedMappings:
        entries = {
            ("Account", account.id, "Contact"): self.org.contact_id(contact),
            ("Product", "p-platform", "Item"): "PLATFORM",
            ("Product", "p-api", "Item"): "API-CALLS",
            ("Product", "p-events", "Item"): "EVENTS",
            ("Product", "p-seats", "Item"): "SEATS",
        }
        for product, code in items.items():
            entries[("Product", product, "Item")] = code
        return ResolvedMappings(entries)

    def send(
        self,
        bill: Bill,
        account: Account,
        *,
        config: Mapping[str, Any] | None = None,
        mappings: ResolvedMappings | None = None,
        previous: LedgerEntry | None = None,
        key: str = "key-1",
        connection: Connection | None = None,
    ) -> SendResult:
        result: SendResult = hooks.send_bill(
            destination="xero",
            connection=connection or self.connection(),
            bill=bill,
            account=account,
            config=dict(CONFIG) if config is None else config,
            mappings=mappings if mappings is not None else self.mappings(account),
            previous=previous,
            idempotency_key=key,
        )
        return result

    def documents(self, kind: str = "Invoice") -> list[dict[str, Any]]:
        return self.emulator.documents(self.org.tenant_id, kind)  # type: ignore[arg-type]

    def burn(self, calls: int, tenant: str | None = None) -> None:
        """Spend some of the tenant's allowance with plain requests."""
        headers = {
            "Authorization": f"Bearer {self.tokens['access_token']}",
            "xero-tenant-id": tenant or self.org.tenant_id,
        }
        for _ in range(calls):
            self.shared.http.get("/api.xro/2.0/BrandingThemes", headers=headers)


@pytest.fixture
def xero(shared: Shared, request: pytest.FixtureRequest) -> Iterator[Xero]:
    name = request.node.name[:40]
    org = shared.emulator.add_organisation(f"UK {name}", base_currency="GBP")
    other = shared.emulator.add_organisation(f"US {name}", base_currency="USD")
    _, tokens = consent_and_exchange(
        shared.http, emulator_organisations=f"{org.tenant_id},{other.tenant_id}"
    )
    captured_before = len(shared.emulator.captured)
    with httpx.Client(timeout=5) as http:
        yield Xero(shared, org, other, tokens, http)
    shared.plan.clear()
    # Every body the plugin sent during the test is a valid Xero request body.
    mine = {org.tenant_id, other.tenant_id}
    for captured in shared.emulator.captured[captured_before:]:
        if captured.tenant_id in mine:
            assert_valid_body(captured.body)


def sample_bill(name: str = "bill-acme-uk-2025-09.json") -> Bill:
    return parse_bill((SAMPLES / name).read_text())


def sample_account(name: str = "account-acme-uk.json") -> Account:
    return parse_account((SAMPLES / name).read_text())


def make_bill(
    n: int,
    *,
    amount: str = "100",
    currency: str = "GBP",
    number: str | None = None,
    lines: Sequence[Mapping[str, Any]] | None = None,
    **fields: Any,
) -> Bill:
    data: dict[str, Any] = {
        "id": f"bill-{n}",
        "version": 1,
        "accountId": "acct-1",
        "currency": currency,
        "billDate": "2026-02-01",
        "dueDate": "2026-03-01",
        "sequentialInvoiceNumber": number if number is not None else f"INV-{n:05d}",
        "lineItems": list(lines)
        if lines is not None
        else [
            {
                "lineItemType": "STANDING_CHARGE",
                "description": f"Platform for bill {n}",
                "quantity": 1,
                "averageUnitPrice": amount,
                "subtotal": amount,
                "productId": "p-platform",
            }
        ],
    }
    data.update(fields)
    return parse_bill(data)


ACCOUNT = Account(id="acct-1", name="Acme Ltd", code="ACME")


def ledger(result: SendResult, bill: Bill) -> LedgerEntry:
    return LedgerEntry(
        integration_id="integration-1",
        bill_id=bill.id,
        bill_version=bill.version,
        external_id=result.external_id,
        updated_at=datetime(2026, 3, 1, tzinfo=UTC),
        external_number=result.number,
        external_url=result.url,
        state=result.state,
    )


# --- authenticate --------------------------------------------------------------------------------


def credential() -> Credential:
    return Credential(
        id="cred-1",
        name="Xero UK",
        destination="xero",
        status=CredentialStatus.INCOMPLETE,
        created_at=datetime(2026, 3, 1, tzinfo=UTC),
    )


def authenticate(xero: Xero, callback: Mapping[str, str], token: str) -> Sequence[Any]:
    result: Sequence[Any] = hooks.authenticate(
        destination="xero",
        credential=credential(),
        callback=OAuthCallback(params=callback, access_token=Secret(token)),
        http=xero.http,
        api_base_url=xero.api_base_url,
    )
    return result


def test_authenticate_lists_the_chosen_organisations(xero: Xero) -> None:
    both = f"{xero.org.tenant_id},{xero.other.tenant_id}"
    callback, tokens = consent_and_exchange(xero.shared.http, emulator_organisations=both)
    choices = authenticate(xero, callback, tokens["access_token"])
    assert [(c.tenant_id, c.name) for c in choices] == [
        (xero.org.tenant_id, xero.org.name),
        (xero.other.tenant_id, xero.other.name),
    ]
    assert choices[0].data["tenantType"] == "ORGANISATION"
    assert choices[0].data["authEventId"] == choices[1].data["authEventId"]
    callback, tokens = consent_and_exchange(
        xero.shared.http, emulator_organisations=xero.other.tenant_id
    )
    assert [c.tenant_id for c in authenticate(xero, callback, tokens["access_token"])] == [
        xero.other.tenant_id
    ]


def test_authenticate_without_an_organisation_or_with_a_bad_token(xero: Xero) -> None:
    callback, tokens = consent_and_exchange(xero.shared.http, emulator_organisations="nobody")
    with pytest.raises(AuthenticationFailed, match="no organisation"):
        authenticate(xero, callback, tokens["access_token"])
    with pytest.raises(AuthenticationFailed, match="HTTP 401") as caught:
        authenticate(xero, callback, "not-a-token")
    assert "not-a-token" not in str(caught.value)


def test_the_connections_host_is_the_api_host() -> None:
    assert api_host("https://api.xero.com/api.xro/2.0") == "https://api.xero.com"
    assert api_host("http://127.0.0.1:8082/api.xro/2.0/") == "http://127.0.0.1:8082"


def test_register_destinations_declares_xeros_facts() -> None:
    (destination,) = hooks.register_destinations()
    assert destination.key == "xero" and destination.account_table == "Contact"
    assert destination.limits.requests_per_minute == 60 and destination.limits.batch_size == 50
    assert destination.oauth is not None
    assert destination.oauth.access_token_lifetime == 1800
    assert destination.oauth.refresh_token_grace == 1800
    assert destination.oauth.scopes[0] == "offline_access"


def test_the_daily_cap_follows_the_free_tier_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert hooks.register_destinations()[0].limits.daily_cap == 5000
    monkeypatch.setenv("BILLBRIDGE_XERO_DAILY_CAP", "1000")
    assert hooks.register_destinations()[0].limits.daily_cap == 1000
    monkeypatch.setenv("BILLBRIDGE_XERO_DAILY_CAP", "lots")
    with pytest.raises(ValueError, match="BILLBRIDGE_XERO_DAILY_CAP"):
        hooks.register_destinations()


# --- list_external_entities -------------------------------------------------------------------------


def listing(xero: Xero, table: str, search: str | None = None, cursor: str | None = None) -> Any:
    return hooks.list_external_entities(
        destination="xero", connection=xero.connection(), table=table, search=search, cursor=cursor
    )


def test_contacts_are_paged_and_searched(xero: Xero) -> None:
    first = listing(xero, "Contact")
    assert len(first.items) == 100 and first.next_cursor == "2"
    second = listing(xero, "Contact", cursor=first.next_cursor)
    assert len(second.items) == 53 and second.next_cursor is None
    ids = {e.id for e in first.items + second.items}
    assert len(ids) == 153 and xero.org.contact_id("Initech") in ids
    found = listing(xero, "Contact", search="globex")
    assert [(e.id, e.name) for e in found.items] == [
        (xero.org.contact_id("Globex Corporation"), "Globex Corporation")
    ]
    assert found.items[0].extra["EmailAddress"] == "payables@globex.example"
    assert found.next_cursor is None
    with pytest.raises(DestinationValidationError, match="cursor"):
        listing(xero, "Contact", cursor="next")


def test_items_accounts_tax_rates_tracking_and_themes(xero: Xero) -> None:
    items = listing(xero, "Item")
    codes = [e.id for e in items.items]
    assert "PLATFORM" in codes and "PURCHASE-ONLY" not in codes
    platform = next(e for e in items.items if e.id == "PLATFORM")
    assert platform.name == "Platform subscription"
    assert platform.extra["SalesAccountCode"] == "200" and platform.extra["UnitPrice"] == "500.00"
    assert [e.id for e in listing(xero, "Item", search="seat").items] == ["SEATS"]
    assert [e.id for e in listing(xero, "Account").items] == ["200", "260", "270"]
    assert [e.id for e in listing(xero, "Account", search="interest").items] == ["270"]
    tax_types = [e.id for e in listing(xero, "TaxRate").items]
    assert "OUTPUT2" in tax_types and "INPUT2" not in tax_types
    tracking = listing(xero, "TrackingCategory")
    assert [e.id for e in tracking.items] == ["Region", "Department", "Channel"]
    assert tracking.items[0].extra["options"] == ["UK", "US", "EU"]
    themes = listing(xero, "BrandingTheme")
    assert [e.name for e in themes.items] == ["Standard", "Special Projects"]
    assert all(len(e.id) == 36 for e in themes.items)
    with pytest.raises(DestinationValidationError, match="Contact, Item"):
        listing(xero, "Customer")


# --- send_bill --------------------------------------------------------------------------------------


def test_send_bill_creates_the_invoice_once(xero: Xero) -> None:
    bill, account = sample_bill(), sample_account()
    result = xero.send(bill, account, mappings=xero.mappings(account))
    assert result.created is True
    assert result.number == "INV-000123"
    assert result.url == (
        f"https://go.xero.com/AccountsReceivable/View.aspx?InvoiceID={result.external_id}"
    )
    assert dict(result.state) == {
        "kind": "Invoice",
        "status": "DRAFT",
        "totals": {
            "currency": "GBP",
            "bill": "1270.00",
            "lines": "1270.00",
            "tax": "254.00",
            "destination": "1524.00",
        },
    }
    (invoice,) = xero.documents()
    assert invoice["InvoiceID"] == result.external_id
    assert invoice["SubTotal"] == D("1270.00") and invoice["TotalTax"] == D("254.00")
    assert invoice["Contact"]["Name"] == "Acme Ltd"
    # 150,000 calls at 0.004: sent with unitdp=4 and kept to 4 decimals.
    api_line = next(li for li in invoice["LineItems"] if li["Description"] == "API Calls")
    assert api_line["UnitAmount"] == D("0.0040") and api_line["LineAmount"] == D("600.00")
    (request,) = [c for c in xero.emulator.captured if c.tenant_id == xero.org.tenant_id]
    assert request.method == "PUT" and request.path.endswith("/Invoices")
    assert request.query == {"summarizeErrors": "false", "unitdp": "4"}
    assert request.idempotency_key is not None
    assert "key-1" in request.idempotency_key
    assert len(request.idempotency_key) <= MAX_IDEMPOTENCY_KEY


def test_the_bills_unit_price_goes_out_as_it_is(xero: Xero) -> None:
    line = {"lineItemType": "USAGE", "productId": "p-events"}
    bill = make_bill(
        7,
        lines=[
            {
                **line,
                "description": "Events",
                "quantity": "12.8205",
                "averageUnitPrice": "14.50",
                "subtotal": "185.90",
            },
            {
                **line,
                "description": "Pings",
                "quantity": "3",
                "averageUnitPrice": "0.001",
                "subtotal": "0.003",
            },
        ],
    )
    xero.send(bill, ACCOUNT)
    (invoice,) = xero.documents()
    # Xero accepted them (LineAmount = Quantity × UnitAmount), with the bill's prices.
    assert [(str(li["Quantity"]), str(li["UnitAmount"])) for li in invoice["LineItems"]] == [
        ("12.8205", "14.5000"),
        ("3.0000", "0.0010"),
    ]


def test_a_lost_response_and_a_retry_with_the_same_key_create_one_invoice(xero: Xero) -> None:
    bill, account = sample_bill(), sample_account()
    xero.shared.plan.script("lost")
    with pytest.raises(TransientError, match="idempotency key"):
        xero.send(bill, account, key="bill-v3")
    assert len(xero.documents()) == 1  # Xero made it; the answer was lost
    result = xero.send(bill, account, key="bill-v3")
    assert len(xero.documents()) == 1
    assert result.external_id == xero.documents()[0]["InvoiceID"] and result.created
    keys = [c.idempotency_key for c in xero.emulator.captured if c.tenant_id == xero.org.tenant_id]
    assert len(keys) == 2 and keys[0] == keys[1]


def test_a_new_version_updates_the_same_invoice(xero: Xero) -> None:
    bill, account = make_bill(1, amount="100"), ACCOUNT
    first = xero.send(bill, account, key="v1")
    newer = make_bill(1, amount="250", version=2)
    second = xero.send(newer, account, previous=ledger(first, bill), key="v2")
    assert second.external_id == first.external_id and second.created is False
    (invoice,) = xero.documents()
    assert invoice["SubTotal"] == D("250.00") and invoice["InvoiceNumber"] == "INV-00001"
    assert [c.method for c in xero.emulator.captured if c.tenant_id == xero.org.tenant_id] == [
        "PUT",
        "POST",
    ]


def test_an_approved_invoice_stays_approved_when_updated(xero: Xero) -> None:
    bill = make_bill(2)
    first = xero.send(bill, ACCOUNT, config={**CONFIG, "invoiceStatus": "AUTHORISED"})
    # Someone approves a draft in Xero; the next version must not try to make it a draft again.
    draft = xero.send(make_bill(3), ACCOUNT, key="d")
    xero.emulator.organisation(xero.org.tenant_id).document(draft.external_id)[  # type: ignore[index]
        "Status"
    ] = "AUTHORISED"
    updated = xero.send(
        make_bill(3, amount="120", version=2), ACCOUNT, previous=ledger(draft, bill)
    )
    assert updated.state["status"] == "AUTHORISED"
    assert first.state["status"] == "AUTHORISED"


def test_credit_notes_for_negative_bills(xero: Xero) -> None:
    lines = [
        {
            "lineItemType": "CREDIT_MEMO",
            "description": "Refund",
            "quantity": 1,
            "averageUnitPrice": -80,
            "subtotal": -80,
            "productId": "p-platform",
        }
    ]
    bill = make_bill(7, lines=lines)
    result = xero.send(bill, ACCOUNT)
    assert result.state["kind"] == "CreditNote" and result.number == "INV-00007"
    assert result.url == (
        "https://go.xero.com/AccountsReceivable/ViewCreditNote.aspx?creditNoteID="
        f"{result.external_id}"
    )
    (note,) = xero.documents("CreditNote")
    assert note["Type"] == "ACCRECCREDIT" and note["SubTotal"] == D("80.00")
    assert xero.documents() == []
    bigger = make_bill(7, lines=[{**lines[0], "averageUnitPrice": -90, "subtotal": -90}], version=2)
    updated = xero.send(bigger, ACCOUNT, previous=ledger(result, bill), key="v2")
    assert updated.external_id == result.external_id and updated.created is False
    assert xero.documents("CreditNote")[0]["SubTotal"] == D("90.00")
    # A later version that is a charge again: the draft credit note is deleted, giving its
    # number up, and an invoice takes its place.
    again = xero.send(make_bill(7, amount="10", version=3), ACCOUNT, previous=ledger(updated, bill))
    assert again.state["kind"] == "Invoice" and again.number == "INV-00007"
    assert again.state["voided"][0]["status"] == "DELETED"


def test_a_jpy_bill(xero: Xero) -> None:
    bill = make_bill(
        8,
        currency="JPY",
        lines=[
            {
                "lineItemType": "USAGE",
                "quantity": 150,
                "averageUnitPrice": 6.6667,
                "subtotal": 1000,
                "productId": "p-api",
            }
        ],
    )
    result = xero.send(bill, ACCOUNT)
    assert result.created
    (invoice,) = xero.documents()
    assert invoice["CurrencyCode"] == "JPY" and invoice["SubTotal"] == D("1000.00")


def test_preview_bill_is_exactly_what_send_bill_sends(xero: Xero) -> None:
    bill, account = sample_bill(), sample_account()
    mappings = xero.mappings(account)

    def preview(previous: LedgerEntry | None) -> Mapping[str, Any]:
        planned: Mapping[str, Any] = hooks.preview_bill(
            destination="xero",
            bill=bill,
            account=account,
            config=CONFIG,
            mappings=mappings,
            previous=previous,
        )
        return planned

    def last_sent() -> Any:
        return [c for c in xero.emulator.captured if c.tenant_id == xero.org.tenant_id][-1]

    planned = preview(None)
    assert (planned["method"], planned["path"], planned["operation"]) == (
        "PUT",
        "/api.xro/2.0/Invoices",
        "create",
    )
    result = xero.send(bill, account, mappings=mappings)
    sent = last_sent()
    assert json.loads(dumps(planned["body"])) == json.loads(dumps(sent.body))
    assert planned["query"] == sent.query == {"summarizeErrors": "false", "unitdp": "4"}
    planned = preview(ledger(result, bill))
    assert (planned["method"], planned["operation"]) == ("POST", "update")
    xero.send(bill, account, mappings=mappings, previous=ledger(result, bill), key="v2")
    assert json.loads(dumps(planned["body"])) == json.loads(dumps(last_sent().body))
    assert planned["body"]["Invoices"][0]["InvoiceID"] == result.external_id


# --- duplicate numbers ----------------------------------------------------------------------------


def test_a_number_taken_by_the_same_bill_is_reconciled(xero: Xero) -> None:
    bill = make_bill(10, amount="100")
    first = xero.send(bill, ACCOUNT, key="v1")
    # The ledger lost the first delivery: the next version arrives as a create.
    again = xero.send(make_bill(10, amount="175", version=2), ACCOUNT, key="v2")
    assert again.external_id == first.external_id
    assert again.created is False and again.state["reconciled"] is True
    (invoice,) = xero.documents()
    assert invoice["SubTotal"] == D("175.00")


def test_reconciling_a_number_with_a_comma_and_quotes(xero: Xero) -> None:
    number = 'INV,"77"'
    first = xero.send(make_bill(15, number=number), ACCOUNT, key="v1")
    again = xero.send(make_bill(15, number=number, amount="5", version=2), ACCOUNT, key="v2")
    assert again.external_id == first.external_id and again.number == number


def test_a_number_taken_by_another_bill_is_refused(xero: Xero) -> None:
    xero.send(make_bill(11), ACCOUNT, key="a")
    other_contact = xero.mappings(ACCOUNT, contact="Globex Corporation")
    with pytest.raises(DestinationValidationError, match="already belongs to another") as caught:
        xero.send(make_bill(12, number="INV-00011"), ACCOUNT, mappings=other_contact, key="b")
    assert caught.value.detail == "Invoice # must be unique."
    # Same contact, other date: still somebody else's invoice.
    with pytest.raises(DestinationValidationError, match="already belongs to another"):
        xero.send(make_bill(13, number="INV-00011", billDate="2026-02-02"), ACCOUNT, key="c")
    assert len(xero.documents()) == 1


def test_a_reconciled_invoice_that_was_paid(xero: Xero) -> None:
    first = xero.send(make_bill(14), ACCOUNT, key="v1")
    xero.emulator.mark_paid(xero.org.tenant_id, first.external_id)
    with pytest.raises(InvoiceAlreadyPaid, match="PAID"):
        xero.send(make_bill(14, amount="150", version=2), ACCOUNT, key="v2")


# --- errors ---------------------------------------------------------------------------------------


def test_updating_a_paid_or_voided_invoice(xero: Xero) -> None:
    bill = make_bill(20)
    paid = xero.send(bill, ACCOUNT, key="p")
    xero.emulator.mark_paid(xero.org.tenant_id, paid.external_id)
    with pytest.raises(InvoiceAlreadyPaid) as caught:
        xero.send(make_bill(20, version=2, amount="1"), ACCOUNT, previous=ledger(paid, bill))
    assert caught.value.status == "INVOICE_ALREADY_PAID"
    assert "cannot be edited as it has a payment" in str(caught.value)
    voided_bill = make_bill(21)
    voided = xero.send(voided_bill, ACCOUNT, key="v")
    xero.emulator.void(xero.org.tenant_id, voided.external_id)
    with pytest.raises(InvoiceAlreadyPaid, match="Invoice not of valid status for modification"):
        xero.send(make_bill(21, version=2), ACCOUNT, previous=ledger(voided, voided_bill))


def test_a_locked_period(xero: Xero) -> None:
    xero.emulator.lock_period(xero.org.tenant_id, date(2026, 2, 28))
    with pytest.raises(AccountingPeriodClosed) as caught:
        xero.send(make_bill(22), ACCOUNT)
    assert caught.value.status == "ACCOUNTING_PERIOD_CLOSED"
    assert caught.value.detail == (
        "The document date cannot be before the end of year lock date, currently set at "
        "28-Feb-2026."
    )


def test_unknown_tax_type_and_item_code_come_back_word_for_word(xero: Xero) -> None:
    with pytest.raises(DestinationValidationError) as tax:
        xero.send(make_bill(23), ACCOUNT, config={**CONFIG, "defaultTaxType": "XYZ"})
    assert tax.value.detail == (
        "The TaxType code 'XYZ' does not exist or cannot be used for this type of transaction."
    )
    assert tax.value.detail in str(tax.value)
    with pytest.raises(DestinationValidationError) as item:
        xero.send(make_bill(24), ACCOUNT, mappings=xero.mappings(ACCOUNT, **{"p-platform": "NOPE"}))
    assert item.value.detail == "Item code 'NOPE' is not valid."
    assert xero.documents() == []


def test_more_than_two_tracking_categories_are_refused_before_sending(xero: Xero) -> None:
    tracking = [
        {"name": "Region", "option": "UK"},
        {"name": "Department", "option": "Sales"},
        {"name": "Channel", "option": "Direct"},
    ]
    before = len(xero.emulator.captured)
    with pytest.raises(DestinationValidationError, match="at most 2"):
        xero.send(make_bill(25), ACCOUNT, config={**CONFIG, "trackingCategories": tracking})
    assert len(xero.emulator.captured) == before
    # Two are fine, and Xero resolves them.
    xero.send(make_bill(25), ACCOUNT, config={**CONFIG, "trackingCategories": tracking[:2]})
    assert [t["Option"] for t in xero.documents()[0]["LineItems"][0]["Tracking"]] == [
        "UK",
        "Sales",
    ]


def test_a_missing_contact_mapping_sends_nothing(xero: Xero) -> None:
    with pytest.raises(MissingMapping, match="Contact"):
        xero.send(make_bill(26), ACCOUNT, mappings=ResolvedMappings({}))


def test_rate_limited_by_the_minute(xero: Xero) -> None:
    xero.burn(60)
    with pytest.raises(RateLimited) as caught:
        xero.send(make_bill(30), ACCOUNT)
    assert caught.value.scope == "minute" and 0 < caught.value.retry_after <= 60
    xero.shared.clock.advance(61)
    assert xero.send(make_bill(30), ACCOUNT).created


def test_rate_limited_by_the_day() -> None:
    clock = ManualClock()
    emulator = XeroEmulator(clock, daily_cap=2)
    org = emulator.add_organisation("Small")
    emulator.oauth.add_client("app", "s3cret")
    with (
        emulator.start() as server,
        httpx.Client(base_url=server.url, timeout=5) as http,
        httpx.Client(timeout=5) as api,
    ):
        _, tokens = consent_and_exchange(http)
        connection = Connection(
            destination="xero",
            tenant_id=org.tenant_id,
            access_token=Secret(tokens["access_token"]),
            http=api,
            api_base_url=server.url + "/api.xro/2.0",
        )
        client = XeroClient(connection)
        client.list_items()
        client.list_accounts()
        assert client.rate_limits is not None and client.rate_limits.day_remaining == 0
        with pytest.raises(RateLimited) as caught:
            client.list_tax_rates()
        assert caught.value.scope == "day" and caught.value.retry_after == 86_400


def test_the_client_does_not_send_when_the_minute_is_spent(xero: Xero) -> None:
    xero.burn(59)
    client = XeroClient(xero.connection())
    client.list_branding_themes()
    status = client.rate_limits
    assert status is not None and status.minute_remaining == 0
    assert status.day_remaining == 4940 and status.app_minute_remaining is not None
    refused_before = sum(xero.emulator.rate_limited.values())
    with pytest.raises(RateLimited) as caught:
        client.list_items()
    assert caught.value.scope == "minute" and 0 < caught.value.retry_after <= 60
    assert sum(xero.emulator.rate_limited.values()) == refused_before  # nothing was sent


def test_the_limits_xero_reports_reach_the_core(xero: Xero) -> None:
    if "report_limit" not in attrs.fields_dict(Connection):
        pytest.skip("this core's Connection takes no limit reports")
    reported: list[tuple[str, int]] = []
    connection = attrs.evolve(
        xero.connection(), report_limit=lambda scope, left: reported.append((scope, left))
    )
    XeroClient(connection).list_branding_themes()
    assert reported == [("minute", 59), ("day", 4999), reported[2]]
    assert reported[2][0] == "appminute"


def test_an_expired_token_and_a_lost_connection(xero: Xero) -> None:
    _, tokens = consent_and_exchange(xero.shared.http, emulator_organisations=xero.org.tenant_id)
    xero.emulator.oauth.expire_access_tokens()
    with pytest.raises(TokenExpired) as expired:
        xero.send(make_bill(31), ACCOUNT, connection=xero.connection(token=tokens["access_token"]))
    assert tokens["access_token"] not in str(expired.value)
    _, fresh = consent_and_exchange(xero.shared.http, emulator_organisations=xero.org.tenant_id)
    with pytest.raises(AuthenticationFailed, match="reconnect"):
        xero.send(
            make_bill(31),
            ACCOUNT,
            connection=xero.connection(tenant=xero.other.tenant_id, token=fresh["access_token"]),
        )


def test_server_errors_and_timeouts_are_transient(xero: Xero) -> None:
    xero.shared.plan.script("error")
    with pytest.raises(TransientError, match="HTTP 50"):
        xero.send(make_bill(32), ACCOUNT)
    xero.shared.plan.script("timeout")
    with httpx.Client(timeout=0.2) as impatient:
        connection = attrs.evolve(xero.connection(), http=impatient)
        with pytest.raises(TransientError, match="in time"):
            xero.send(make_bill(32), ACCOUNT, connection=connection)
    assert xero.documents() == []


# --- send_bills -------------------------------------------------------------------------------------


def delivery(xero: Xero, bill: Bill, previous: LedgerEntry | None = None, **kw: Any) -> Delivery:
    return Delivery(
        key=f"d-{bill.id}-{bill.version}",
        bill=bill,
        account=kw.get("account", ACCOUNT),
        config=kw.get("config", CONFIG),
        mappings=kw.get("mappings", xero.mappings(ACCOUNT)),
        previous=previous,
        idempotency_key=f"ik-{bill.id}-{bill.version}",
    )


def send_bills(xero: Xero, deliveries: Sequence[Delivery]) -> Sequence[Any]:
    outcomes: Sequence[Any] = hooks.send_bills(
        destination="xero",
        connection=xero.connection(),
        deliveries=deliveries,
        idempotency_key=batch_idempotency_key(d.idempotency_key for d in deliveries),
    )
    return outcomes


def test_send_bills_120_bills_in_3_requests(xero: Xero) -> None:
    bills = [make_bill(n, amount=str(100 + n)) for n in range(120)]
    bad = 57
    deliveries = [
        delivery(
            xero,
            bill,
            mappings=xero.mappings(ACCOUNT, **({"p-platform": "NOPE"} if n == bad else {})),
        )
        for n, bill in enumerate(bills)
    ]
    before = xero.emulator.requests["PUT /Invoices"]
    outcomes = send_bills(xero, deliveries)
    assert xero.emulator.requests["PUT /Invoices"] - before == 3
    assert len(outcomes) == 120
    refused = outcomes[bad]
    assert isinstance(refused, DestinationValidationError)
    assert refused.detail == "Item code 'NOPE' is not valid."
    results = [o for n, o in enumerate(outcomes) if n != bad]
    assert all(isinstance(r, SendResult) and r.created for r in results)
    assert [r.number for r in results] == [f"INV-{n:05d}" for n in range(120) if n != bad]
    assert len({r.external_id for r in results}) == 119
    totals = {d["InvoiceNumber"]: d["SubTotal"] for d in xero.documents()}
    assert len(totals) == 119 and totals["INV-00042"] == D("142.00")
    sizes = [
        len(c.body["Invoices"]) for c in xero.emulator.captured if c.tenant_id == xero.org.tenant_id
    ]
    assert sizes == [50, 50, 20]


def test_send_bills_groups_creates_updates_and_credit_notes(xero: Xero) -> None:
    existing_bill = make_bill(200)
    existing = xero.send(existing_bill, ACCOUNT, key="x")
    credit = make_bill(
        201,
        lines=[
            {
                "lineItemType": "CREDIT_MEMO",
                "quantity": 1,
                "averageUnitPrice": -5,
                "subtotal": -5,
                "productId": "p-platform",
            }
        ],
    )
    deliveries = [
        delivery(xero, make_bill(202)),
        delivery(
            xero, make_bill(200, amount="300", version=2), previous=ledger(existing, existing_bill)
        ),
        delivery(xero, credit),
        delivery(xero, make_bill(203), mappings=ResolvedMappings({})),
        delivery(xero, make_bill(204)),
    ]
    outcomes = send_bills(xero, deliveries)
    created, updated, note, missing, created_too = outcomes
    assert isinstance(created, SendResult) and created.created
    assert isinstance(updated, SendResult) and not updated.created
    assert updated.external_id == existing.external_id
    assert isinstance(note, SendResult) and note.state["kind"] == "CreditNote"
    assert isinstance(missing, MissingMapping)
    assert isinstance(created_too, SendResult)
    requests = [
        (c.method, c.path.rsplit("/", 1)[-1], len(c.body[c.path.rsplit("/", 1)[-1]]))
        for c in xero.emulator.captured
        if c.tenant_id == xero.org.tenant_id
    ][1:]
    assert requests == [("PUT", "Invoices", 2), ("POST", "Invoices", 1), ("PUT", "CreditNotes", 1)]
    assert send_bills(xero, []) == []


def test_send_bills_keys_each_request_from_the_cores_batch_key(xero: Xero) -> None:
    writes: list[httpx.Request] = []
    replayed: list[bool] = []

    def request_hook(request: httpx.Request) -> None:
        if request.method in ("PUT", "POST"):
            writes.append(request)

    def response_hook(response: httpx.Response) -> None:
        if response.request.method in ("PUT", "POST"):
            replayed.append(response.headers.get("Idempotent-Replayed") == "true")

    existing_bill = make_bill(700)
    existing = xero.send(existing_bill, ACCOUNT, key="x")
    deliveries = [
        delivery(xero, make_bill(701)),
        delivery(xero, make_bill(700, amount="300", version=2), ledger(existing, existing_bill)),
        delivery(xero, make_bill(702)),
    ]
    key = batch_idempotency_key(d.idempotency_key for d in deliveries)
    event_hooks = {"request": [request_hook], "response": [response_hook]}
    with httpx.Client(timeout=5, event_hooks=event_hooks) as watched:
        connection = attrs.evolve(xero.connection(), http=watched)

        def send() -> Sequence[Any]:
            outcomes: Sequence[Any] = hooks.send_bills(
                destination="xero",
                connection=connection,
                deliveries=deliveries,
                idempotency_key=key,
            )
            return outcomes

        first = send()
        # One request per endpoint and method, each keyed from the core's key and its body.
        assert [(r.method, r.headers["Idempotency-Key"]) for r in writes] == [
            ("PUT", idempotency_key(key, "batch-create-Invoices", writes[0].content)),
            ("POST", idempotency_key(key, "batch-update-Invoices", writes[1].content)),
        ]
        # The same batch again (its outcome was unknown to the core): Xero replays both.
        again = send()
    assert [r.headers["Idempotency-Key"] for r in writes[2:]] == [
        r.headers["Idempotency-Key"] for r in writes[:2]
    ]
    assert replayed == [False, False, True, True]
    assert [o.external_id for o in again] == [o.external_id for o in first]
    assert len(xero.documents()) == 3


def test_send_bills_reconciles_a_duplicate_in_a_batch(xero: Xero) -> None:
    first = xero.send(make_bill(300), ACCOUNT, key="lost-ledger")
    outcomes = send_bills(xero, [delivery(xero, make_bill(300, amount="9", version=2))])
    (again,) = outcomes
    assert isinstance(again, SendResult)
    assert again.external_id == first.external_id and again.state["reconciled"] is True


def test_send_bills_when_the_first_request_is_refused(xero: Xero) -> None:
    xero.burn(60)
    with pytest.raises(RateLimited):
        send_bills(xero, [delivery(xero, make_bill(400))])


def test_send_bills_keeps_what_was_delivered_when_a_later_request_is_refused(xero: Xero) -> None:
    xero.burn(58)
    bills = [make_bill(500 + n) for n in range(120)]
    outcomes = send_bills(xero, [delivery(xero, b) for b in bills])
    delivered = [o for o in outcomes if isinstance(o, SendResult)]
    refused = [o for o in outcomes if isinstance(o, RateLimited)]
    assert len(delivered) == 100 and len(refused) == 20
    assert all(isinstance(o, SendResult) for o in outcomes[:100])
    assert refused[0].scope == "minute"
    assert len(xero.documents()) == 100


# --- client pieces ------------------------------------------------------------------------------------


def test_idempotency_keys() -> None:
    body = json.dumps({"Invoices": [{"Type": "ACCREC"}]}).encode()
    key = idempotency_key("6b1d3f0e-2c4a-4f0b-9a51-0f1e2d3c4b5a", "create-Invoices", body)
    assert key.startswith("billbridge:create-Invoices:6b1d3f0e") and len(key) <= 128
    assert key == idempotency_key("6b1d3f0e-2c4a-4f0b-9a51-0f1e2d3c4b5a", "create-Invoices", body)
    assert key != idempotency_key("6b1d3f0e-2c4a-4f0b-9a51-0f1e2d3c4b5a", "create-Invoices", b"{}")
    assert key != idempotency_key("6b1d3f0e-2c4a-4f0b-9a51-0f1e2d3c4b5a", "update-Invoices", body)
    long = idempotency_key("x" * 300, "create-CreditNotes", body)
    assert len(long) <= 128 and long != idempotency_key("y" * 300, "create-CreditNotes", body)


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        (["Invoice # must be unique."], DuplicateNumber),
        (["Credit Note # must be unique."], DuplicateNumber),
        (
            ["The document date cannot be before the period lock date, currently set at x."],
            AccountingPeriodClosed,
        ),
        (["Invoice not of valid status for modification"], InvoiceAlreadyPaid),
        (
            ["This document cannot be edited as it has a payment or credit note allocated to it."],
            InvoiceAlreadyPaid,
        ),
        (
            ["Item code 'X' is not valid.", "Account code '1' is not a valid code"],
            DestinationValidationError,
        ),
    ],
)
def test_element_errors_are_classified(messages: list[str], expected: type[Exception]) -> None:
    result = ElementResult(0, "ERROR", {"InvoiceNumber": "INV-1"}, tuple(messages))
    error = element_error(result, "invoice INV-1")
    assert type(error) is expected
    assert all(m in str(error) for m in messages)


def test_rate_limit_status_blocks_only_within_the_minute() -> None:
    headers = httpx.Headers({"X-MinLimit-Remaining": "0", "X-DayLimit-Remaining": "10"})
    status = RateLimitStatus.from_headers(headers, observed_at=100.0)
    assert status is not None and status.day_remaining == 10
    assert status.app_minute_remaining is None
    assert status.blocked(110.0) == ("minute", 50.0)
    assert status.blocked(160.0) is None
    app = RateLimitStatus(5, 3, 0, 0.0)
    assert app.blocked(1.0) == ("appminute", 59.0)
    assert RateLimitStatus.from_headers(httpx.Headers({}), 0.0) is None


def test_document_urls() -> None:
    assert document_url("Invoice", "abc").endswith("View.aspx?InvoiceID=abc")
    assert document_url("CreditNote", "abc").endswith("ViewCreditNote.aspx?creditNoteID=abc")


# --- the client against scripted answers ------------------------------------------------------------


def scripted(
    *answers: httpx.Response,
) -> tuple[XeroClient, list[httpx.Request], httpx.Client]:
    """A client whose requests get ``answers`` in turn (no server), and the requests it sent."""
    queue = list(answers)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return queue.pop(0)

    http = httpx.Client(transport=httpx.MockTransport(handler))
    connection = Connection(
        destination="xero",
        tenant_id="tenant-1",
        access_token=Secret("secret-token"),
        http=http,
        api_base_url="https://api.xero.example/api.xro/2.0",
    )
    return XeroClient(connection), seen, http


ELEMENT = {"Type": "ACCREC", "InvoiceNumber": "INV-1"}


def test_a_400_listing_every_element_becomes_one_error_each() -> None:
    refused = {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": "A validation exception occurred",
        "Elements": [
            {**ELEMENT, "ValidationErrors": [{"Message": "Invoice # must be unique."}]},
            {**ELEMENT, "ValidationErrors": [{"Message": "Item code 'X' is not valid."}]},
        ],
    }
    client, seen, http = scripted(httpx.Response(400, json=refused))
    with http:
        results = client.create_invoices([ELEMENT, ELEMENT], "key")
    assert [r.errors for r in results] == [
        ("Invoice # must be unique.",),
        ("Item code 'X' is not valid.",),
    ]
    assert all(not r.ok for r in results)
    (request,) = seen
    assert request.headers["xero-tenant-id"] == "tenant-1"
    assert request.headers["Authorization"] == "Bearer secret-token"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Idempotency-Key"] == "key"
    assert request.url.params["summarizeErrors"] == "false"


def test_whole_request_refusals_are_mapped() -> None:
    partial = {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Elements": [{"ValidationErrors": [{"Message": "Contact is archived."}]}],
    }
    client, _, http = scripted(
        httpx.Response(400, json=partial),
        httpx.Response(400, json={"Title": "Bad Request", "Detail": "Idempotency-Key too long"}),
        httpx.Response(413, text="too big"),
        httpx.Response(429, headers={"X-Rate-Limit-Problem": "concurrent"}),
        httpx.Response(502, text="<html>bad gateway</html>"),
        httpx.Response(404, json={"Detail": "The resource you're looking for cannot be found"}),
        httpx.Response(200, json={"Invoices": []}),
        httpx.Response(200, text="not json"),
        httpx.Response(418, text="teapot"),
    )
    with http:
        with pytest.raises(DestinationValidationError, match=r"Contact is archived\.") as partly:
            client.update_invoices([ELEMENT, ELEMENT], "k")
        assert partly.value.detail == "Contact is archived."
        with pytest.raises(DestinationValidationError, match="Idempotency-Key too long"):
            client.create_credit_notes([ELEMENT], "k")
        with pytest.raises(DestinationValidationError, match=r"3\.5 MB"):
            client.update_credit_notes([ELEMENT], "k")
        with pytest.raises(RateLimited) as limited:
            client.create_invoices([ELEMENT], "k")
        assert limited.value.scope == "concurrent" and limited.value.retry_after == 60
        with pytest.raises(TransientError, match="HTTP 502"):
            client.list_items()
        assert client.get_document("Invoice", "missing") is None
        with pytest.raises(TransientError, match="1 sent"):
            client.create_invoices([ELEMENT], "k")
        with pytest.raises(TransientError, match="not JSON"):
            client.list_accounts()
        with pytest.raises(PermanentError, match="HTTP 418"):
            client.list_tax_rates()


def test_the_client_refuses_what_xero_would() -> None:
    client, seen, http = scripted()
    with http:
        with pytest.raises(ValueError, match="at most 50"):
            client.create_invoices([ELEMENT] * 51, "k")
        with pytest.raises(ValueError, match="128"):
            client.create_invoices([ELEMENT], "k" * 129)
        huge = {**ELEMENT, "Reference": "x" * 3_500_000}
        with pytest.raises(DestinationValidationError, match=r"3\.5 MB"):
            client.create_invoices([huge], "k")
        assert client.create_invoices([], "k") == []
    assert seen == []


def test_send_bills_splits_large_bodies_by_size(xero: Xero) -> None:
    long_text = "x" * 3900
    lines = [
        {
            "lineItemType": "USAGE",
            "description": f"{n} {long_text}",
            "quantity": 1,
            "averageUnitPrice": 1,
            "subtotal": 1,
            "productId": "p-api",
        }
        for n in range(300)
    ]
    bills = [make_bill(600 + n, lines=lines) for n in range(4)]
    outcomes = send_bills(xero, [delivery(xero, b) for b in bills])
    assert all(isinstance(o, SendResult) for o in outcomes)
    sizes = [
        len(c.body["Invoices"]) for c in xero.emulator.captured if c.tenant_id == xero.org.tenant_id
    ]
    # Each bill is about 1.2 MB: two fit under 3.5 MB, a third would not.
    assert sizes == [2, 2]


# --- tax -------------------------------------------------------------------------------------------

TAX_LINES = [
    {
        "lineItemType": "STANDING_CHARGE",
        "description": "Platform",
        "quantity": 1,
        "averageUnitPrice": "100.00",
        "subtotal": "100.00",
        "productId": "p-platform",
    },
    {
        "lineItemType": "USAGE",
        "description": "Events",
        "quantity": 1,
        "averageUnitPrice": "40.00",
        "subtotal": "40.00",
        "productId": "p-events",
    },
]


def tax_config(amounts: str, rate: str = "20") -> dict[str, Any]:
    return {
        **CONFIG,
        "lineAmountTypes": amounts,
        "taxTypesByLineType": {"USAGE": "RROUTPUT"},
        "taxRates": [
            {"taxType": "OUTPUT2", "ratePercent": rate},
            {"taxType": "RROUTPUT", "ratePercent": "5"},
        ],
    }


@pytest.mark.parametrize(
    ("amounts", "tax", "total"),
    [
        # 100.00 at 20 % and 40.00 at 5 %, each line's tax rounded.
        ("Exclusive", "22.00", "162.00"),
        ("Inclusive", "18.57", "140.00"),
        ("NoTax", "0.00", "140.00"),
    ],
)
def test_the_preview_shows_the_total_xero_then_computes(
    xero: Xero, amounts: str, tax: str, total: str
) -> None:
    bill = make_bill(31, lines=TAX_LINES)
    config = tax_config(amounts)
    planned = hooks.preview_bill(
        destination="xero",
        bill=bill,
        account=ACCOUNT,
        config=config,
        mappings=xero.mappings(ACCOUNT),
        previous=None,
    )
    assert planned["totals"] == {
        "currency": "GBP",
        "bill": "140.00",
        "lines": "140.00",
        "tax": tax,
        "destination": total,
        "amounts": amounts,
        "unknown": [],
    }
    element = planned["body"]["Invoices"][0]
    assert [li["TaxType"] for li in element["LineItems"]] == ["OUTPUT2", "RROUTPUT"]
    assert element["LineAmountTypes"] == amounts
    result = xero.send(bill, ACCOUNT, config=config)
    (invoice,) = xero.documents()
    # What Xero computed from its own rates is what the preview said.
    assert (invoice["TotalTax"], invoice["Total"]) == (D(tax), D(total))
    assert result.state["totals"]["destination"] == total
    assert "notes" not in result.state


def test_a_rate_in_the_panel_that_xero_does_not_have_is_noted(xero: Xero) -> None:
    result = xero.send(
        make_bill(32, lines=TAX_LINES), ACCOUNT, config=tax_config("Exclusive", "17.5")
    )
    assert result.state["notes"] == [
        "Xero totals invoice INV-00032 (bill bill-32) at 162.00 GBP, but billbridge expected "
        "159.50 (tax 19.50 at the panel's rates added to the lines' 140.00): check the tax rates "
        "in the panel (taxRates) against the rates in Xero"
    ]


def test_lines_without_a_tax_type_leave_the_expected_total_to_xero(xero: Xero) -> None:
    config = {"defaultAccountCode": "200"}
    planned = hooks.preview_bill(
        destination="xero",
        bill=make_bill(33),
        account=ACCOUNT,
        config=config,
        mappings=xero.mappings(ACCOUNT),
        previous=None,
    )
    assert (planned["totals"]["tax"], planned["totals"]["destination"]) == (None, None)
    assert planned["totals"]["unknown"] == [
        "line ('Platform for bill 33') has no tax code: Xero applies the item's or "
        "account's own tax type"
    ]


# --- a bill whose total changes sign ------------------------------------------------------------

REFUND = {
    "lineItemType": "CREDIT_MEMO",
    "description": "Refund",
    "quantity": 1,
    "averageUnitPrice": "-150",
    "subtotal": "-150",
    "productId": "p-platform",
}
AUTHORISED = {**CONFIG, "invoiceStatus": "AUTHORISED"}


def credited(n: int, version: int) -> Bill:
    """Bill ``n`` with its 100.00 charge and a refund of 150.00: it totals -50.00."""
    charge = {
        "lineItemType": "STANDING_CHARGE",
        "description": f"Platform for bill {n}",
        "quantity": 1,
        "averageUnitPrice": "100",
        "subtotal": "100",
        "productId": "p-platform",
    }
    return make_bill(n, lines=[charge, REFUND], version=version)


def voids(xero: Xero) -> list[Any]:
    """The status changes the plugin sent (voids and deletes), as Xero received them."""
    return [
        c.body
        for c in xero.emulator.captured
        if c.tenant_id == xero.org.tenant_id
        and c.method == "POST"
        and any(
            set(doc) <= {"InvoiceID", "CreditNoteID", "Status"}
            for docs in c.body.values()
            for doc in docs
        )
    ]


@pytest.mark.parametrize(
    ("status", "after"), [("AUTHORISED", "VOIDED"), ("SUBMITTED", "VOIDED"), ("DRAFT", "DELETED")]
)
def test_an_invoice_whose_bill_became_a_credit_is_replaced(
    xero: Xero, status: str, after: str
) -> None:
    config = {**CONFIG, "invoiceStatus": status}
    bill = make_bill(41)
    first = xero.send(bill, ACCOUNT, config=config, key="v1")
    result = xero.send(
        credited(41, 2), ACCOUNT, config=config, previous=ledger(first, bill), key="v2"
    )
    (invoice,) = xero.documents()
    assert invoice["Status"] == after and invoice["InvoiceID"] == first.external_id
    (note,) = xero.documents("CreditNote")
    assert (note["CreditNoteID"], note["CreditNoteNumber"], note["Total"]) == (
        result.external_id,
        "INV-00041",
        D("60.00"),
    )
    assert result.state["kind"] == "CreditNote" and result.created
    assert result.state["voided"] == [
        {
            "kind": "Invoice",
            "id": first.external_id,
            "number": "INV-00041",
            "status": after,
            "billVersion": 1,
        }
    ]
    done = "was voided" if after == "VOIDED" else "was deleted (it was a draft)"
    assert result.state["notes"] == [
        f"bill bill-41 version 2 totals -50.00 GBP, so it is now a credit note: Xero invoice "
        f"{first.external_id} (INV-00041), made for version 1, {done}, and credit note "
        f"{result.external_id} (INV-00041) replaces it"
    ]
    assert voids(xero) == [{"Invoices": [{"InvoiceID": first.external_id, "Status": after}]}]


def test_a_credit_note_whose_bill_became_a_charge_is_voided(xero: Xero) -> None:
    note = xero.send(credited(42, 1), ACCOUNT, config=AUTHORISED, key="v1")
    result = xero.send(
        make_bill(42, version=2), ACCOUNT, config=AUTHORISED, previous=ledger(note, credited(42, 1))
    )
    assert xero.documents("CreditNote")[0]["Status"] == "VOIDED"
    assert (result.state["kind"], result.number) == ("Invoice", "INV-00042")
    assert voids(xero) == [
        {"CreditNotes": [{"CreditNoteID": note.external_id, "Status": "VOIDED"}]}
    ]


def test_lost_answers_while_replacing_neither_void_nor_create_twice(xero: Xero) -> None:
    bill = make_bill(43)
    first = xero.send(bill, ACCOUNT, config=AUTHORISED, key="v1")
    previous = ledger(first, bill)
    plan = xero.shared.plan
    plan.methods = ("POST",)  # the void's answer is lost
    plan.script("lost")
    with pytest.raises(TransientError):
        xero.send(credited(43, 2), ACCOUNT, config=AUTHORISED, previous=previous, key="v2")
    plan.methods = ("PUT",)  # then the credit note's
    plan.script("lost")
    with pytest.raises(TransientError):
        xero.send(credited(43, 2), ACCOUNT, config=AUTHORISED, previous=previous, key="v2")
    plan.methods = ()
    result = xero.send(credited(43, 2), ACCOUNT, config=AUTHORISED, previous=previous, key="v2")
    assert len(voids(xero)) == 1
    (note,) = xero.documents("CreditNote")
    assert note["CreditNoteID"] == result.external_id


def test_a_paid_invoice_is_not_voided(xero: Xero) -> None:
    bill = make_bill(44)
    first = xero.send(bill, ACCOUNT, config=AUTHORISED, key="v1")
    xero.emulator.mark_paid(xero.org.tenant_id, first.external_id)
    with pytest.raises(InvoiceAlreadyPaid) as caught:
        xero.send(credited(44, 2), ACCOUNT, config=AUTHORISED, previous=ledger(first, bill))
    assert str(caught.value) == (
        f"Xero invoice {first.external_id} (INV-00044), made for version 1 of bill bill-44, is "
        "paid and cannot be voided; version 2 totals -50.00 GBP and would replace it with a "
        "credit note: settle the difference in Xero by hand"
    )
    assert xero.documents("CreditNote") == [] and voids(xero) == []


def test_a_number_kept_by_a_voided_invoice_is_not_reused(xero: Xero) -> None:
    bill = make_bill(45)
    first = xero.send(bill, ACCOUNT, config=AUTHORISED, key="v1")
    note = xero.send(credited(45, 2), ACCOUNT, config=AUTHORISED, previous=ledger(first, bill))
    with pytest.raises(DestinationValidationError) as caught:
        xero.send(
            make_bill(45, version=3),
            ACCOUNT,
            config=AUTHORISED,
            previous=ledger(note, credited(45, 2)),
        )
    assert str(caught.value) == (
        f"the number INV-00045 is still held by Xero invoice {first.external_id}, voided for "
        "version 1 (a voided document keeps its number): give the bill another number "
        "(invoiceNumberPrefix), or let Xero number it (invoiceNumberSource), then replay the run"
    )
    # Refused before anything changed: the credit note is still there, not voided.
    assert xero.documents("CreditNote")[0]["Status"] == "AUTHORISED"


def test_send_bills_replaces_a_document_among_the_batch(xero: Xero) -> None:
    bill = make_bill(46)
    first = xero.send(bill, ACCOUNT, config=AUTHORISED, key="v1")
    outcomes = send_bills(
        xero,
        [
            delivery(xero, credited(46, 2), ledger(first, bill), config=AUTHORISED),
            delivery(xero, make_bill(47), config=AUTHORISED),
        ],
    )
    replaced, created = outcomes
    assert isinstance(replaced, SendResult) and isinstance(created, SendResult)
    assert replaced.state["kind"] == "CreditNote"
    assert replaced.state["voided"][0]["id"] == first.external_id
    assert created.state["kind"] == "Invoice" and "voided" not in created.state


def test_the_preview_of_a_replacement_shows_the_void(xero: Xero) -> None:
    bill = make_bill(48)
    first = xero.send(bill, ACCOUNT, config=AUTHORISED, key="v1")
    planned = hooks.preview_bill(
        destination="xero",
        bill=credited(48, 2),
        account=ACCOUNT,
        config=AUTHORISED,
        mappings=xero.mappings(ACCOUNT),
        previous=ledger(first, bill),
    )
    assert (planned["operation"], planned["entity"], planned["method"]) == (
        "replace",
        "CreditNote",
        "PUT",
    )
    assert planned["replaces"] == {
        "entity": "Invoice",
        "id": first.external_id,
        "number": "INV-00048",
        "void": {
            "method": "POST",
            "path": "/api.xro/2.0/Invoices",
            "query": {"summarizeErrors": "false"},
            "body": {"Invoices": [{"InvoiceID": first.external_id, "Status": "VOIDED"}]},
        },
    }
