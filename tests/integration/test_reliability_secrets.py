"""Secrets: no token or client secret anywhere people or machines can read them.

A full life against both emulators: an OAuth app stored in the database (its secret
encrypted), consent for QuickBooks and Xero, deliveries, a refresh before expiry, a refresh
after a 401, then a revoked connection whose refresh is refused (``invalid_grant``): runs end
AUTH_FAILED and events are raised. Then every access token, refresh token and authorization
code the emulators issued, and every client secret, is looked for in:

* the logs (every logger, DEBUG), standard output and error;
* the CLI's output (credentials, integrations, runs, events, skips; tables and JSON);
* runs, attempts, events and skips as the API returns them, and ``repr`` of credentials;
* the text of every exception raised along the way;
* a raw dump of every table of the database, and on SQLite the database and WAL files'
  bytes themselves (what a backup or a stolen disk would show).

A secret is also looked for by its first 16 characters, so a truncated copy is caught too.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import attrs
import pytest
from benchmarks.bills import account_id
from click.testing import CliRunner
from sqlalchemy import inspect, text
from test_reliability_world import (
    CLIENT_SECRET,
    START,
    Emulators,
    make_engine,
    prepare,
    running_emulators,
    submit,
)

import fakebooks_plugin as fake
from billbridge.cli import _State, main
from billbridge.domain.models import CredentialStatus, RunStatus, dumps
from billbridge.engine import Engine
from billbridge.errors import AuthenticationFailed, BillbridgeError
from billbridge.secrets import generate_key
from billbridge.store import atomically
from billbridge.testing.emulation.clock import ManualClock
from support import ACME, ACME_BILL, stored_tokens

STORED_SECRET = "stored-app-secret-5d8e2b71c0"


def test_tokens_and_client_secrets_never_appear(
    database_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = ManualClock(start=START)
    errors: list[BaseException] = []
    with running_emulators(clock, limits=False) as world:
        engine = make_engine(database_url, world, tmp_path, generate_key())
        try:
            # An OAuth app kept in the database (the sandbox destination), secret encrypted.
            engine.credentials.configure_app(
                "quickbooks_sandbox", client_id="stored-app", client_secret=STORED_SECRET
            )
            prepared = prepare(engine, world, quickbooks=4, xero=4)
            submit(engine, quickbooks=2, xero=2)
            assert engine.deliver_pending().completed == 4

            clock.advance(3700)  # both access tokens expired: refreshed before use
            submit(engine, quickbooks=1, xero=1, start=3)
            assert engine.deliver_pending().completed == 2

            world.quickbooks.oauth.expire_access_tokens()  # a 401: refreshed, sent again
            world.xero.oauth.expire_access_tokens()
            submit(engine, quickbooks=1, xero=1, start=4)
            assert engine.deliver_pending().completed == 2
            refreshes = {
                "quickbooks": world.quickbooks.oauth.stats["refreshes"],
                "xero": world.xero.oauth.stats["refreshes"],
            }
            assert refreshes == {"quickbooks": 2, "xero": 2}

            # The user disconnects the app at the provider; the next refresh is refused.
            for credential_id in prepared.credentials.values():
                engine.credentials.revoke(credential_id)
            clock.advance(3700)
            world.add_accounts(6, 6)
            prepare_more(engine, world)
            submit(engine, quickbooks=1, xero=1, start=5)
            report = engine.deliver_pending()
            assert report.statuses == {RunStatus.AUTH_FAILED.value: 2}
            for credential_id in prepared.credentials.values():
                stored = engine.credentials.get(credential_id)
                assert stored.status is CredentialStatus.NEEDS_RECONNECT
                try:
                    engine.credentials.connection(credential_id)
                except AuthenticationFailed as exc:
                    errors.append(exc)
            assert len(errors) == 2

            cli = cli_output(engine)
            api = "\n".join(
                [
                    *(repr(r) for r in engine.runs.list(limit=None)),
                    *(
                        repr(a)
                        for r in engine.runs.list(limit=None)
                        for a in engine.runs.attempts(r.id)
                    ),
                    *(repr(e) for e in engine.events.list()),
                    *(repr(s) for s in engine.skips.list(limit=None)),
                    *(repr(c) for c in engine.credentials.list()),
                ]
            )
            dump = database_dump(engine)
            raw = raw_files(database_url)

            secrets = [
                *world.quickbooks.oauth._access,
                *world.quickbooks.oauth._refresh,
                *world.quickbooks.oauth._codes,
                *world.xero.oauth._access,
                *world.xero.oauth._refresh,
                *world.xero.oauth._codes,
                CLIENT_SECRET,
                STORED_SECRET,
            ]
            # 3 token pairs per provider (consent, two refreshes) and the consent codes.
            assert len(secrets) == 2 * (3 + 3 + 1) + 2
        finally:
            engine.close()
    captured = capsys.readouterr()
    places = {
        "logs": caplog.text,
        "stdout and stderr": captured.out + captured.err,
        "CLI output": cli,
        "runs, attempts, events, skips, credentials": api,
        "exceptions": "\n".join(f"{e!s} {e!r} {getattr(e, 'detail', '')}" for e in errors),
        "database tables": dump,
        "database files": raw,
    }
    # The scans are not empty: they really hold what they should.
    assert prepared.credentials["xero"] in dump and "AUTH_FAILED" in api
    assert "Reconnect needed" in cli
    assert caplog.records, "nothing was logged at all"
    for where, content in places.items():
        for secret in secrets:
            for needle in {secret, secret[:16]}:
                assert needle not in content, f"a secret leaked into {where}"


def prepare_more(engine: Engine, world: Emulators) -> None:
    """Map the accounts added after the revocation (QB 5-6, XE 5-6) like the first ones."""
    engine.mappings.create_many(
        [
            {
                "entity": "Account",
                "entity_id": account_id(prefix, n),
                "external_system": key,
                "external_table": table,
                "external_id": externals[n],
            }
            for key, prefix, table, externals in (
                ("quickbooks", "QB", "Customer", world.customers),
                ("xero", "XE", "Contact", world.contacts),
            )
            for n in (5, 6)
        ]
    )


def cli_output(engine: Engine) -> str:
    """What the CLI prints about credentials, integrations, runs, events and skips."""
    runner = CliRunner()
    state = _State(None)
    state._engine = engine
    commands = [
        ["credentials", "list"],
        ["credentials", "list", "--json"],
        ["integrations", "list"],
        ["integrations", "list", "--json"],
        ["runs", "list"],
        ["runs", "list", "--json"],
        ["events", "list"],
        ["events", "list", "--json"],
        ["skips", "list", "--json"],
    ]
    output = []
    for args in commands:
        result = runner.invoke(main, args, obj=state, catch_exceptions=False)
        output.append(result.output)
        assert result.exit_code == 0, result.output
    return "\n".join(output)


def database_dump(engine: Engine) -> str:
    """Every row of every table, as text."""
    lines = []
    with engine.db.engine.connect() as connection:
        for table in inspect(connection).get_table_names():
            for row in connection.execute(text(f'SELECT * FROM "{table}"')):
                lines.append(f"{table}: {row!r}")
    return "\n".join(lines)


def raw_files(database_url: str) -> str:
    """On SQLite, the bytes of the database and its WAL, as text (else nothing)."""
    if not database_url.startswith("sqlite:///"):
        return ""
    path = Path(database_url.removeprefix("sqlite:///"))
    parts = [p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists()]
    return b"".join(parts).decode("latin-1")


def test_exceptions_from_the_token_endpoint_carry_no_secret(
    database_url: str, tmp_path: Path
) -> None:
    """A refused consent and a failing token endpoint: the errors name no secret."""
    clock = ManualClock(start=START)
    with running_emulators(clock, limits=False) as world:
        engine = make_engine(database_url, world, tmp_path, generate_key())
        try:
            credential = engine.credentials.create("Xero", "xero")
            url = engine.credentials.authorization_url(credential.id, "http://127.0.0.1:9/cb")
            with pytest.raises(BillbridgeError) as info:
                engine.credentials.complete("not-the-state", "made-up-code")
            text_of = f"{info.value!s} {info.value!r}"
            assert "made-up-code" not in text_of and CLIENT_SECRET not in text_of
            assert "state=" in url
            assert atomically(engine.uow, lambda uow: uow.tenants.states()) == []
        finally:
            engine.close()


# --- providers that echo secrets ----------------------------------------------------------------


def everything_people_see(world: Any, caplog: pytest.LogCaptureFixture) -> str:
    """Runs, attempts, events, the log and the CLI's JSON, as one text."""
    engine = world.engine
    runs = engine.runs.list(limit=None)
    parts = [repr(runs), repr(engine.events.list(limit=None)), caplog.text]
    parts += [repr(engine.runs.attempts(run.id)) for run in runs]
    state = _State(None)
    state._engine = engine
    for args in (["runs", "list", "--json"], ["events", "list", "--json"], ["credentials", "list"]):
        parts.append(CliRunner().invoke(main, args, obj=state).output)
    return "\n".join(parts)


