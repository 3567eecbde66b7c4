"""The QuickBooks plugin end to end, over real HTTP against the emulator.

The OAuth consent and code exchange are done with httpx in a fixture; every hook is then called
through a plugin registry exactly as the core calls it (keyword arguments, ``destination``
passed by the registry).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs
import httpx
import pytest
from billbridge_quickbooks import hooks
from billbridge_quickbooks.client import QuickBooksClient
from billbridge_quickbooks.emulator import Company, QuickBooksEmulator

from billbridge.domain.models import (
    Account,
    Bill,
    Credential,
    CredentialStatus,
    LedgerEntry,
    LineItem,
    Secret,
    dumps,
    loads,
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
    TenantChoice,
)
from billbridge.plugin.idempotency import batch_idempotency_key, derived_key
from billbridge.plugin.manager import PluginRegistry, load_plugins
from billbridge.testing.emulation.clock import ManualClock
from billbridge.testing.emulation.faults import FaultPlan
from billbridge.testing.emulation.server import RunningServer
from support import SAMPLES

D = Decimal
REDIRECT = "http://127.0.0.1:9/callback"


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


@attrs.define
class World:
    emulator: QuickBooksEmulator
    server: RunningServer
    clock: ManualClock
    company: Company
    http: httpx.Client
    token: str
    callback: dict[str, str]
    registry: PluginRegistry
    bill: Bill
    account: Account

    @property
    def realm(self) -> str:
        return self.company.realm_id

    def connection(
        self, *, token: str | None = None, http: httpx.Client | None = None
    ) -> Connection:
        return Connection(
            destination="quickbooks",
            tenant_id=self.realm,
            access_token=Secret(token or self.token),
            http=http or self.http,
            api_base_url=self.server.url,
        )

    def mappings(self, account: Account | None = None, **items: str) -> ResolvedMappings:
        account = account or self.account
        item = self.company.id_of
        entries = {
            ("Account", account.id, "Customer"): item("Customer", "Globex Corporation"),
            ("Product", "p-platform", "Item"): item("Item", "Platform"),
            ("Product", "p-events", "Item"): item("Item", "Events"),
            ("Product", "p-seats", "Item"): item("Item", "Seats"),
        }
        for product, name in items.items():
            entries[("Product", product, "Item")] = item("Item", name)
        return ResolvedMappings(entries)

    def send(
        self,
        bill: Bill | None = None,
        *,
        previous: LedgerEntry | None = None,
        key: str = "key-1",
        config: Mapping[str, Any] | None = None,
        mappings: ResolvedMappings | None = None,
        destination: str = "quickbooks",
        connection: Connection | None = None,
    ) -> SendResult:
        result: SendResult = self.registry.call(
            "send_bill",
            destination,
            connection=connection or self.connection(),
            bill=bill or self.bill,
            account=self.account,
            config=config or {},
            mappings=mappings if mappings is not None else self.mappings(),
            previous=previous,
            idempotency_key=key,
        )
        return result

    def invoice(self, result: SendResult) -> dict[str, Any]:
        return self.company.invoices[result.external_id]


def ledger(bill: Bill, result: SendResult) -> LedgerEntry:
    return LedgerEntry(
        integration_id="integration-1",
        bill_id=bill.id,
        bill_version=bill.version,
        external_id=result.external_id,
        updated_at=datetime.now(UTC),
        external_number=result.number,
        external_url=result.url,
        state=result.state,
    )


def version(bill: Bill, number: int, *, subtotal: str | None = None) -> Bill:
    """Another version of ``bill``; ``subtotal`` replaces the seats line's amount."""
    lines = bill.line_items
    if subtotal is not None:
        seats = next(li for li in lines if li.description == "Seats")
        changed = attrs.evolve(
            seats, subtotal=D(subtotal), quantity=D(1), average_unit_price=D(subtotal)
        )
        lines = tuple(changed if li is seats else li for li in lines)
    return attrs.evolve(bill, version=number, line_items=lines)


def basic() -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(b"app:s3cret").decode()}


@pytest.fixture
def world() -> Iterator[World]:
    clock = ManualClock(start=datetime(2026, 11, 1, tzinfo=UTC).timestamp())
    emulator = QuickBooksEmulator(clock, faults=FaultPlan(hang_seconds=0.5), limits=False)
    company = emulator.add_company(name="Test Company")
    emulator.oauth.add_client("app", "s3cret")
    with emulator.start() as server, httpx.Client(timeout=5) as http:
        consent = http.get(
            f"{server.url}/connect/oauth2",
            params={
                "client_id": "app",
                "redirect_uri": REDIRECT,
                "response_type": "code",
                "scope": "com.intuit.quickbooks.accounting",
                "state": "state-1",
            },
        )
        query = parse_qs(urlsplit(consent.headers["location"]).query)
        callback = {k: v[0] for k, v in query.items()}
        tokens = http.post(
            f"{server.url}/oauth2/v1/tokens/bearer",
            data={
                "grant_type": "authorization_code",
                "code": callback["code"],
                "redirect_uri": REDIRECT,
            },
            headers=basic(),
        ).json()
        registry = load_plugins(entry_points=False, extra=[("quickbooks", hooks)], blocked=())
        yield World(
            emulator=emulator,
            server=server,
            clock=clock,
            company=company,
            http=http,
            token=tokens["access_token"],
            callback=callback,
            registry=registry,
            bill=parse_bill(sample("bill-globex-us-2026-09.json")),
            account=parse_account(sample("account-globex-us.json")),
        )


