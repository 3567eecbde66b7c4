"""The example third-party destination (examples/billbridge-webhook) inside the engine.

The example is its own distribution and is not installed in billbridge's development
environment, so its source directory is put on ``sys.path`` here and the plugin module is
handed to the registry; ``test_example_webhook_install.py`` installs it for real. What is
checked here: the example passes the conformance kit (its own suite and harness, reused), and
the engine delivers through it end to end: no OAuth credential, no account mapping, signed
requests, updates, and the receiver's answers as run statuses and events.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pytest
from click.testing import CliRunner

from billbridge import Engine
from billbridge.cli import _State, main
from billbridge.domain.models import EventType, RunStatus
from billbridge.errors import ValidationFailed
from billbridge.plugin.manager import load_plugins
from billbridge.secrets import SecretBox, generate_key
from billbridge.settings import Settings
from billbridge.testing.emulation.server import RunningServer, serve
from billbridge.testing.samples import sample_account_document, sample_bill_document
from support import ROOT

EXAMPLE = ROOT / "examples" / "billbridge-webhook"
if str(EXAMPLE) not in sys.path:
    sys.path.insert(0, str(EXAMPLE))

from billbridge_webhook import hooks, verify  # noqa: E402
from billbridge_webhook.receiver import FakeReceiver  # noqa: E402

SECRET = "engine-test-signing-secret-0123"


def _example_tests(name: str) -> ModuleType:
    """One of the example's own test modules, imported from its file."""
    path = EXAMPLE / "tests" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"billbridge_webhook_example_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: The example's own conformance suite (with its harness), loaded from its test file.
ExampleSuite: Any = _example_tests("test_conformance").TestWebhookConforms


class TestExampleConformsFromSource(ExampleSuite):
    """The example's conformance suite and harness, against the plugin module from source."""

    plugin = hooks


# --- through the engine ----------------------------------------------------------------------------


@attrs.define
class World:
    engine: Engine
    receiver: FakeReceiver
    server: RunningServer

    def integration(self, **destination_config: Any) -> Any:
        return self.engine.integrations.create(
            name="Billing hooks",
            destination="webhook",
            destination_config={"url": f"{self.server.url}/bills", "secret": SECRET}
            | destination_config,
        )

    def submit(self, version: int = 1) -> Any:
        return self.engine.submit_bill(
            sample_bill_document(version=version), sample_account_document()
        )


@pytest.fixture
def world(sqlite_url: str, tmp_path: Path) -> Iterator[World]:
    receiver = FakeReceiver(SECRET)
    with serve(receiver.app) as server:
        engine = Engine(
            sqlite_url,
            settings=Settings(home=tmp_path),
            plugins=load_plugins(extra=[("webhook", hooks)], blocked=()),
            secret_box=SecretBox([generate_key()]),
        )
        try:
            yield World(engine, receiver, server)
        finally:
            engine.close()


def test_a_bill_is_delivered_signed_without_credential_or_mapping(world: World) -> None:
    # A destination with oauth=None needs no credential; one that lists no table to map
    # accounts to (its account_table is not among its external_tables) needs no mapping.
    integration = world.integration()
    assert integration.credential_id is None
    [run] = world.submit().runs
    report = world.engine.deliver_pending()
    assert report.completed == 1, world.engine.runs.get(run.id).error
    done = world.engine.runs.get(run.id)
    assert done.status is RunStatus.COMPLETE
    assert done.external_id == "inv_1"
    assert done.external_url == f"{world.server.url}/invoices/inv_1"
    [received] = world.receiver.received
    assert received.refused is None
    verify(
        SECRET,
        received.headers["x-billbridge-timestamp"],
        received.body,
        received.headers["x-billbridge-signature"],
    )
    assert received.json()["invoice"]["total"] == "120.00"


def test_a_new_version_updates_the_receivers_invoice(world: World) -> None:
    world.integration()
    world.submit(1)
    world.engine.deliver_pending()
    world.submit(2)
    assert world.engine.deliver_pending().completed == 1
    [invoice] = world.receiver.invoices.values()
    assert invoice["revision"] == 2 and invoice["invoice"]["billVersion"] == 2
    assert world.receiver.received[-1].json()["event"] == "invoice.updated"
    assert {r.external_id for r in world.engine.runs.list()} == {"inv_1"}


@pytest.mark.parametrize(
    ("status", "headers", "run_status", "event"),
    [
        (503, {}, RunStatus.AWAITING_RETRY, None),
        # Longer than the worker waits inline (90 s): the run is parked until then.
        (429, {"Retry-After": "600"}, RunStatus.RATE_LIMIT_RETRY, None),
        (400, {}, RunStatus.ERROR, EventType.VALIDATION_ERROR),
        (409, {}, RunStatus.INVOICE_ALREADY_PAID, EventType.PERFORM_ERROR),
    ],
)
def test_receiver_answers_become_run_statuses_and_events(
    world: World,
    status: int,
    headers: dict[str, str],
    run_status: RunStatus,
    event: EventType | None,
) -> None:
    world.integration()
    [run] = world.submit().runs
    world.receiver.fail_next(status, error="receiver says no", headers=headers)
    world.engine.deliver_pending()
    done = world.engine.runs.get(run.id)
    assert done.status is run_status
    assert done.error is not None and "receiver says no" in done.error
    # Retried later (backoff, or the receiver's Retry-After); final statuses are not.
    assert (done.next_attempt_at is not None) is (event is None)
    assert [e.type for e in world.engine.events.list()] == ([event] if event else [])


def test_the_preview_is_the_body_that_is_sent(world: World) -> None:
    integration = world.integration(includeLineItems=False)
    preview = world.engine.preview(
        sample_bill_document(), sample_account_document(), integration.id
    )
    assert preview["method"] == "POST" and preview["path"] == f"{world.server.url}/bills"
    world.submit()
    world.engine.deliver_pending()
    assert world.receiver.received[0].json() == preview["body"]


def test_unsafe_configuration_is_refused_without_echoing_the_secret(world: World) -> None:
    secret = "short secret"
    with pytest.raises(ValidationFailed) as info:
        world.engine.integrations.create(
            name="Billing hooks",
            destination="webhook",
            destination_config={"url": "http://billing.example.com/hooks", "secret": secret},
        )
    assert {e.path for e in info.value.errors} == {"/destinationConfig/secret"}
    assert secret not in str(info.value)
    with pytest.raises(ValidationFailed) as info:
        world.integration(url="http://billing.example.com/hooks", headers={"Host": "x"})
    assert {e.path for e in info.value.errors} == {
        "/destinationConfig/url",
        "/destinationConfig/headers/Host",
    }


def test_the_cli_never_prints_the_signing_secret(world: World) -> None:
    # The panel marks the secret writeOnly; the core must redact it wherever it shows a
    # configuration (billbridge.domain.schemas.redact).
    integration = world.integration()
    state = _State(None)
    state._engine = world.engine
    runner = CliRunner()
    for args in (["integrations", "show", integration.id], ["integrations", "list", "--json"]):
        result = runner.invoke(main, args, obj=state, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert SECRET not in result.output, args
        shown = json.loads(result.output)
        shown = shown[0] if isinstance(shown, list) else shown
        assert shown["destinationConfig"]["secret"] == "********"
