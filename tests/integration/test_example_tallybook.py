"""The OAuth example destination (examples/billbridge-tallybook) inside the engine.

The example is its own distribution and is not installed in billbridge's development
environment, so its source directory is put on ``sys.path`` and its hooks module handed to the
registry; ``tests/e2e/test_example_tallybook_install.py`` installs it for real. Checked here:
the example's own test suites pass from source (the conformance kit with its OAuth checks, and
its behaviour tests), and the engine connects and delivers through it end to end: a consent
completed by the core with the client's credentials in the token request's body, as the plugin
declares, a choice among the Tallybook accounts, clients listed to map the account to, bills
delivered and updated, a token refreshed, and Tallybook's refusals as run statuses and events.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs
import httpx
import pytest

from billbridge import Engine
from billbridge.domain.models import CredentialStatus, EventType, RunStatus, Secret
from billbridge.errors import TenantChoiceRequired
from billbridge.plugin.manager import load_plugins
from billbridge.secrets import SecretBox, generate_key
from billbridge.settings import DestinationSettings, Settings
from billbridge.testing.emulation.clock import ManualClock
from billbridge.testing.emulation.server import RunningServer, serve
from billbridge.testing.samples import sample_account_document, sample_bill_document
from support import ROOT

EXAMPLE = ROOT / "examples" / "billbridge-tallybook"
if str(EXAMPLE) not in sys.path:
    sys.path.insert(0, str(EXAMPLE))

from billbridge_tallybook import hooks  # noqa: E402
from billbridge_tallybook.fake import FakeTallybook  # noqa: E402

CLIENT_ID = "engine-app"
CLIENT_SECRET = "engine-app-secret-0123456789"
REDIRECT = "http://127.0.0.1:9/callback"


def _example_tests(name: str) -> ModuleType:
    """One of the example's own test modules, imported from its file."""
    path = EXAMPLE / "tests" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"billbridge_tallybook_example_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: The example's own conformance suite (with its harness), loaded from its test file.
ExampleSuite: Any = _example_tests("test_conformance").TestTallybookConforms


class TestExampleConformsFromSource(ExampleSuite):
    """The example's conformance suite and harness, against the hooks module from source."""

    plugin = hooks


# The example's behaviour tests, run from source as they are (module-level test functions and
# their fixture).
_behaviour = _example_tests("test_tallybook")
fake = _behaviour.fake
globals().update(
    {name: value for name, value in vars(_behaviour).items() if name.startswith("test_")}
)


# --- through the engine ----------------------------------------------------------------------------


@attrs.define
class Engineered:
    engine: Engine
    tallybook: FakeTallybook
    server: RunningServer
    clock: ManualClock

    def connect(self, tenant: str | None = None) -> Any:
        """Create a credential and complete its consent as the CLI's callback would."""
        credential = self.engine.credentials.create("Tallybook", "tallybook")
        url = self.engine.credentials.authorization_url(credential.id, REDIRECT)
        consent = httpx.get(url)
        assert consent.status_code == 302, consent.text
        callback = {
            k: v[0] for k, v in parse_qs(urlsplit(consent.headers["location"]).query).items()
        }
        return self.engine.credentials.complete(
            callback["state"], callback["code"], tenant_id=tenant
        )

    def integration(self, **destination_config: Any) -> Any:
        integration = self.engine.integrations.create(
            name="Tallybook", destination="tallybook", destination_config=destination_config
        )
        credential = self.connect("acct-1")
        return self.engine.integrations.connect(integration.id, credential.id)


@pytest.fixture
def engineered(sqlite_url: str, tmp_path: Path) -> Iterator[Engineered]:
    clock = ManualClock()
    tallybook = FakeTallybook(clock, accounts={"acct-1": "Bright Ideas Ltd", "acct-2": "Dim Ideas"})
    tallybook.oauth.add_client(CLIENT_ID, CLIENT_SECRET)
    with serve(tallybook.app) as server:
        engine = Engine(
            sqlite_url,
            settings=Settings(
                home=tmp_path,
                destinations={
                    "tallybook": DestinationSettings(
                        client_id=CLIENT_ID,
                        client_secret=Secret(CLIENT_SECRET),
                        **tallybook.endpoints(server.url),
                    )
                },
            ),
            plugins=load_plugins(extra=[("tallybook", hooks)], blocked=()),
            clock=clock,
            secret_box=SecretBox([generate_key()]),
        )
        try:
            yield Engineered(engine, tallybook, server, clock)
        finally:
            engine.close()