# --- registration and configuration -----------------------------------------------------------


def test_destinations_and_hooks(world: World) -> None:
    registry = world.registry
    assert set(registry.destinations) == {"quickbooks", "quickbooks_sandbox"}
    production = registry.destination("quickbooks")
    assert production.api_base_url == "https://quickbooks.api.intuit.com"
    assert (
        registry.destination("quickbooks_sandbox").api_base_url
        == "https://sandbox-quickbooks.api.intuit.com"
    )
    assert production.limits.batch_size == 30 and production.limits.requests_per_minute == 500
    assert production.oauth is not None and production.oauth.token_url.endswith(
        "/oauth2/v1/tokens/bearer"
    )
    for hook in (
        "authenticate",
        "list_external_entities",
        "send_bill",
        "send_bills",
        "validate_config",
    ):
        assert registry.has_hook("quickbooks", hook), hook
    errors = registry.call(
        "validate_config",
        "quickbooks",
        config={
            "accountManagerEmailCustomField": "sam@x.example",
            "bccInvoiceEmail": "a" * 95 + "@x.example",
        },
    )
    assert {e.path for e in errors} == {"/accountManagerEmailCustomField", "/bccInvoiceEmail"}
    assert (
        registry.call(
            "validate_config",
            "quickbooks",
            config={"accountManagerEmailCustomField": "accountManagerEmail"},
        )
        == []
    )


# --- authenticate --------------------------------------------------------------------------------


def credential() -> Credential:
    return Credential(
        id="cred-1",
        name="QBO",
        destination="quickbooks",
        status=CredentialStatus.INCOMPLETE,
        created_at=datetime.now(UTC),
    )


def authenticate(
    world: World, params: Mapping[str, str], token: str | None = None
) -> list[TenantChoice]:
    result: list[TenantChoice] = world.registry.call(
        "authenticate",
        "quickbooks",
        credential=credential(),
        callback=OAuthCallback(params=params, access_token=Secret(token or world.token)),
        http=world.http,
        api_base_url=world.server.url,
    )
    return result


def test_authenticate_names_the_realm(world: World) -> None:
    choices = authenticate(world, world.callback)
    assert [(c.tenant_id, c.name) for c in choices] == [(world.realm, "Test Company")]
    assert choices[0].data["country"] == "US"
    with pytest.raises(AuthenticationFailed, match="realmId"):
        authenticate(world, {"code": "x", "state": "y"})
    with pytest.raises(AuthenticationFailed) as caught:
        authenticate(world, world.callback, token="not-a-token")
    assert "not-a-token" not in str(caught.value)
    # QuickBooks briefly down: the consent still completes, without the name.
    world.emulator.faults.script("error")
    assert authenticate(world, world.callback) == [
        TenantChoice(tenant_id=world.realm, name=None, data={"realmId": world.realm})
    ]


# --- pickers -----------------------------------------------------------------------------------


def listing(world: World, table: str, search: str | None = None, cursor: str | None = None) -> Any:
    return world.registry.call(
        "list_external_entities",
        "quickbooks",
        connection=world.connection(),
        table=table,
        search=search,
        cursor=cursor,
    )


def test_list_customers_pages_and_searches(world: World) -> None:
    for n in range(150):
        world.company.add_customer(f"Bulk {n:03d}")
    first = listing(world, "Customer")
    assert len(first.items) == 100 and first.next_cursor == "101"
    second = listing(world, "Customer", cursor=first.next_cursor)
    assert len(second.items) == 57 and second.next_cursor is None  # 7 active seeds + 150
    names = [e.name for e in first.items + second.items]
    assert names == sorted(names, key=str.lower) and "Old Customer Inc" not in names
    found = listing(world, "Customer", search="bulk 00")
    assert [e.name for e in found.items] == [f"Bulk {n:03d}" for n in range(10)]
    amy = listing(world, "Customer", search="Amy's")
    assert [(e.id, e.name) for e in amy.items] == [
        (world.company.id_of("Customer", "Amy's Bird Sanctuary"), "Amy's Bird Sanctuary")
    ]
    assert amy.items[0].extra["CurrencyRef"] == "USD"
    assert listing(world, "Customer", search="nobody at all").items == ()


