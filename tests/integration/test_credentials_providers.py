"""Credentials end to end against the QuickBooks and Xero emulators over real HTTP.

Consent redirect, code exchange, tenant identification, refresh rotation, a spent Xero refresh
token refused after its grace, revocation, and the CLI's loopback consent flow as a real process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from billbridge_quickbooks.emulator import QuickBooksEmulator
from billbridge_xero.emulator import XeroEmulator

from billbridge import Engine
from billbridge.cli.consent import connect_interactively
from billbridge.domain.models import CredentialStatus, Secret
from billbridge.errors import TenantChoiceRequired
from billbridge.secrets import SecretBox, generate_key
from billbridge.settings import DestinationSettings, Settings
from billbridge.testing.emulation.clock import ManualClock
from billbridge.testing.emulation.server import RunningServer
from support import stored_tokens

CLIENT_ID = "test-app"
CLIENT_SECRET = "test-app-secret-0123456789"


def browser(url: str) -> None:
    threading.Thread(target=lambda: httpx.get(url, follow_redirects=True), daemon=True).start()


def engine_for(
    destination: str,
    server: RunningServer,
    endpoints: dict[str, str],
    clock: ManualClock,
    home: Path,
) -> Engine:
    return Engine(
        f"sqlite:///{home / 'bb.db'}",
        settings=Settings(
            home=home,
            destinations={
                destination: DestinationSettings(
                    client_id=CLIENT_ID, client_secret=Secret(CLIENT_SECRET), **endpoints
                )
            },
        ),
        clock=clock,
        secret_box=SecretBox([generate_key()]),
    )


@pytest.fixture
def quickbooks(tmp_path: Path) -> Iterator[tuple[Engine, QuickBooksEmulator, ManualClock]]:
    clock = ManualClock()
    emulator = QuickBooksEmulator(clock)
    emulator.add_company("9130000000000001", "Fake Books Inc")
    emulator.oauth.add_client(CLIENT_ID, CLIENT_SECRET)
    with emulator.start() as server:
        engine = engine_for("quickbooks", server, emulator.endpoints(server.url), clock, tmp_path)
        try:
            yield engine, emulator, clock
        finally:
            engine.close()


@pytest.fixture
def xero(tmp_path: Path) -> Iterator[tuple[Engine, XeroEmulator, ManualClock]]:
    clock = ManualClock()
    emulator = XeroEmulator(clock)
    emulator.add_organisation("Demo UK", "t-uk")
    emulator.add_organisation("Demo US", "t-us", base_currency="USD")
    emulator.oauth.add_client(CLIENT_ID, CLIENT_SECRET)
    with emulator.start() as server:
        engine = engine_for("xero", server, emulator.endpoints(server.url), clock, tmp_path)
        try:
            yield engine, emulator, clock
        finally:
            engine.close()


def test_quickbooks_consent_refresh_rotation_and_revoke(
    quickbooks: tuple[Engine, QuickBooksEmulator, ManualClock],
) -> None:
    engine, emulator, clock = quickbooks
    credential = engine.credentials.create("QuickBooks", "quickbooks")
    url = engine.credentials.authorization_url(credential.id, "http://127.0.0.1:1/cb")
    assert "scope=com.intuit.quickbooks.accounting" in url
    done = connect_interactively(engine, credential, open_url=browser)
    assert done.status is CredentialStatus.COMPLETE
    assert (done.tenant_id, done.tenant_name) == ("9130000000000001", "Fake Books Inc")
    assert done.access_token_expires_at == clock.now() + timedelta(hours=1)
    first_refresh = stored_tokens(engine, done.id).refresh_token
    clock.advance(3600)
    connection = engine.credentials.connection(done.id)
    rotated = stored_tokens(engine, done.id)
    assert rotated.refresh_token != first_refresh  # rotated and stored
    assert emulator.oauth.stats["refreshes"] == 1
    assert connection.access_token == rotated.access_token
    engine.credentials.delete(done.id)
    assert emulator.oauth.stats["revocations"] == 1


def test_xero_consent_choice_single_use_refresh_tokens_and_grace(
    xero: tuple[Engine, XeroEmulator, ManualClock],
) -> None:
    engine, emulator, clock = xero
    credential = engine.credentials.create("Xero", "xero")
    url = engine.credentials.authorization_url(credential.id, "http://127.0.0.1:1/cb")
    assert "offline_access" in url and "accounting.invoices" in url
    with pytest.raises(TenantChoiceRequired) as choice:
        connect_interactively(engine, credential, open_url=browser)
    assert {c.name for c in choice.value.choices} == {"Demo UK", "Demo US"}
    done = engine.credentials.choose_tenant(credential.id, "t-us")
    assert (done.tenant_id, done.tenant_name) == ("t-us", "Demo US")
    spent = stored_tokens(engine, done.id).refresh_token
    assert spent is not None
    clock.advance(1800)
    engine.credentials.connection(done.id)  # refreshes: the old refresh token is now spent
    assert stored_tokens(engine, done.id).refresh_token != spent

    def reuse(token: Secret) -> httpx.Response:
        return httpx.post(
            emulator.endpoints(server_url(engine))["token_url"],
            data={"grant_type": "refresh_token", "refresh_token": token.reveal()},
            auth=(CLIENT_ID, CLIENT_SECRET),
        )

    within_grace = reuse(spent)
    assert within_grace.status_code == 200  # Xero repeats its answer for 30 minutes
    clock.advance(31 * 60)
    after_grace = reuse(spent)
    assert after_grace.status_code == 400
    assert after_grace.json() == {"error": "invalid_grant"}


def server_url(engine: Engine) -> str:
    return engine.credentials.endpoints("xero").token_url.rsplit("/connect/token", 1)[0]


def test_cli_credentials_create_completes_through_a_loopback_redirect(tmp_path: Path) -> None:
    emulator = QuickBooksEmulator()
    emulator.add_company("9130000000000002", "CLI Books")
    emulator.oauth.add_client(CLIENT_ID, CLIENT_SECRET)
    with emulator.start() as server:
        endpoints = emulator.endpoints(server.url)
        env: dict[str, Any] = {
            **os.environ,
            "BILLBRIDGE_HOME": str(tmp_path),
            "BILLBRIDGE_SECRET_KEY": generate_key(),
            "BILLBRIDGE_QUICKBOOKS_CLIENT_ID": CLIENT_ID,
            "BILLBRIDGE_QUICKBOOKS_CLIENT_SECRET": CLIENT_SECRET,
            "BILLBRIDGE_QUICKBOOKS_API_URL": endpoints["api_base_url"],
            "BILLBRIDGE_QUICKBOOKS_AUTHORIZE_URL": endpoints["authorize_url"],
            "BILLBRIDGE_QUICKBOOKS_TOKEN_URL": endpoints["token_url"],
            "BILLBRIDGE_QUICKBOOKS_REVOKE_URL": endpoints["revoke_url"],
        }
        env.pop("BILLBRIDGE_DATABASE_URL", None)
        script = str(Path(sys.executable).with_name("billbridge"))
        process = subprocess.Popen(
            [script, "credentials", "create", "quickbooks", "--name", "Books", "--no-browser"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert process.stderr is not None
        url = ""
        for line in process.stderr:
            if line.startswith("http"):
                url = line.strip()
                break
        assert url.startswith(endpoints["authorize_url"])
        # The person approves; the provider sends the browser to billbridge's loopback listener.
        httpx.get(url, follow_redirects=True, timeout=10)
        stdout, stderr = process.communicate(timeout=30)
        assert process.returncode == 0, stderr
        assert "connected Books: quickbooks CLI Books (9130000000000002)" in stdout
        listed = subprocess.run(
            [script, "credentials", "list"], capture_output=True, text=True, env=env, check=True
        ).stdout
        assert "Books" in listed and "COMPLETE" in listed
        assert CLIENT_SECRET not in listed + stdout + stderr
