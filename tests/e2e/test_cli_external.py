"""``billbridge external list``: a destination's records, listed for an integration.

Against the QuickBooks emulator over loopback, with a credential connected through the full
consent. (Destinations without OAuth: tests/unit/test_services.py.)
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from billbridge_quickbooks.emulator import QuickBooksEmulator
from click.testing import CliRunner, Result

from billbridge import Engine
from billbridge.cli import _State, main
from billbridge.cli.consent import connect_interactively
from billbridge.domain.models import Secret
from billbridge.plugin.contract import ExternalEntityPage
from billbridge.secrets import SecretBox, generate_key
from billbridge.settings import DestinationSettings, Settings
from billbridge.testing.emulation.clock import ManualClock

CLIENT_ID = "cli-app"
CLIENT_SECRET = "cli-app-secret-0123456789"


def browser(url: str) -> None:
    threading.Thread(target=lambda: httpx.get(url, follow_redirects=True), daemon=True).start()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Any, Engine, str]]:
    """The CLI on an engine with a QuickBooks integration connected to the emulator."""
    clock = ManualClock()
    emulator = QuickBooksEmulator(clock)
    emulator.add_company("9130000000000001", "Emulated Books Inc")
    emulator.oauth.add_client(CLIENT_ID, CLIENT_SECRET)
    with emulator.start() as server:
        engine = Engine(
            f"sqlite:///{tmp_path / 'bb.db'}",
            settings=Settings(
                home=tmp_path,
                destinations={
                    "quickbooks": DestinationSettings(
                        client_id=CLIENT_ID,
                        client_secret=Secret(CLIENT_SECRET),
                        **emulator.endpoints(server.url),
                    )
                },
            ),
            clock=clock,
            secret_box=SecretBox([generate_key()]),
        )
        try:
            credential = engine.credentials.create("QuickBooks", "quickbooks")
            done = connect_interactively(engine, credential, open_url=browser)
            integration = engine.integrations.create(name="QBO", destination="quickbooks")
            engine.integrations.connect(integration.id, done.id)
            state = _State(None)
            state._engine = engine
            runner = CliRunner()

            def run(*args: str) -> Result:
                return runner.invoke(main, list(args), obj=state, catch_exceptions=False)

            yield run, engine, integration.id
        finally:
            engine.close()


def test_external_list_shows_records_to_map_to(world: tuple[Any, Engine, str]) -> None:
    run, engine, integration = world
    table = run("external", "list", integration, "Customer")
    assert table.exit_code == 0, table.output + table.stderr
    assert "Globex Corporation" in table.output
    found = json.loads(
        run("external", "list", integration, "Customer", "--search", "globex", "--json").output
    )
    assert [item["name"] for item in found["items"]] == ["Globex Corporation"]
    assert found["nextCursor"] is None
    # The id listed is what a mapping points at.
    created = run(
        "mappings",
        "create",
        "--entity",
        "Account",
        "--entity-id",
        "acct-1",
        "--table",
        "Customer",
        "--external-id",
        found["items"][0]["id"],
        "--integration",
        integration,
        "--json",
    )
    assert created.exit_code == 0, created.stderr
    assert json.loads(created.output)[0]["externalSystem"] == "quickbooks"
    # The engine-level call the command uses.
    page = engine.external.list(integration, "Item", search="Platform")
    assert isinstance(page, ExternalEntityPage)
    assert [item.name for item in page.items] == ["Platform"]


def test_external_list_pages_and_refusals(world: tuple[Any, Engine, str]) -> None:
    run, engine, integration = world
    every = json.loads(run("external", "list", integration, "Item", "--all", "--json").output)
    names = [item["name"] for item in every["items"]]
    assert {"Platform", "API Calls", "Seats"} <= set(names)
    assert "Legacy Plan" not in names  # inactive items cannot be invoiced
    unknown = run("external", "list", integration, "Invoice")
    assert unknown.exit_code == 1
    assert "quickbooks does not list 'Invoice'; the tables it lists are: Customer" in unknown.stderr
    missing = run("external", "list", "no-such-integration", "Customer")
    assert missing.exit_code == 1
    assert "not found" in missing.stderr
    engine.integrations.disconnect(integration)
    unconnected = run("external", "list", integration, "Customer")
    assert unconnected.exit_code == 1
    assert "has no credential" in unconnected.stderr
    assert "no credential is connected: connect one first" in unconnected.stderr