def test_list_items_accounts_tax_codes_and_terms(world: World) -> None:
    items = listing(world, "Item")
    assert "Legacy Plan" not in [e.name for e in items.items]
    assert {e.name: e.extra["Type"] for e in items.items}["Platform"] == "Service"
    accounts = listing(world, "Account", search="receivable")
    assert [(e.name, e.extra["AccountType"]) for e in accounts.items] == [
        ("Accounts Receivable (A/R)", "Accounts Receivable")
    ]
    assert {e.id for e in listing(world, "TaxCode").items} >= {"TAX", "NON"}
    terms = listing(world, "Term", search="net")
    assert [(e.name, e.extra["DueDays"]) for e in terms.items] == [
        ("Net 15", 15),
        ("Net 30", 30),
        ("Net 60", 60),
    ]
    with pytest.raises(DestinationValidationError, match="Spaceship"):
        listing(world, "Spaceship")
    with pytest.raises(DestinationValidationError, match="cursor"):
        listing(world, "Item", cursor="page-two")


# --- send_bill -----------------------------------------------------------------------------------


def test_send_bill_creates_the_invoice(world: World) -> None:
    result = world.send(
        config={"defaultTaxCode": "TAX", "salesTerm": world.company.id_of("Term", "Net 30")}
    )
    invoice = world.invoice(result)
    assert result.created and result.number == "INV-001042"
    assert result.url == f"https://app.qbo.intuit.com/app/invoice?txnId={result.external_id}"
    assert dict(result.state) == {
        "SyncToken": "0",
        "entity": "Invoice",
        # TaxCodeRef TAX carries no rate of its own in a US company: no tax.
        "totals": {
            "currency": "USD",
            "bill": "930.00",
            "lines": "930.00",
            "tax": "0",
            "destination": "930.00",
        },
    }
    assert invoice["TotalAmt"] == D("930.00") and invoice["CurrencyRef"]["value"] == "USD"
    assert invoice["CustomerRef"]["name"] == "Globex Corporation"
    assert invoice["BillEmail"] == {"Address": "payables@globex.example"}
    assert invoice["SalesTermRef"]["value"] == world.company.id_of("Term", "Net 30")
    assert invoice["PrivateNote"].startswith(f"billbridge bill {world.bill.id} version 1")
    assert world.company.created["Invoice"] == 1
    assert set(world.emulator.minor_versions) == {"75"}


def test_the_bills_unit_price_goes_out_as_it_is(world: World) -> None:
    lines = (
        LineItem(
            line_item_type="USAGE",
            sequence_number=1,
            description="Events",
            quantity=D("12.8205"),
            average_unit_price=D("14.50"),
            subtotal=D("185.90"),
            product_id="p-events",
        ),
        LineItem(
            line_item_type="USAGE",
            sequence_number=2,
            description="Seats",
            quantity=D("3"),
            average_unit_price=D("0.001"),
            subtotal=D("0.003"),
            product_id="p-seats",
        ),
    )
    result = world.send(attrs.evolve(world.bill, line_items=lines))
    sales = [
        line["SalesItemLineDetail"]
        for line in world.invoice(result)["Line"]
        if line["DetailType"] == "SalesItemLineDetail"
    ]
    # QuickBooks accepted them (Amount = Qty × UnitPrice to the cent), with the bill's prices.
    assert [(str(d["Qty"]), str(d["UnitPrice"])) for d in sales] == [
        ("12.8205", "14.5"),
        ("3", "0.001"),
    ]


def test_a_retried_create_returns_the_same_invoice(world: World) -> None:
    first = world.send(key="bill-1-v1")
    again = world.send(key="bill-1-v1")
    assert again.external_id == first.external_id
    assert world.company.created["Invoice"] == 1


def test_a_lost_answer_is_recovered_by_the_idempotency_key(world: World) -> None:
    world.emulator.faults.script("lost")
    with pytest.raises(TransientError):
        world.send(key="lost-key")
    assert world.company.created["Invoice"] == 1  # QuickBooks made it; we never heard
    result = world.send(key="lost-key")
    assert world.company.created["Invoice"] == 1
    assert result.external_id == next(iter(world.company.invoices))


def test_a_new_version_updates_the_same_invoice(world: World) -> None:
    first = world.send(key="v1")
    v2 = version(world.bill, 2, subtotal="200.00")
    second = world.send(v2, previous=ledger(world.bill, first), key="v2")
    assert second.external_id == first.external_id and not second.created
    assert second.state["SyncToken"] == "1"
    invoice = world.invoice(second)
    assert invoice["TotalAmt"] == D("950.00")
    assert "version 2" in invoice["PrivateNote"]
    assert (world.company.created["Invoice"], world.company.updated["Invoice"]) == (1, 1)
    # A ledger entry without a SyncToken: read it first.
    bare = attrs.evolve(ledger(v2, second), state={"entity": "Invoice"})
    third = world.send(version(world.bill, 3), previous=bare, key="v3")
    assert third.state["SyncToken"] == "2" and world.invoice(third)["TotalAmt"] == D("930.00")


