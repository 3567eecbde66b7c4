"""Credentials: consent, TTL, single-use state, tokens at rest, refresh, revoke, secrets scan.

Everything runs against a real OAuth server over loopback HTTP (billbridge's emulator kit) and
on both SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import attrs
import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import text

import fakebooks_plugin as fake
from billbridge import Engine
from billbridge.cli import _State, main
from billbridge.cli.consent import connect_interactively
from billbridge.domain.clock import SystemClock
from billbridge.domain.models import Credential, CredentialStatus, EventType, Secret
from billbridge.errors import (
    AuthenticationFailed,
    CredentialError,
    TenantChoiceRequired,
    ValidationFailed,
)
from billbridge.plugin.manager import load_plugins
from billbridge.secrets import SecretBox, SecretKeyError, generate_key
from billbridge.settings import Settings
from billbridge.store import atomically
from billbridge.testing.emulation.clock import ManualClock
from billbridge.testing.emulation.server import serve
from support import ACME, ACME_BILL, World, stored_tokens

REDIRECT = fake.REDIRECT
make_engine = fake.make_engine
visit_consent = fake.visit_consent


@pytest.fixture
def batch() -> bool:
    """Credentials do not depend on how bills are sent: one variant of the shared world."""
    return False


def connect(world: World, name: str = "Fake UK") -> Credential:
    return fake.connect(world.engine, name)


# --- lifecycle ---------------------------------------------------------------------------------


def test_a_new_credential_is_incomplete_for_ten_minutes(world: World) -> None:
    credential = world.engine.credentials.create("Fake UK", "fakebooks")
    assert credential.status is CredentialStatus.INCOMPLETE
    assert credential.display_name == "Fake UK (Incomplete)"
    assert credential.expires_at == credential.created_at + timedelta(minutes=10)
    assert [c.display_name for c in world.engine.credentials.list()] == ["Fake UK (Incomplete)"]
    world.clock.advance(601)
    assert world.engine.credentials.list() == []


def test_the_consent_flow_completes_the_credential(world: World) -> None:
    credential = world.engine.credentials.create("Fake UK", "fakebooks")
    url = world.engine.credentials.authorization_url(credential.id, REDIRECT)
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(f"{world.server.url}/authorize?")
    assert query["scope"] == ["offline_access accounting"]
    assert query["client_id"] == [fake.CLIENT_ID]
    assert len(query["state"][0]) >= 40
    params = visit_consent(url)
    done = world.engine.credentials.complete(params["state"], params["code"])
    assert done.status is CredentialStatus.COMPLETE
    assert done.display_name == "Fake UK"
    assert done.tenant_id == "t-uk"
    assert done.tenant_name == "Fake UK Ltd"
    assert done.expires_at is None
    assert done.access_token_expires_at == world.clock.now() + timedelta(seconds=1800)
    assert done.scopes == ("offline_access", "accounting")
    world.clock.advance(3600)  # complete credentials do not expire
    assert world.engine.credentials.get(done.id).status is CredentialStatus.COMPLETE


def test_state_is_single_use_and_must_be_known(world: World) -> None:
    credential = world.engine.credentials.create("Fake UK", "fakebooks")
    params = visit_consent(world.engine.credentials.authorization_url(credential.id, REDIRECT))
    with pytest.raises(CredentialError, match="state is unknown"):
        world.engine.credentials.complete("forged-state", params["code"])
    world.engine.credentials.complete(params["state"], params["code"])
    with pytest.raises(CredentialError, match="already used"):
        world.engine.credentials.complete(params["state"], params["code"])


def test_a_late_callback_is_refused_and_the_credential_removed(world: World) -> None:
    credential = world.engine.credentials.create("Fake UK", "fakebooks")
    params = visit_consent(world.engine.credentials.authorization_url(credential.id, REDIRECT))
    world.clock.advance(11 * 60)
    with pytest.raises(CredentialError):
        world.engine.credentials.complete(params["state"], params["code"])
    assert world.engine.credentials.list() == []
    assert world.provider.oauth.stats["codes"] == 0  # nothing was exchanged


def test_access_denied_is_a_clear_error_and_nothing_is_saved(world: World) -> None:
    credential = world.engine.credentials.create("Fake UK", "fakebooks")
    world.provider.oauth.deny = True
    params = visit_consent(world.engine.credentials.authorization_url(credential.id, REDIRECT))
    assert params["error"] == "access_denied"
    with pytest.raises(CredentialError, match=r"refused access \(access_denied"):
        world.engine.credentials.complete(params["state"], error=params["error"])
    assert world.engine.credentials.get(credential.id).status is CredentialStatus.INCOMPLETE
    assert stored_tokens(world.engine, credential.id).access_token is None


@pytest.mark.parametrize(
    ("status", "body", "content_type", "message"),
    [
        (400, '{"error": "invalid_grant"}', "application/json", "invalid_grant"),
        (500, "upstream exploded", "text/plain", "HTTP 500"),
        (200, "<html>login</html>", "text/html", "not JSON"),
        (
            200,
            '{"token_type": "bearer"}',
            "application/json",
            "token response that is not valid OAuth 2.0",
        ),
    ],
)
def test_token_endpoint_failures_save_nothing(
    world: World, status: int, body: str, content_type: str, message: str
) -> None:
    credential = world.engine.credentials.create("Fake UK", "fakebooks")
    params = visit_consent(world.engine.credentials.authorization_url(credential.id, REDIRECT))
    world.provider.token_override = (status, body, content_type)
    with pytest.raises(CredentialError, match=message):
        world.engine.credentials.complete(params["state"], params["code"])
    stored = world.engine.credentials.get(credential.id)
    assert stored.status is CredentialStatus.INCOMPLETE
    assert stored_tokens(world.engine, credential.id).access_token is None


def test_several_tenants_ask_for_a_choice(world: World) -> None:
    world.provider.tenants = ["t-uk", "t-us"]
    credential = world.engine.credentials.create("Fake", "fakebooks")
    params = visit_consent(world.engine.credentials.authorization_url(credential.id, REDIRECT))
    with pytest.raises(TenantChoiceRequired) as choice:
        world.engine.credentials.complete(params["state"], params["code"])
    assert [c.tenant_id for c in choice.value.choices] == ["t-uk", "t-us"]
    with pytest.raises(CredentialError):
        world.engine.credentials.choose_tenant(credential.id, "t-elsewhere")
    done = world.engine.credentials.choose_tenant(credential.id, "t-us")
    assert (done.status, done.tenant_id, done.tenant_name) == (
        CredentialStatus.COMPLETE,
        "t-us",
        "Fake US Inc",
    )


def test_a_chosen_tenant_can_be_given_with_the_callback(world: World) -> None:
    world.provider.tenants = ["t-uk", "t-us"]
    credential = world.engine.credentials.create("Fake", "fakebooks")
    params = visit_consent(world.engine.credentials.authorization_url(credential.id, REDIRECT))
    done = world.engine.credentials.complete(params["state"], params["code"], tenant_id="t-us")
    assert done.tenant_id == "t-us"


def test_create_validates(world: World) -> None:
    with pytest.raises(ValidationFailed) as info:
        world.engine.credentials.create(" ", "sage")
    assert {e.path for e in info.value.errors} == {"/name", "/destination"}
    assert world.engine.credentials.list() == []


# --- connecting integrations ----------------------------------------------------------------------


def test_connect_disconnect_and_change(world: World) -> None:
    integration = world.engine.integrations.create(name="Fake", destination="fakebooks")
    incomplete = world.engine.credentials.create("Pending", "fakebooks")
    with pytest.raises(ValidationFailed, match="not complete"):
        world.engine.integrations.connect(integration.id, incomplete.id)
    first = connect(world, "First")
    connected = world.engine.integrations.connect(integration.id, first.id)
    assert connected.connected and connected.credential_id == first.id
    second = connect(world, "Second")
    changed = world.engine.integrations.connect(integration.id, second.id)
    assert changed.credential_id == second.id
    assert not world.engine.integrations.disconnect(integration.id).connected


def test_a_credential_for_another_destination_is_refused(world: World) -> None:
    integration = world.engine.integrations.create(name="Xero", destination="xero")
    credential = connect(world)
    with pytest.raises(ValidationFailed, match="is for fakebooks"):
        world.engine.integrations.connect(integration.id, credential.id)
    assert not world.engine.integrations.get(integration.id).connected


def test_deleting_a_credential_revokes_it_and_disconnects(world: World) -> None:
    integration = world.engine.integrations.create(name="Fake", destination="fakebooks")
    credential = connect(world)
    world.engine.integrations.connect(integration.id, credential.id)
    world.engine.credentials.delete(credential.id)
    assert world.provider.oauth.stats["revocations"] == 1
    assert not world.engine.integrations.get(integration.id).connected
    assert world.engine.credentials.list() == []


# --- tokens stay valid ------------------------------------------------------------------------------


def test_a_token_about_to_expire_is_refreshed_before_use(world: World) -> None:
    credential = connect(world)
    first_refresh = stored_tokens(world.engine, credential.id).refresh_token
    first = world.engine.credentials.connection(credential.id)
    assert world.provider.oauth.stats["refreshes"] == 0
    world.clock.advance(1800 - 60)  # inside the five-minute margin
    second = world.engine.credentials.connection(credential.id)
    assert second.access_token != first.access_token
    assert world.provider.oauth.stats["refreshes"] == 1
    assert fake.whoami(second) == {"tenants": ["t-uk"]}
    assert stored_tokens(world.engine, credential.id).refresh_token != first_refresh  # rotated


def test_a_401_refreshes_once_and_retries_once(world: World) -> None:
    credential = connect(world)
    world.provider.oauth.expire_access_tokens()  # the provider disagrees with our expiry
    assert world.engine.credentials.call(credential.id, fake.whoami) == {"tenants": ["t-uk"]}
    assert world.provider.oauth.stats["refreshes"] == 1
    calls: list[int] = []

    def always_401(connection: Any) -> None:
        calls.append(1)
        world.provider.oauth.expire_access_tokens()
        fake.whoami(connection)

    with pytest.raises(fake.TokenExpired):
        world.engine.credentials.call(credential.id, always_401)
    assert len(calls) == 2  # one retry, not a loop


def test_concurrent_users_of_an_expired_token_cause_one_refresh(world: World) -> None:
    credential = connect(world)
    world.clock.advance(1800)
    barrier = threading.Barrier(8)

    def use() -> str:
        barrier.wait()
        return world.engine.credentials.connection(credential.id).access_token.reveal()

    with ThreadPoolExecutor(8) as pool:
        tokens = set(pool.map(lambda _: use(), range(8)))
    assert world.provider.oauth.stats["refreshes"] == 1
    assert len(tokens) == 1


def _worker_connection(args: tuple[str, str, str, str, str, Any]) -> str:
    database_url, server_url, home, key, credential_id, barrier = args
    engine = make_engine(database_url, server_url, SystemClock(), Path(home), key)
    try:
        barrier.wait(30)
        return engine.credentials.connection(credential_id).access_token.reveal()
    finally:
        engine.close()


@pytest.mark.slow
def test_concurrent_processes_cause_one_refresh(database_url: str, tmp_path: Path) -> None:
    clock = SystemClock()
    provider = fake.Provider(clock)
    key = generate_key()
    with serve(provider.app) as server:
        engine = make_engine(database_url, server.url, clock, tmp_path, key)
        try:
            credential = engine.credentials.create("Fake UK", "fakebooks")
            params = visit_consent(engine.credentials.authorization_url(credential.id, REDIRECT))
            done = engine.credentials.complete(params["state"], params["code"])
            # Make the stored token look expired to every process.
            expired = attrs.evolve(done, access_token_expires_at=engine.clock.now())
            atomically(engine.uow, lambda uow: uow.credentials.update(expired))
        finally:
            engine.close()
        context = multiprocessing.get_context("spawn")
        with context.Manager() as manager:
            barrier = manager.Barrier(4)
            args = (database_url, server.url, str(tmp_path), key, done.id, barrier)
            with context.Pool(4) as pool:
                tokens = pool.map(_worker_connection, [args] * 4)
    assert provider.oauth.stats["refreshes"] == 1
    assert len(set(tokens)) == 1


def test_invalid_grant_needs_reconnection_and_raises_an_event(world: World) -> None:
    integration = world.engine.integrations.create(name="Fake", destination="fakebooks")
    credential = connect(world)
    world.engine.integrations.connect(integration.id, credential.id)
    world.engine.credentials.revoke(credential.id)  # e.g. the user disconnected the app
    world.clock.advance(1800)
    with pytest.raises(AuthenticationFailed, match="reconnect"):
        world.engine.credentials.connection(credential.id)
    stored = world.engine.credentials.get(credential.id)
    assert stored.status is CredentialStatus.NEEDS_RECONNECT
    assert stored.display_name == "Fake UK (Reconnect needed)"
    events = world.engine.events.list(integration_id=integration.id)
    assert [e.type for e in events] == [EventType.AUTHENTICATION_ERROR]
    assert "reconnect" in events[0].message
    refused = world.provider.oauth.stats["refused"]
    with pytest.raises(AuthenticationFailed):
        world.engine.credentials.connection(credential.id)
    assert world.provider.oauth.stats["refused"] == refused  # not retried against the provider


# --- secrets at rest and in output ------------------------------------------------------------------


def test_secret_key_file_for_the_embedded_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("BILLBRIDGE_SECRET_KEY", raising=False)
    caplog.set_level(logging.WARNING)
    with Engine(settings=Settings(home=tmp_path)) as engine:
        assert engine.secret_box is engine.secret_box
    key_file = tmp_path / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert "created secret key file" in caplog.text
    assert key_file.read_text().strip() not in caplog.text


@pytest.mark.postgres
def test_postgres_without_a_secret_key_is_a_clear_error(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BILLBRIDGE_SECRET_KEY", raising=False)
    with Engine(postgres_url, settings=Settings(home=tmp_path)) as engine:
        with pytest.raises(SecretKeyError, match="BILLBRIDGE_SECRET_KEY"):
            engine.credentials.create("x", "xero")
        assert not (tmp_path / "secret.key").exists()


def test_a_bad_secret_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BILLBRIDGE_SECRET_KEY", "not-a-key-at-all")
    with pytest.raises(SecretKeyError, match="not a valid Fernet key") as info:
        SecretBox.from_env()
    assert "not-a-key-at-all" not in str(info.value)


def test_key_rotation(database_url: str, tmp_path: Path) -> None:
    clock = ManualClock()
    provider = fake.Provider(clock)
    old_key, new_key = generate_key(), generate_key()
    with serve(provider.app) as server:
        engine = make_engine(database_url, server.url, clock, tmp_path, old_key)
        try:
            _rotate(
                World(engine, provider, server, clock, old_key, database_url, tmp_path),
                old_key,
                new_key,
            )
        finally:
            engine.close()


def _rotate(world: World, old_key: str, new_key: str) -> None:
    credential = connect(world)
    world.engine.use_secret_keys(SecretBox([new_key, old_key]))
    assert world.engine.rotate_secrets() == {
        "credentials": 1,
        "oauthApps": 1,
        "destinationSecrets": 0,
        "webhookSecrets": 0,
    }
    world.engine.use_secret_keys(SecretBox([new_key]))
    assert stored_tokens(world.engine, credential.id).access_token is not None
    with world.engine.db.engine.connect() as conn:
        stored = conn.execute(text("SELECT access_token_enc FROM credentials")).scalar_one()
    with pytest.raises(SecretKeyError):
        SecretBox([old_key]).decrypt(stored)  # re-encrypted: the old key alone cannot open it


def test_tokens_never_appear_anywhere(
    world: World, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    integration = world.engine.integrations.create(name="Fake", destination="fakebooks")
    credential = connect(world)
    world.engine.integrations.connect(integration.id, credential.id)
    world.clock.advance(1800)
    world.engine.credentials.connection(credential.id)
    world.engine.credentials.revoke(credential.id)
    world.clock.advance(1800)
    failure = None
    try:
        world.engine.credentials.connection(credential.id)
    except AuthenticationFailed as exc:
        failure = exc
    tokens = [*world.provider.oauth._access, *world.provider.oauth._refresh]
    assert len(tokens) == 4
    secrets_to_hide = [*tokens, fake.CLIENT_SECRET]

    runner = CliRunner()
    state = _State(None)
    state._engine = world.engine
    cli_output = "".join(
        runner.invoke(main, args, obj=state, catch_exceptions=False).output
        for args in (
            ["credentials", "list"],
            ["credentials", "list", "--json"],
            ["integrations", "list", "--json"],
        )
    )
    with world.engine.db.engine.connect() as conn:
        dump = "\n".join(
            repr(row)
            for table in ("credentials", "oauth_apps", "integrations", "events", "runs")
            for row in conn.execute(text(f"SELECT * FROM {table}"))
        )
    places = {
        "logs": caplog.text,
        "cli": cli_output,
        "stdout": capsys.readouterr().out,
        "repr": repr(world.engine.credentials.get(credential.id))
        + repr(world.engine.credentials.list()),
        "error": f"{failure!s} {failure!r}",
        "database": dump,
    }
    assert credential.id in dump  # the dump really holds the credential row
    for where, content in places.items():
        for secret in secrets_to_hide:
            assert secret not in content, f"a secret leaked into {where}"


# --- the command line ---------------------------------------------------------------------------------


def test_loopback_consent_completes_from_the_command_line(world: World) -> None:
    credential = world.engine.credentials.create("Fake UK", "fakebooks")
    seen: list[str] = []

    def browser(url: str) -> None:
        seen.append(url)
        # The "browser" follows the provider's redirect to billbridge's loopback listener.
        threading.Thread(target=lambda: httpx.get(url, follow_redirects=True), daemon=True).start()

    done = connect_interactively(world.engine, credential, open_url=browser)
    assert done.status is CredentialStatus.COMPLETE
    assert "redirect_uri=http%3A%2F%2F127.0.0.1%3A" in seen[0]


def test_a_stray_request_to_the_loopback_listener_does_not_abort_the_consent(
    world: World,
) -> None:
    credential = world.engine.credentials.create("Fake UK", "fakebooks")
    strays: list[int] = []

    def browser(url: str) -> None:
        redirect = dict(parse_qsl(urlsplit(url).query))["redirect_uri"]

        def visit() -> None:
            # Something else on this machine calls the listener first: a guessed state, and
            # an error without one. Both are refused; the real callback still completes.
            strays.append(httpx.get(redirect, params={"state": "guess", "code": "x"}).status_code)
            strays.append(httpx.get(redirect, params={"error": "access_denied"}).status_code)
            httpx.get(url, follow_redirects=True)

        threading.Thread(target=visit, daemon=True).start()

    done = connect_interactively(world.engine, credential, open_url=browser)
    assert done.status is CredentialStatus.COMPLETE
    assert strays == [400, 400]


def test_cli_credentials_commands(world: World) -> None:
    credential = connect(world)
    integration = world.engine.integrations.create(name="Fake", destination="fakebooks")
    runner = CliRunner()
    state = _State(None)
    state._engine = world.engine

    def run(*args: str) -> Any:
        return runner.invoke(main, list(args), obj=state, catch_exceptions=False)

    listed = run("credentials", "list").output
    assert "Fake UK" in listed and "COMPLETE" in listed and "t-uk" in listed
    assert run("integrations", "connect", integration.id, credential.id).exit_code == 0
    assert world.engine.integrations.get(integration.id).connected
    assert run("integrations", "disconnect", integration.id).exit_code == 0
    missing = run("credentials", "delete", "nope")
    assert missing.exit_code == 1 and "credential nope not found" in missing.stderr
    assert run("credentials", "delete", credential.id).exit_code == 0
    assert run("credentials", "list", "--json").output.strip() == "[]"


def test_generate_key_prints_a_usable_key() -> None:
    key = CliRunner().invoke(main, ["secrets", "generate-key"]).output.strip()
    box = SecretBox([key])
    assert box.decrypt(box.encrypt(Secret("x"))).reveal() == "x"


def test_no_oauth_app_is_a_clear_error(database_url: str, tmp_path: Path) -> None:
    with Engine(
        database_url,
        settings=Settings(home=tmp_path),
        plugins=load_plugins(entry_points=False, extra=[("fakebooks", fake.plugin(batch=False))]),
        secret_box=SecretBox([generate_key()]),
    ) as engine:
        credential = engine.credentials.create("x", "fakebooks")
        os.environ.pop("BILLBRIDGE_FAKEBOOKS_CLIENT_ID", None)
        with pytest.raises(CredentialError, match="no OAuth app configured for fakebooks"):
            engine.credentials.authorization_url(credential.id, REDIRECT)


def test_a_refresh_holds_no_database_lock_while_the_provider_answers(world: World) -> None:
    credential = connect(world)
    integration = world.engine.integrations.create(name="Writer", destination="fakebooks")
    world.clock.advance(1800)  # the access token has expired: the next connection refreshes
    world.provider.token_gate = threading.Event()
    refreshing = threading.Thread(
        target=world.engine.credentials.connection, args=(credential.id,), daemon=True
    )
    refreshing.start()
    try:
        assert world.provider.token_waiting.wait(10), "the refresh never reached the provider"
        # While the provider takes its time, the rest of billbridge writes as usual (on SQLite a
        # transaction open around the exchange would hold the write lock for its whole length).
        started = time.monotonic()
        world.engine.integrations.disable(integration.id)
        world.engine.submit_bill(ACME_BILL, ACME)
        assert time.monotonic() - started < 5
    finally:
        world.provider.token_gate.set()
        refreshing.join(10)
    assert world.provider.oauth.stats["refreshes"] == 1
