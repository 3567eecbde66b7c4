"""The Tallybook plugin's own behaviour: translation, listing, consent, and Tallybook's answers.

Hooks are called through a plugin registry, by keyword, as billbridge calls them, against the
fake Tallybook over real HTTP on a manual clock. (The conformance suite loads the plugin through
its entry point; these tests hand the hooks module to the registry so that they also run from
a source checkout.)
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs
import httpx
import pytest
from billbridge_tallybook import hooks
from billbridge_tallybook.fake import FakeTallybook
from billbridge_tallybook.translate import invoice_body

from billbridge.domain.models import LedgerEntry, Secret, parse_bill
from billbridge.errors import (
    AuthenticationFailed,
    DestinationValidationError,
    InvoiceAlreadyPaid,
    MissingMapping,
    RateLimited,
    TokenExpired,
)
from billbridge.plugin.contract import Connection, ResolvedMappings, SendResult
from billbridge.plugin.manager import PluginRegistry, load_plugins
from billbridge.testing.conformance import (
    SAMPLE_ACCOUNT_ID,
    SAMPLE_PRODUCT_IDS,
    obtain_tokens,
    sample_account,
    sample_bill,
)
from billbridge.testing.emulation.clock import ManualClock
from billbridge.testing.emulation.server import RunningServer, serve
from billbridge.testing.samples import sample_bill_document

CLIENT_ID = "test-app"
CLIENT_SECRET = "test-app-secret"


@attrs.define
class World:
    tallybook: FakeTallybook
    server: RunningServer
    http: httpx.Client
    registry: PluginRegistry
    clock: ManualClock
    token: str

    @property
    def urls(self) -> dict[str, str]:
        return self.tallybook.endpoints(self.server.url)

    def connection(self, account: str = "acct-1") -> Connection:
        return Connection(
            destination=hooks.KEY,
            tenant_id=account,
            access_token=Secret(self.token),
            http=self.http,
            api_base_url=self.urls["api_base_url"],
        )

    def mappings(self) -> ResolvedMappings:
        account = self.tallybook.account()
        return ResolvedMappings(
            {
                ("Account", SAMPLE_ACCOUNT_ID, "Client"): account.client_id("Acme Ltd"),
                ("Product", SAMPLE_PRODUCT_IDS["api"], "Item"): account.item_id("API Calls"),
            }
        )

    def send(
        self,
        version: int = 1,
        *,
        previous: SendResult | None = None,
        key: str = "k1",
        **config: Any,
    ) -> SendResult:
        bill = sample_bill(version=version)
        ledger = None
        if previous is not None:
            ledger = LedgerEntry(
                integration_id="integration-1",
                bill_id=bill.id,
                bill_version=version - 1,
                external_id=previous.external_id,
                updated_at=datetime.now(UTC),
            )
        result: SendResult = self.registry.call(
            "send_bill",
            hooks.KEY,
            connection=self.connection(),
            bill=bill,
            account=sample_account(),
            config=config,
            mappings=self.mappings(),
            previous=ledger,
            idempotency_key=key,
        )
        return result


@pytest.fixture
def fake() -> Iterator[World]:
    clock = ManualClock()
    tallybook = FakeTallybook(
        clock, accounts={"acct-1": "Bright Ideas Ltd", "acct-2": "Dim Ideas LLC"}
    )
    tallybook.oauth.add_client(CLIENT_ID, CLIENT_SECRET)
    with serve(tallybook.app) as server, httpx.Client(timeout=5) as http:
        urls = tallybook.endpoints(server.url)
        tokens = obtain_tokens(
            http,
            oauth=hooks.OAUTH,
            authorize_url=urls["authorize_url"],
            token_url=urls["token_url"],
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
        )
        registry = load_plugins(entry_points=False, extra=[(hooks.KEY, hooks)], blocked=())
        yield World(tallybook, server, http, registry, clock, tokens.access_token)


# --- translation (pure) --------------------------------------------------------------------------


def test_lines_keep_quantity_and_price_when_they_make_the_amount_exactly() -> None:
    mappings = ResolvedMappings({("Account", SAMPLE_ACCOUNT_ID, "Client"): "7"})
    body = invoice_body(sample_bill(version=2), sample_account(), {}, mappings)["invoice"]
    assert body["clientid"] == "7"
    assert body["invoice_number"] == "CONF-00001"
    assert (body["create_date"], body["due_date"]) == ("2026-11-01", "2026-12-01")
    assert [(line["qty"], line["unit_cost"]["amount"]) for line in body["lines"]] == [
        ("1", "100.00"),
        ("2500", "0.01"),
    ]
    assert body["lines"][1]["name"] == "API"
    assert body["lines"][1]["description"] == "API calls (2026-10-01 to 2026-11-01)"
    assert "itemid" not in body["lines"][1]


def test_an_inexact_price_becomes_one_unit_of_the_amount() -> None:
    document = sample_bill_document()
    document["lineItems"][1] |= {"quantity": 3, "averageUnitPrice": "6.67", "subtotal": "20.00"}
    mappings = ResolvedMappings({("Account", SAMPLE_ACCOUNT_ID, "Client"): "7"})
    body = invoice_body(parse_bill(document), sample_account(), {}, mappings)["invoice"]
    line = body["lines"][1]
    assert (line["qty"], line["unit_cost"]["amount"]) == ("1", "20.00")
    total = sum(Decimal(li["qty"]) * Decimal(li["unit_cost"]["amount"]) for li in body["lines"])
    assert total == Decimal("120.00")


def test_items_come_from_mappings_or_the_default_item() -> None:
    mappings = ResolvedMappings(
        {
            ("Account", SAMPLE_ACCOUNT_ID, "Client"): "7",
            ("Product", SAMPLE_PRODUCT_IDS["api"], "Item"): "3",
        }
    )
    body = invoice_body(
        sample_bill(), sample_account(), {"defaultItem": "1", "lineName": "DESCRIPTION"}, mappings
    )["invoice"]
    assert [line.get("itemid") for line in body["lines"]] == ["1", "3"]
    assert [line["name"] for line in body["lines"]] == ["Platform subscription", "API calls"]


def test_an_unmapped_account_is_a_missing_mapping() -> None:
    with pytest.raises(MissingMapping, match="no Client mapped for Account"):
        invoice_body(sample_bill(), sample_account(), {}, ResolvedMappings())


# --- consent and listing -------------------------------------------------------------------------


def test_authenticate_names_every_account_the_token_reaches(fake: World) -> None:
    tokens = obtain_tokens(
        fake.http,
        oauth=hooks.OAUTH,
        authorize_url=fake.urls["authorize_url"],
        token_url=fake.urls["token_url"],
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
    )
    choices = fake.registry.call(
        "authenticate",
        hooks.KEY,
        credential=None,
        callback=tokens.oauth_callback(),
        http=fake.http,
        api_base_url=fake.urls["api_base_url"],
    )
    assert [(c.tenant_id, c.name) for c in choices] == [
        ("acct-1", "Bright Ideas Ltd"),
        ("acct-2", "Dim Ideas LLC"),
    ]


def test_the_token_endpoint_wants_the_client_in_the_body(fake: World) -> None:
    with pytest.raises(AssertionError, match="invalid_client"):
        obtain_tokens(
            fake.http,
            oauth=attrs.evolve(hooks.OAUTH, client_auth="basic"),
            authorize_url=fake.urls["authorize_url"],
            token_url=fake.urls["token_url"],
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
        )


def test_clients_are_listed_by_pages_and_searched_by_name(fake: World) -> None:
    list_page = functools.partial(
        fake.registry.call,
        "list_external_entities",
        hooks.KEY,
        connection=fake.connection(),
        table="Client",
    )
    first = list_page(search=None, cursor=None)
    second = list_page(search=None, cursor=first.next_cursor)
    assert (len(first.items), len(second.items), second.next_cursor) == (25, 5, None)
    found = list_page(search="acme", cursor=None)
    assert [(e.name, e.extra["email"]) for e in found.items] == [
        ("Acme Ltd", "billing2@client.example")
    ]
    with pytest.raises(DestinationValidationError, match="lists Client and Item"):
        list_page(table="Invoice", search=None, cursor=None)


# --- delivering, and every answer Tallybook gives ------------------------------------------------


def test_a_bill_becomes_an_invoice_and_a_new_version_updates_it(fake: World) -> None:
    first = fake.send(1, key="k1")
    assert (first.external_id, first.number, first.created) == ("1", "CONF-00001", True)
    assert first.url == f"{fake.server.url}/view/acct-1/1"
    second = fake.send(2, previous=first, key="k2")
    assert (second.external_id, second.created) == ("1", False)
    [stored] = fake.tallybook.account().invoices.values()
    assert stored["lines"][1]["qty"] == "2500"
    assert stored["lines"][1]["itemid"] == fake.tallybook.account().item_id("API Calls")


def test_a_taken_invoice_number_is_refused_in_tallybooks_words(fake: World) -> None:
    fake.send(1, key="k1")
    with pytest.raises(DestinationValidationError, match=r"HTTP 422") as refused:
        fake.send(1, key="another-key")  # the same number, as a new invoice
    assert refused.value.detail == "Invoice number already exists"


def test_a_paid_invoice_is_not_changed(fake: World) -> None:
    first = fake.send(1, key="k1")
    fake.tallybook.account().paid.add(first.external_id)
    with pytest.raises(InvoiceAlreadyPaid) as refused:
        fake.send(2, previous=first, key="k2")
    assert refused.value.detail == "the invoice is paid and cannot be changed"


def test_an_expired_token_is_token_expired_so_the_core_refreshes(fake: World) -> None:
    fake.clock.advance(12 * 3600 + 1)
    with pytest.raises(TokenExpired):
        fake.send()


def test_another_account_is_not_reachable(fake: World) -> None:
    with pytest.raises(AuthenticationFailed, match="HTTP 403"):
        fake.registry.call(
            "list_external_entities",
            hooks.KEY,
            connection=fake.connection("acct-9"),
            table="Item",
            search=None,
            cursor=None,
        )


def test_too_many_requests_is_rate_limited_with_tallybooks_wait(fake: World) -> None:
    fake.tallybook.window = type(fake.tallybook.window)(1, 60, fake.clock)
    fake.send(key="k1")
    with pytest.raises(RateLimited) as throttled:
        fake.send(key="k2")
    assert throttled.value.retry_after == 60


def test_validate_config_counts_the_lines_of_notes(fake: World) -> None:
    errors = fake.registry.call("validate_config", hooks.KEY, config={"notes": "a\nb\nc\nd\ne\nf"})
    assert [(e.path, e.message) for e in errors] == [("/notes", "Tallybook prints at most 5 lines")]
    assert fake.registry.call("validate_config", hooks.KEY, config={"notes": "fine"}) == []