def test_a_stale_sync_token_is_recovered(world: World) -> None:
    first = world.send(key="v1")
    # Someone edits the invoice in QuickBooks in between.
    QuickBooksClient(world.connection()).sparse_update(
        "Invoice", first.external_id, "0", {"PrivateNote": "edited by a person"}
    )
    reads = world.emulator.calls["read:Invoice"]
    second = world.send(version(world.bill, 2), previous=ledger(world.bill, first), key="v2")
    assert second.state["SyncToken"] == "2"
    assert world.emulator.calls["read:Invoice"] == reads + 1
    assert "version 2" in world.invoice(second)["PrivateNote"]


def test_negative_bills_become_credit_memos(world: World) -> None:
    credit = LineItem(
        line_item_type="CREDIT_MEMO",
        sequence_number=9,
        description="Refund",
        quantity=D(1),
        average_unit_price=D(-1000),
        subtotal=D(-1000),
        product_id="p-platform",
    )
    negative = attrs.evolve(world.bill, line_items=(*world.bill.line_items, credit))
    result = world.send(negative, destination="quickbooks_sandbox")
    memo = world.company.credit_memos[result.external_id]
    assert memo["TotalAmt"] == D("70.00") and memo["RemainingCredit"] == D("70.00")
    assert (
        result.url
        == f"https://app.sandbox.qbo.intuit.com/app/creditmemo?txnId={result.external_id}"
    )
    assert result.state["entity"] == "CreditMemo"


def test_duplicate_number_of_another_bill_is_refused(world: World) -> None:
    first = world.send(key="a")
    other = attrs.evolve(world.bill, id="someone-else")
    with pytest.raises(DestinationValidationError) as caught:
        world.send(other, key="b")
    message = str(caught.value)
    assert (
        f"invoice number INV-001042 already belongs to another invoice (Id {first.external_id})"
        in message
    )
    assert "Duplicate Document Number" in (caught.value.detail or "")
    assert world.company.created["Invoice"] == 1


def test_an_update_cannot_take_another_invoices_number(world: World) -> None:
    first = world.send(key="a")
    other = attrs.evolve(world.bill, id="bill-b", sequential_invoice_number="INV-B")
    second = world.send(other, key="b")
    renumbered = attrs.evolve(other, version=2, sequential_invoice_number="INV-001042")
    with pytest.raises(DestinationValidationError) as caught:
        world.send(renumbered, previous=ledger(other, second), key="c")
    assert f"already belongs to another invoice (Id {first.external_id})" in str(caught.value)
    assert world.invoice(second)["DocNumber"] == "INV-B"


def test_duplicate_number_of_the_same_bill_is_reconciled(world: World) -> None:
    first = world.send(key="first")
    # The ledger lost track: the same version again under another key adopts the invoice...
    same = world.send(key="second")
    assert (same.external_id, same.created, same.state["SyncToken"]) == (
        first.external_id,
        True,
        "0",
    )
    assert world.company.updated["Invoice"] == 0
    # ...and a later version updates it.
    later = world.send(version(world.bill, 2, subtotal="1.00"), key="third")
    assert later.external_id == first.external_id and later.state["SyncToken"] == "1"
    assert world.invoice(later)["TotalAmt"] == D("751.00")
    assert world.company.created["Invoice"] == 1


# --- refusals ------------------------------------------------------------------------------------


def test_expired_token_is_token_expired(world: World) -> None:
    world.emulator.oauth.expire_access_tokens()
    with pytest.raises(TokenExpired) as caught:
        world.send()
    assert world.token not in str(caught.value) and world.token not in (caught.value.detail or "")


def test_throttling_is_rate_limited(world: World) -> None:
    world.emulator.limits_enabled = True
    for _ in range(10):
        listing(world, "Term")
    with pytest.raises(RateLimited) as caught:
        world.send()
    assert (caught.value.retry_after, caught.value.scope) == (60.0, "minute")
    world.clock.advance(1)
    assert world.send().created


def test_paid_invoice_cannot_be_updated(world: World) -> None:
    first = world.send()
    world.emulator.mark_paid(world.realm, first.external_id)
    with pytest.raises(InvoiceAlreadyPaid) as caught:
        world.send(version(world.bill, 2), previous=ledger(world.bill, first), key="v2")
    assert caught.value.status == "INVOICE_ALREADY_PAID"


def test_closed_books(world: World) -> None:
    world.emulator.close_books(world.realm, "2026-10-31")
    with pytest.raises(AccountingPeriodClosed) as caught:
        world.send()
    assert caught.value.status == "ACCOUNTING_PERIOD_CLOSED"
    assert "closing date" in (caught.value.detail or "")


def test_inactive_item_and_ended_subscription(world: World) -> None:
    world.emulator.deactivate_item(world.realm, world.company.id_of("Item", "Seats"))
    with pytest.raises(DestinationValidationError, match="ItemRef") as caught:
        world.send()
    assert "610" in str(caught.value)
    world.emulator.end_subscription(world.realm)
    with pytest.raises(AuthenticationFailed, match="subscription"):
        world.send()