def test_the_core_completes_a_consent_with_the_client_in_the_body(engineered: Engineered) -> None:
    engine = engineered.engine
    credential = engine.credentials.create("Tallybook", "tallybook")
    url = engine.credentials.authorization_url(credential.id, REDIRECT)
    assert "scope=user%3Aprofile%3Aread+user%3Aclients%3Aread+user%3Ainvoices%3Awrite" in url
    callback = {
        k: v[0] for k, v in parse_qs(urlsplit(httpx.get(url).headers["location"]).query).items()
    }
    # Two accounts: the user picks one, as `billbridge credentials create --tenant` does.
    with pytest.raises(TenantChoiceRequired) as choice:
        engine.credentials.complete(callback["state"], callback["code"])
    assert [(c.tenant_id, c.name) for c in choice.value.choices] == [
        ("acct-1", "Bright Ideas Ltd"),
        ("acct-2", "Dim Ideas"),
    ]
    done = engine.credentials.choose_tenant(credential.id, "acct-2")
    assert (done.status, done.tenant_id, done.tenant_name) == (
        CredentialStatus.COMPLETE,
        "acct-2",
        "Dim Ideas",
    )
    # The fake takes client credentials in the form body only: the exchange worked, so the
    # core sent them there, as OAuthSpec(client_auth="body") declares.
    assert engineered.tallybook.oauth.stats["codes"] == 1


def test_clients_to_map_to_bills_delivered_updated_and_a_token_refreshed(
    engineered: Engineered,
) -> None:
    engine, tallybook = engineered.engine, engineered.tallybook
    integration = engineered.integration(notes="Thank you.")
    [client] = engine.external.list(integration.id, "Client", search="Conformance").items
    items = {e.name: e.id for e in engine.external.list(integration.id, "Item").items}
    engine.mappings.create_many(
        [
            {
                "m3terEntity": "Account",
                "m3terId": sample_account_document()["id"],
                "externalTable": "Client",
                "externalId": client.id,
                "integrationConfigId": integration.id,
            },
            {
                "m3terEntity": "Product",
                "m3terId": sample_bill_document()["lineItems"][1]["productId"],
                "externalTable": "Item",
                "externalId": items["API Calls"],
                "integrationConfigId": integration.id,
            },
        ]
    )
    engine.submit_bill(sample_bill_document(version=1), sample_account_document())
    assert engine.deliver_pending().completed == 1
    [invoice] = tallybook.account("acct-1").invoices.values()
    assert invoice["clientid"] == client.id
    assert invoice["notes"] == "Thank you."
    assert [line.get("itemid") for line in invoice["lines"]] == [None, items["API Calls"]]

    # Twelve hours later the access token has expired: the core refreshes it (client in the
    # body again) before the update goes out.
    engineered.clock.advance(12 * 3600 + 60)
    engine.submit_bill(sample_bill_document(version=2), sample_account_document())
    assert engine.deliver_pending().completed == 1
    assert tallybook.oauth.stats["refreshes"] == 1
    [updated] = tallybook.account("acct-1").invoices.values()
    assert updated["lines"][1]["qty"] == "2500"
    runs = engine.runs.list()
    assert {r.status for r in runs} == {RunStatus.COMPLETE}
    assert {r.external_id for r in runs} == {"1"}
    assert runs[0].external_url == f"{engineered.server.url}/view/acct-1/1"


def test_tallybooks_refusals_become_run_statuses_and_events(engineered: Engineered) -> None:
    engine, tallybook = engineered.engine, engineered.tallybook
    integration = engineered.integration()
    account = sample_account_document()
    engine.mappings.create(
        entity="Account",
        entity_id=account["id"],
        external_table="Client",
        external_id=tallybook.account().client_id("Acme Ltd"),
        integration_id=integration.id,
    )
    # An invoice number already used in Tallybook for another invoice.
    tallybook.account().invoices["99"] = {"id": "99", "invoice_number": "CONF-00001"}
    [run] = engine.submit_bill(sample_bill_document(), account).runs
    engine.deliver_pending()
    refused = engine.runs.get(run.id)
    assert refused.status is RunStatus.ERROR
    assert refused.error is not None and "Invoice number already exists" in refused.error
    assert [e.type for e in engine.events.list()] == [EventType.VALIDATION_ERROR]


def test_deleting_the_credential_revokes_it_at_tallybook(engineered: Engineered) -> None:
    """Tallybook authenticates revocation as it does token requests: id and secret in the body."""
    credential = engineered.connect("acct-1")
    engineered.engine.credentials.delete(credential.id)
    assert engineered.tallybook.oauth.stats["revocations"] == 1
    assert [a.revoked for a in engineered.tallybook.oauth.authorizations()] == [True]