@pytest.mark.parametrize("batch", [False], ids=["single"])
def test_a_token_endpoint_echoing_the_refresh_token_leaks_nothing(
    world: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    world.integration()
    world.map_account(ACME, "cust-acme")
    (credential,) = world.engine.credentials.list()
    refresh = stored_tokens(world.engine, credential.id).refresh_token.reveal()
    world.provider.token_override = (
        400,
        f'{{"error": "invalid_request", "error_description": "refresh token {refresh} is '
        f'malformed; you sent refresh_token={refresh}"}}',
        "application/json",
    )
    world.clock.advance(3600)  # the access token expired: delivering refreshes first
    world.engine.submit_bill(ACME_BILL, ACME)
    world.engine.deliver_pending()
    (run,) = world.engine.runs.list(limit=None)
    assert "invalid_request" in (run.error or "")  # the provider's words, redacted
    seen = everything_people_see(world, caplog)
    assert refresh not in seen and refresh[:16] not in seen
    assert "[redacted]" in seen


@pytest.mark.parametrize("batch", [True, False], ids=["batch", "single"])
def test_an_api_error_echoing_the_authorization_header_leaks_nothing(
    world: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    world.integration()
    world.map_account(ACME, "cust-acme")
    world.provider.refuse_customers.add("cust-acme")
    world.provider.echo_authorization = True
    world.engine.submit_bill(ACME_BILL, ACME)
    world.engine.deliver_pending()
    (credential,) = world.engine.credentials.list()
    access = stored_tokens(world.engine, credential.id).access_token.reveal()
    (run,) = world.engine.runs.list(limit=None)
    assert run.status is RunStatus.ERROR
    assert "Authorization: Bearer [redacted]" in (run.error or "")
    seen = everything_people_see(world, caplog)
    assert access not in seen and access[:16] not in seen


def test_credentials_serialise_without_tokens(world: Any) -> None:
    credential = fake.connect(world.engine, "Fake UK")
    for shown in (
        world.engine.credentials.get(credential.id),
        world.engine.credentials.list()[0],
        credential,
    ):
        text_forms = [dumps(shown), repr(shown), str(attrs.asdict(shown))]
        tokens = stored_tokens(world.engine, credential.id)
        for secret in (tokens.access_token, tokens.refresh_token):
            assert secret is not None
            assert all(secret.reveal() not in form for form in text_forms)