def test_server_errors_and_timeouts_are_transient(world: World) -> None:
    world.emulator.faults.script("error")
    with pytest.raises(TransientError):
        world.send()
    world.emulator.faults.script("timeout")
    with (
        httpx.Client(timeout=0.2) as impatient,
        pytest.raises(TransientError, match="no answer came in time"),
    ):
        world.send(connection=world.connection(http=impatient))
    assert world.company.created["Invoice"] == 0
    assert world.send().created


def test_missing_customer_mapping(world: World) -> None:
    with pytest.raises(MissingMapping, match="Globex Corporation"):
        world.send(mappings=ResolvedMappings({}))


# --- send_bills ----------------------------------------------------------------------------------


def delivery(
    world: World,
    bill: Bill,
    *,
    previous: LedgerEntry | None = None,
    mappings: ResolvedMappings | None = None,
) -> Delivery:
    return Delivery(
        key=f"{bill.id}:{bill.version}",
        bill=bill,
        account=world.account,
        config={},
        mappings=mappings if mappings is not None else world.mappings(),
        previous=previous,
        idempotency_key=f"{bill.id}-v{bill.version}",
    )


def numbered(world: World, n: int) -> Bill:
    return attrs.evolve(world.bill, id=f"bill-{n:03d}", sequential_invoice_number=f"B-{n:03d}")


def send_bills(
    world: World, deliveries: list[Delivery], connection: Connection | None = None
) -> list[Any]:
    result: list[Any] = world.registry.call(
        "send_bills",
        "quickbooks",
        connection=connection or world.connection(),
        deliveries=deliveries,
        idempotency_key=batch_idempotency_key(d.idempotency_key for d in deliveries),
    )
    return result


def test_send_bills_in_batches_of_thirty(world: World) -> None:
    # Five bills delivered before: their new versions are updates in the same batches.
    earlier = {n: world.send(numbered(world, n), key=f"early-{n}") for n in range(5)}
    # One of them was edited in QuickBooks since: its SyncToken is stale.
    QuickBooksClient(world.connection()).sparse_update(
        "Invoice", earlier[3].external_id, "0", {"PrivateNote": "typed"}
    )
    legacy = world.mappings(**{"p-seats": "Legacy Plan"})
    deliveries = []
    for n in range(65):
        bill = numbered(world, n)
        if n in earlier:
            deliveries.append(
                delivery(
                    world, version(bill, 2, subtotal="10.00"), previous=ledger(bill, earlier[n])
                )
            )
        elif n == 40:
            deliveries.append(delivery(world, bill, mappings=legacy))  # QuickBooks refuses: 610
        elif n == 50:
            deliveries.append(delivery(world, bill, mappings=ResolvedMappings({})))  # no customer
        else:
            deliveries.append(delivery(world, bill))
    batches = world.emulator.calls["batch"]
    outcomes = send_bills(world, deliveries)
    assert world.emulator.calls["batch"] - batches == 3
    assert len(outcomes) == 65
    for n, outcome in enumerate(outcomes):
        if n == 40:
            assert isinstance(outcome, DestinationValidationError) and "ItemRef" in str(outcome)
        elif n == 50:
            assert isinstance(outcome, MissingMapping)
        else:
            assert isinstance(outcome, SendResult), (n, outcome)
            assert outcome.number == f"B-{n:03d}"
            assert outcome.created == (n not in earlier)
    for n, result in earlier.items():
        updated = outcomes[n]
        assert updated.external_id == result.external_id
        assert world.invoice(updated)["TotalAmt"] == D("760.00")
    assert outcomes[3].state["SyncToken"] == "2"
    assert world.company.created["Invoice"] == 63

    # The same deliveries again (say the answer was lost): nothing is created twice.
    again = send_bills(world, [deliveries[n] for n in range(10, 20)])
    assert [o.external_id for o in again] == [outcomes[n].external_id for n in range(10, 20)]
    assert world.company.created["Invoice"] == 63


def test_send_bills_keys_each_request_from_the_cores_batch_key(world: World) -> None:
    batches: list[httpx.Request] = []

    def capture(request: httpx.Request) -> None:
        if request.url.path.endswith("/batch"):
            batches.append(request)

    deliveries = [delivery(world, numbered(world, n)) for n in range(35)]
    key = batch_idempotency_key(d.idempotency_key for d in deliveries)
    with httpx.Client(timeout=5, event_hooks={"request": [capture]}) as watched:
        first = send_bills(world, deliveries, connection=world.connection(http=watched))
        assert [len(loads(r.content)["BatchItemRequest"]) for r in batches] == [30, 5]
        # The core's key is the base of every request's requestid, bound to that body.
        request_ids = [r.url.params["requestid"] for r in batches]
        assert request_ids == [derived_key(key, r.content, limit=36) for r in batches]
        assert len(set(request_ids)) == 2
        # The core sends a batch whose outcome it does not know again, same members, same key:
        # QuickBooks answers with what it did the first time.
        replays = world.emulator.calls["replay"]
        again = send_bills(world, deliveries, connection=world.connection(http=watched))
    assert [r.url.params["requestid"] for r in batches[2:]] == request_ids
    assert world.emulator.calls["replay"] - replays == 2
    assert [o.external_id for o in again] == [o.external_id for o in first]
    assert world.company.created["Invoice"] == 35


def test_send_bills_reconciles_and_refuses_duplicate_numbers(world: World) -> None:
    mine = world.send(numbered(world, 1), key="solo")
    theirs = attrs.evolve(numbered(world, 2), id="not-ours", sequential_invoice_number="B-001")
    outcomes = send_bills(
        world, [delivery(world, version(numbered(world, 1), 2)), delivery(world, theirs)]
    )
    assert isinstance(outcomes[0], SendResult) and outcomes[0].external_id == mine.external_id
    assert outcomes[0].state["SyncToken"] == "1"
    assert isinstance(outcomes[1], DestinationValidationError)
    assert "already belongs to another invoice" in str(outcomes[1])


def test_send_bills_whole_request_failures_are_raised(world: World) -> None:
    deliveries = [delivery(world, numbered(world, n)) for n in range(3)]
    world.emulator.oauth.expire_access_tokens()
    with pytest.raises(TokenExpired):
        send_bills(world, deliveries)
    # A fresh consent's token, and the realm's ten requests of this second spent elsewhere.
    connection = world.connection(token=_new_token(world))
    world.emulator.limits_enabled = True
    for _ in range(10):
        QuickBooksClient(connection).company_info()
    with pytest.raises(RateLimited) as caught:
        send_bills(world, deliveries, connection=connection)
    assert caught.value.retry_after == 60.0
    assert world.company.created["Invoice"] == 0


def _new_token(world: World) -> str:
    consent = world.http.get(
        f"{world.server.url}/connect/oauth2",
        params={
            "client_id": "app",
            "redirect_uri": REDIRECT,
            "response_type": "code",
            "scope": "com.intuit.quickbooks.accounting",
        },
    )
    code = parse_qs(urlsplit(consent.headers["location"]).query)["code"][0]
    tokens = world.http.post(
        f"{world.server.url}/oauth2/v1/tokens/bearer",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        headers=basic(),
    ).json()
    token: str = tokens["access_token"]
    return token


# --- preview ---------------------------------------------------------------------------------


def preview(world: World, bill: Bill, previous: LedgerEntry | None = None) -> Any:
    return world.registry.call(
        "preview_bill",
        "quickbooks",
        bill=bill,
        account=world.account,
        config={"customerMemo": "Thanks"},
        mappings=world.mappings(),
        previous=previous,
    )


def test_preview_is_exactly_what_send_bill_sends(world: World) -> None:
    sent: list[httpx.Request] = []

    def capture(request: httpx.Request) -> None:
        if request.method == "POST":
            sent.append(request)

    with httpx.Client(timeout=5, event_hooks={"request": [capture]}) as watched:
        connection = world.connection(http=watched)
        planned = preview(world, world.bill)
        assert world.emulator.calls == {}  # nothing sent
        assert (planned["method"], planned["operation"], planned["entity"]) == (
            "POST",
            "create",
            "Invoice",
        )
        assert planned["path"] == "/v3/company/{realmId}/invoice"
        first = world.send(config={"customerMemo": "Thanks"}, connection=connection)
        assert sent[-1].url.path == planned["path"].replace("{realmId}", world.realm)
        assert loads(sent[-1].content) == loads(dumps(planned["body"]))

        v2 = version(world.bill, 2, subtotal="5.00")
        previous = ledger(world.bill, first)
        planned = preview(world, v2, previous)
        assert planned["operation"] == "update"
        assert (planned["body"]["Id"], planned["body"]["SyncToken"], planned["body"]["sparse"]) == (
            first.external_id,
            "0",
            False,
        )
        world.send(
            v2,
            previous=previous,
            key="v2",
            config={"customerMemo": "Thanks"},
            connection=connection,
        )
        assert loads(sent[-1].content) == loads(dumps(planned["body"]))
    with pytest.raises(MissingMapping):
        world.registry.call(
            "preview_bill",
            "quickbooks",
            bill=world.bill,
            account=world.account,
            config={},
            mappings=ResolvedMappings({}),
            previous=None,
        )


# --- tax -------------------------------------------------------------------------------------------


def tax_config(world: World, calculation: str | None, rate: str = "20") -> dict[str, Any]:
    standard = world.company.id_of("TaxCode", "20.0% S")
    config: dict[str, Any] = {
        "defaultTaxCode": "NON",
        "taxCodesByLineType": {"USAGE": standard},
        "taxRates": [
            {"taxCode": standard, "ratePercent": rate},
            {"taxCode": "NON", "ratePercent": "0"},
        ],
    }
    if calculation is not None:
        config["taxCalculation"] = calculation
    return config


@pytest.mark.parametrize(
    ("calculation", "tax", "total"),
    [
        # The Globex bill: 930.00, of which 680.00 of usage at 20 % (the rest is not taxed).
        (None, "136.00", "1066.00"),
        ("TaxExcluded", "136.00", "1066.00"),
        ("TaxInclusive", "113.33", "930.00"),
        ("NotApplicable", "0.00", "930.00"),
    ],
)
def test_the_preview_shows_the_total_quickbooks_then_computes(
    world: World, calculation: str | None, tax: str, total: str
) -> None:
    config = tax_config(world, calculation)
    planned = world.registry.call(
        "preview_bill",
        "quickbooks",
        bill=world.bill,
        account=world.account,
        config=config,
        mappings=world.mappings(),
        previous=None,
    )
    assert planned["totals"] == {
        "currency": "USD",
        "bill": "930.00",
        "lines": "930.00",
        "tax": tax,
        "destination": total,
        "amounts": {"TaxInclusive": "Inclusive", "NotApplicable": "NoTax"}.get(
            str(calculation), "Exclusive"
        ),
        "unknown": [],
    }
    body = planned["body"]
    assert body.get("GlobalTaxCalculation") == calculation
    codes = {
        line["Description"]: line["SalesItemLineDetail"]["TaxCodeRef"]["value"]
        for line in body["Line"]
    }
    assert set(codes.values()) == {"NON", world.company.id_of("TaxCode", "20.0% S")}
    result = world.send(config=config)
    invoice = world.invoice(result)
    # What QuickBooks computed from its own rates is what the preview said.
    assert (invoice["TotalAmt"], invoice["TxnTaxDetail"]["TotalTax"]) == (D(total), D(tax))
    assert result.state["totals"]["destination"] == total
    assert "notes" not in result.state


def test_a_rate_in_the_panel_that_quickbooks_does_not_have_is_noted(world: World) -> None:
    result = world.send(config=tax_config(world, "TaxExcluded", rate="17.5"))
    assert world.invoice(result)["TotalAmt"] == D("1066.00")
    assert result.state["notes"] == [
        f"QuickBooks totals invoice {result.external_id} at 1066.00 USD, but billbridge expected "
        "1049.00 (tax 119.00 at the panel's rates added to the lines' 930.00): check the tax "
        "rates in the panel (taxRates) against the rates in QuickBooks"
    ]


def test_a_tax_code_quickbooks_does_not_have_is_refused_by_it(world: World) -> None:
    with pytest.raises(DestinationValidationError) as caught:
        world.send(config={"defaultTaxCode": "NO-SUCH-CODE"})
    assert str(caught.value).startswith(
        "QuickBooks cannot use TaxCodeRef: it does not exist or has been made inactive (code 610)"
    )
    assert world.company.created["Invoice"] == 0


# --- a bill whose total changes sign ------------------------------------------------------------


def credited(bill: Bill, version_number: int) -> Bill:
    """``bill`` with a credit of 1000.00 added: it totals -70.00."""
    refund = LineItem(
        line_item_type="CREDIT_MEMO",
        sequence_number=9,
        description="Refund",
        quantity=D(1),
        average_unit_price=D(-1000),
        subtotal=D(-1000),
        product_id="p-platform",
    )
    return attrs.evolve(bill, version=version_number, line_items=(*bill.line_items, refund))


def test_an_invoice_whose_bill_became_a_credit_is_voided_and_replaced(world: World) -> None:
    first = world.send(key="v1")
    result = world.send(credited(world.bill, 2), previous=ledger(world.bill, first), key="v2")
    memo = world.company.credit_memos[result.external_id]
    assert (memo["TotalAmt"], memo["DocNumber"]) == (D("70.00"), "INV-001042")
    voided = world.company.invoices[first.external_id]
    assert voided["TotalAmt"] == 0 and voided["PrivateNote"].startswith("Voided")
    assert (result.created, result.state["entity"]) == (True, "CreditMemo")
    assert result.state["voided"] == [
        {
            "kind": "Invoice",
            "id": first.external_id,
            "number": "INV-001042",
            "status": "VOIDED",
            "billVersion": 1,
        }
    ]
    assert result.state["notes"] == [
        f"bill {world.bill.id} version 2 totals -70.00 USD, so it is now a credit memo: "
        f"QuickBooks invoice {first.external_id} (INV-001042), made for version 1, was voided, "
        f"and credit memo {result.external_id} (INV-001042) replaces it"
    ]
    assert world.emulator.calls["void:Invoice"] == 1


def lose_next(world: World, entity: str) -> None:
    """The next POST to ``entity`` is done by QuickBooks but its answer never arrives."""
    world.emulator.faults.path_prefixes = (f"/v3/company/{world.realm}/{entity}",)
    world.emulator.faults.methods = ("POST",)
    world.emulator.faults.script("lost")


def test_lost_answers_while_replacing_neither_void_nor_create_twice(world: World) -> None:
    first = world.send(key="v1")
    previous, changed = ledger(world.bill, first), credited(world.bill, 2)
    lose_next(world, "invoice")  # the void happens, its answer is lost
    with pytest.raises(TransientError):
        world.send(changed, previous=previous, key="v2")
    lose_next(world, "creditmemo")  # the credit memo is made, its answer is lost
    with pytest.raises(TransientError):
        world.send(changed, previous=previous, key="v2")
    world.emulator.faults.clear()
    result = world.send(changed, previous=previous, key="v2")
    assert world.emulator.calls["void:Invoice"] == 1
    assert world.company.created["CreditMemo"] == 1
    assert result.external_id == next(iter(world.company.credit_memos))
    assert [entry["status"] for entry in result.state["voided"]] == ["VOIDED"]


def test_a_paid_invoice_is_not_voided(world: World) -> None:
    first = world.send(key="v1")
    world.emulator.mark_paid(world.realm, first.external_id)
    with pytest.raises(InvoiceAlreadyPaid) as caught:
        world.send(credited(world.bill, 2), previous=ledger(world.bill, first), key="v2")
    assert str(caught.value) == (
        f"QuickBooks invoice {first.external_id} (INV-001042), made for version 1 of bill "
        f"{world.bill.id}, is paid and cannot be voided; version 2 totals -70.00 USD and would "
        "replace it with a credit memo: settle the difference in QuickBooks by hand"
    )
    assert world.company.credit_memos == {} and world.company.invoices[first.external_id][
        "TotalAmt"
    ] == D("930.00")


def test_a_credit_memo_is_replaced_once_someone_deleted_it(world: World) -> None:
    memo = world.send(credited(world.bill, 1), key="v1")
    positive = attrs.evolve(world.bill, version=2)
    previous = ledger(credited(world.bill, 1), memo)
    with pytest.raises(PermanentError) as caught:
        world.send(positive, previous=previous, key="v2")
    assert str(caught.value) == (
        f"QuickBooks cannot void a credit memo through its API: credit memo {memo.external_id} "
        f"(INV-001042), made for version 1 of bill {world.bill.id}, stays as it is, and version 2 "
        "totals 930.00 USD, which needs an invoice: delete the credit memo in QuickBooks if it "
        "should go, then replay the run"
    )
    assert world.company.invoices == {}
    world.emulator.delete(world.realm, memo.external_id, "CreditMemo")
    result = world.send(positive, previous=previous, key="v2")
    assert world.invoice(result)["TotalAmt"] == D("930.00")
    assert result.state["voided"][0]["status"] == "MISSING"
    assert "no longer exists in QuickBooks" in result.state["notes"][0]


def test_a_number_kept_by_a_voided_invoice_is_not_reused(world: World) -> None:
    first = world.send(key="v1")
    memo = world.send(credited(world.bill, 2), previous=ledger(world.bill, first), key="v2")
    world.emulator.delete(world.realm, memo.external_id, "CreditMemo")
    with pytest.raises(DestinationValidationError) as caught:
        world.send(
            attrs.evolve(world.bill, version=3),
            previous=ledger(credited(world.bill, 2), memo),
            key="v3",
        )
    assert str(caught.value) == (
        f"the number INV-001042 is still held by QuickBooks invoice {first.external_id}, voided "
        "for version 1 (a voided document keeps its number): give the bill another number "
        "(invoiceNumberPrefix), or let QuickBooks number it (invoiceNumberSource), then replay "
        "the run"
    )


def test_send_bills_replaces_a_document_among_the_batch(world: World) -> None:
    first = world.send(numbered(world, 1), key="early")
    deliveries = [
        delivery(
            world, credited(numbered(world, 1), 2), previous=ledger(numbered(world, 1), first)
        ),
        delivery(world, numbered(world, 2)),
    ]
    outcomes = send_bills(world, deliveries)
    replaced, created = outcomes
    assert isinstance(replaced, SendResult) and isinstance(created, SendResult)
    assert replaced.state["entity"] == "CreditMemo" and replaced.state["voided"][0]["id"] == (
        first.external_id
    )
    assert created.state["entity"] == "Invoice" and "voided" not in created.state
    assert world.emulator.calls["void:Invoice"] == 1


def test_the_preview_of_a_replacement_shows_the_void(world: World) -> None:
    first = world.send(key="v1")
    planned = world.registry.call(
        "preview_bill",
        "quickbooks",
        bill=credited(world.bill, 2),
        account=world.account,
        config={},
        mappings=world.mappings(),
        previous=ledger(world.bill, first),
    )
    assert (planned["operation"], planned["entity"]) == ("replace", "CreditMemo")
    assert planned["replaces"] == {
        "entity": "Invoice",
        "id": first.external_id,
        "number": "INV-001042",
        "void": {
            "method": "POST",
            "path": "/v3/company/{realmId}/invoice",
            "query": {"operation": "void", "minorversion": "75"},
            "body": {"Id": first.external_id, "SyncToken": "0"},
        },
    }
