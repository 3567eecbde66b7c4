"""The conformance kit itself: it passes a good plugin and fails broken ones, saying why.

The good plugin is the ``fakebooks`` test destination (with its batch hook) against its fake
provider over real HTTP. The broken ones are variations of a small webhook-like plugin, each
run as its own pytest session with ``pytester`` so that their failures stay inside it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

import fakebooks_plugin as fake
from billbridge import hookimpl
from billbridge.domain.models import Secret
from billbridge.plugin.contract import Connection, ResolvedMappings
from billbridge.testing import checks
from billbridge.testing.conformance import (
    SAMPLE_ACCOUNT_ID,
    DestinationConformance,
    Harness,
    OAuthTestApp,
    RecordingMiddleware,
    obtain_tokens,
    refresh_tokens,
)
from billbridge.testing.emulation.clock import ManualClock
from billbridge.testing.emulation.server import serve

pytest_plugins = ["pytester"]


# --- the kit passes a plugin that keeps the contract ---------------------------------------------


def fakebooks_harness(client_auth: str, provider_auth: tuple[str, ...]) -> Iterator[Harness]:
    """A harness for the fakebooks plugin declaring ``client_auth``, against a provider that
    accepts ``provider_auth``; tokens are obtained as the plugin declares."""
    provider = fake.Provider(ManualClock(), client_auth=provider_auth)
    recorder = RecordingMiddleware(provider.app)
    with serve(recorder) as server, httpx.Client(timeout=5) as http:
        app = OAuthTestApp(
            authorize_url=f"{server.url}/authorize",
            token_url=f"{server.url}/token",
            revoke_url=f"{server.url}/revoke",
            client_id=fake.CLIENT_ID,
            client_secret=fake.CLIENT_SECRET,
        )
        tokens = app.obtain_tokens(http, attrs.evolve(fake.OAUTH, client_auth=client_auth))
        yield Harness(
            connection=Connection(
                destination=fake.KEY,
                tenant_id="t-uk",
                access_token=Secret(tokens.access_token),
                http=http,
                api_base_url=f"{server.url}/api",
            ),
            documents=lambda: provider.invoices,
            mappings=ResolvedMappings({("Account", SAMPLE_ACCOUNT_ID, "Customer"): "cust-1"}),
            requests=lambda: recorder.requests,
            lose_next_response=lambda: provider.faults.script("lost"),
            oauth_callback=tokens.oauth_callback(),
            oauth_app=app,
            pay=provider.paid.add,
            void=provider.voided.add,
        )


class TestFakebooksConforms(DestinationConformance):
    """The kit against the fakebooks test plugin, given as an object (it is not installed)."""

    destination = fake.KEY
    plugin = fake.plugin(batch=True, status=True)
    valid_configs = [{}]
    invalid_configs = [({"memo": 5}, "/memo"), ({"colour": "red"}, "/colour")]

    @pytest.fixture
    def harness(self) -> Iterator[Harness]:
        yield from fakebooks_harness("basic", ("basic",))


class TestFakebooksWithBodyClientAuthConforms(DestinationConformance):
    """The same plugin declaring ``client_auth="body"``, against a provider that accepts client
    credentials in the form body only: the kit's tokens and the core's exchange use the body."""

    destination = fake.KEY
    plugin = fake.plugin(batch=False, client_auth="body")
    valid_configs = [{}]

    @pytest.fixture
    def harness(self) -> Iterator[Harness]:
        yield from fakebooks_harness("body", ("body",))


def test_the_kits_oauth_check_ran_for_both_client_authentications(
    pytester: pytest.Pytester,
) -> None:
    # Guards against the two classes above skipping the check they exist for.
    pytester.makepyfile(
        test_both=textwrap.dedent(
            """
            from test_conformance_kit import (
                TestFakebooksConforms as TestBasic,
                TestFakebooksWithBodyClientAuthConforms as TestBody,
            )
            """
        )
    )
    pytester.syspathinsert(str(Path(__file__).parent))
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-k", "oauth or authenticate")
    result.assert_outcomes(passed=4)


#: A plugin test module whose plugin declares one client authentication while its fake
#: provider accepts only the other; tokens for the other checks are obtained the provider's way.
MISMATCHED = """
import attrs
import httpx
import pytest

import fakebooks_plugin as fake
from billbridge.domain.models import Secret
from billbridge.plugin.contract import Connection
from billbridge.testing.conformance import DestinationConformance, Harness, OAuthTestApp
from billbridge.testing.emulation.clock import ManualClock
from billbridge.testing.emulation.server import serve


class TestMismatched(DestinationConformance):
    destination = fake.KEY
    plugin = fake.plugin(batch=False, client_auth="{declared}")
    valid_configs = [{{}}]

    @pytest.fixture
    def harness(self):
        provider = fake.Provider(ManualClock(), client_auth=("{accepted}",))
        with serve(provider.app) as server, httpx.Client(timeout=5) as http:
            app = OAuthTestApp(
                authorize_url=f"{{server.url}}/authorize",
                token_url=f"{{server.url}}/token",
                client_id=fake.CLIENT_ID,
                client_secret=fake.CLIENT_SECRET,
            )
            tokens = app.obtain_tokens(http, fake.OAUTH, client_auth="{accepted}")
            yield Harness(
                connection=Connection(
                    destination=fake.KEY,
                    tenant_id="t-uk",
                    access_token=Secret(tokens.access_token),
                    http=http,
                    api_base_url=f"{{server.url}}/api",
                ),
                documents=lambda: provider.invoices,
                oauth_callback=tokens.oauth_callback(),
                oauth_app=app,
            )
"""


@pytest.mark.parametrize(("declared", "accepted"), [("basic", "body"), ("body", "basic")])
def test_a_client_auth_the_provider_refuses_fails_in_the_kit(
    pytester: pytest.Pytester, declared: str, accepted: str
) -> None:
    pytester.makepyfile(test_mismatched=MISMATCHED.format(declared=declared, accepted=accepted))
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-k", "oauth or authenticate")
    assert failed_tests(result) == {"test_oauth_tokens_are_obtained_as_the_core_obtains_them"}
    shows(
        result,
        "the fake provider refused the core exchanging the consent's code",
        "invalid_client",
        f"OAuthSpec.client_auth is {declared!r}",
        f"declare client_auth={accepted!r}",
    )


def test_the_token_helper_authenticates_as_the_spec_declares() -> None:
    provider = fake.Provider(ManualClock(), client_auth=("body",))
    with serve(provider.app) as server, httpx.Client(timeout=5) as http:
        endpoints = {
            "authorize_url": f"{server.url}/authorize",
            "token_url": f"{server.url}/token",
            "client_id": fake.CLIENT_ID,
            "client_secret": fake.CLIENT_SECRET,
        }
        with pytest.raises(AssertionError) as refused:
            obtain_tokens(http, oauth=fake.OAUTH, **endpoints)
        assert "invalid_client" in str(refused.value)
        assert "declare OAuthSpec(client_auth='body')" in str(refused.value)
        body = attrs.evolve(fake.OAUTH, client_auth="body")
        tokens = obtain_tokens(http, oauth=body, **endpoints)
        assert tokens.refresh_token
        refreshed = refresh_tokens(
            http,
            oauth=body,
            token_url=endpoints["token_url"],
            client_id=fake.CLIENT_ID,
            client_secret=fake.CLIENT_SECRET,
            refresh_token=tokens.refresh_token,
        )
        assert refreshed.access_token != tokens.access_token
    assert provider.oauth.stats["codes"] == 1
    assert provider.oauth.stats["refreshes"] == 1


# --- the kit fails plugins that break it ----------------------------------------------------------

#: A small, correct plugin with an in-memory fake; each broken variant changes one thing.
GOOD_PLUGIN = """
from __future__ import annotations

import threading
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from billbridge import hookimpl
from billbridge.plugin.contract import Destination, SendResult
from billbridge.errors import FieldError

PANEL = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Toy",
    "description": "A toy destination.",
    "type": "object",
    "properties": {
        "mode": {
            "title": "Mode",
            "description": "How to send.",
            "type": "string",
            "oneOf": [{"const": "fast", "title": "Fast"}, {"const": "safe", "title": "Safe"}],
            "default": "safe",
        },
        "apiKey": {
            "title": "API key",
            "description": "The receiver's key.",
            "type": "string",
            "writeOnly": True,
        },
    },
    "additionalProperties": False,
}


@hookimpl
def register_destinations():
    return [Destination(key="toy", title="Toy", schema=PANEL, external_tables=())]


@hookimpl
def validate_config(config):
    if config.get("apiKey", "x").startswith(" "):
        return [FieldError("/apiKey", "must not start with a space")]
    return []


CREATES = 1


@hookimpl
def send_bill(connection, bill, previous, idempotency_key):
    body = {"bill": bill.id, "version": bill.version, "id": previous and previous.external_id}
    for _ in range(CREATES):
        answer = connection.http.post(
            connection.api_base_url + "/invoices",
            json=body,
            headers={"Idempotency-Key": idempotency_key},
        ).json()
    return SendResult(external_id=answer["id"], created=previous is None)


class Fake:
    def __init__(self) -> None:
        self.invoices: dict[str, Any] = {}
        self.keys: dict[str, Any] = {}
        self.lock = threading.Lock()
        self.app = Starlette(routes=[Route("/invoices", self.write, methods=["POST"])])

    async def write(self, request: Request) -> JSONResponse:
        body = await request.json()
        key = request.headers["Idempotency-Key"]
        with self.lock:
            if key not in self.keys:
                invoice_id = body["id"] or str(len(self.invoices) + 1)
                self.invoices[invoice_id] = dict(body)
                self.keys[key] = {"id": invoice_id}
            return JSONResponse(self.keys[key])
"""

SUITE = """
import httpx
import pytest

import toy_plugin
from billbridge.plugin.contract import Connection
from billbridge.domain.models import Secret
from billbridge.testing.conformance import DestinationConformance, Harness, RecordingMiddleware
from billbridge.testing.emulation.server import serve


class TestToy(DestinationConformance):
    destination = "toy"
    plugin = toy_plugin
    valid_configs = [{"mode": "fast", "apiKey": "k"}]
    invalid_configs = [({"mode": "slow"}, "/mode"), ({"apiKey": " k"}, "/apiKey")]

    @pytest.fixture
    def harness(self):
        fake = toy_plugin.Fake()
        recorder = RecordingMiddleware(fake.app)
        with serve(recorder) as server, httpx.Client(timeout=5) as http:
            yield Harness(
                connection=Connection(
                    destination="toy",
                    tenant_id="toy",
                    access_token=Secret(""),
                    http=http,
                    api_base_url=server.url,
                ),
                documents=lambda: fake.invoices,
                requests=lambda: recorder.requests,
            )
"""


def run_kit(pytester: pytest.Pytester, plugin_source: str, *args: str) -> pytest.RunResult:
    """Run the kit against ``plugin_source`` in a pytest session of its own."""
    pytester.makepyfile(toy_plugin=plugin_source, test_toy=SUITE)
    pytester.syspathinsert()
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", "-rs", *args)


def broken(*replacements: tuple[str, str]) -> str:
    """The good plugin's source with some text replaced (each must be there)."""
    source = GOOD_PLUGIN
    for old, new in replacements:
        assert old in source, old
        source = source.replace(old, new)
    return source


def shows(result: pytest.RunResult, *texts: str) -> None:
    """Each text appears word for word in the session's output."""
    output = result.stdout.str()
    for text in texts:
        assert text in output, f"{text!r} not in:\n{output}"


def failed_tests(result: pytest.RunResult) -> set[str]:
    """The names of the test functions that failed in the inner session."""
    reports = result.reprec.getreports("pytest_runtest_logreport")  # type: ignore[attr-defined]
    return {report.nodeid.rsplit("::", 1)[-1] for report in reports if report.failed}


def test_the_toy_plugin_passes(pytester: pytest.Pytester) -> None:
    result = run_kit(pytester, GOOD_PLUGIN)
    result.assert_outcomes(passed=16, skipped=9)
    shows(
        result,
        "list_external_entities is not implemented",
        "does not use OAuth",
        "does not implement fetch_invoice_status",
    )


def test_a_misspelt_argument_name_fails(pytester: pytest.Pytester) -> None:
    source = broken(
        (
            "def send_bill(connection, bill, previous, idempotency_key):",
            "def send_bill(connection, bill, previous, idempotencykey):",
        ),
        ('"Idempotency-Key": idempotency_key}', '"Idempotency-Key": idempotencykey}'),
    )
    result = run_kit(pytester, source, "-k", "plugin_loads or argument_names or creates_once")
    assert failed_tests(result) == {
        "test_plugin_loads",
        "test_hooks_use_the_contracts_argument_names",
        "test_send_bill_creates_once_per_idempotency_key",
    }
    shows(
        result,
        "send_bill: argument 'idempotencykey' is not in the contract "
        "(did you mean 'idempotency_key'?)",
        "no plugin serves 'toy'",
    )


def test_a_send_bill_without_the_idempotency_key_fails(pytester: pytest.Pytester) -> None:
    # The plugin makes its own key up and leaves the core's out: pluggy would silently not pass
    # it, so only the kit can say so. The names it does take are all the contract's.
    source = broken(
        (
            "def send_bill(connection, bill, previous, idempotency_key):",
            "def send_bill(connection, bill, previous):",
        ),
        ('"Idempotency-Key": idempotency_key}', '"Idempotency-Key": f"{bill.id}/{bill.version}"}'),
    )
    result = run_kit(pytester, source, "-k", "plugin_loads or argument")
    assert failed_tests(result) == {"test_hooks_take_the_arguments_they_need"}
    shows(
        result,
        "send_bill: the implementation does not take 'idempotency_key', so pluggy never passes "
        "it, and it is needed: a delivery whose answer was lost is sent again with the same key",
        "(see docs/writing-a-destination.md, `send_bill`)",
    )


#: A batch hook for the toy plugin; ``{arguments}`` are the ones it takes.
BATCH_HOOK = """

@hookimpl
def send_bills(connection, {arguments}):
    return [send_bill(connection, d.bill, d.previous, d.idempotency_key) for d in deliveries]
"""


def test_a_send_bills_without_the_batch_key_fails(pytester: pytest.Pytester) -> None:
    # Each delivery's own key is there, but the batch request's key (what a resent batch is
    # recognised by) is left out.
    source = GOOD_PLUGIN + BATCH_HOOK.format(arguments="deliveries")
    result = run_kit(pytester, source, "-k", "argument")
    assert failed_tests(result) == {"test_hooks_take_the_arguments_they_need"}
    shows(
        result,
        "send_bills: the implementation does not take 'idempotency_key', so pluggy never "
        "passes it, and it is needed: a batch whose outcome is unknown is sent again",
        "send it as the batch request's idempotency key",
        "(see docs/writing-a-destination.md, `send_bills`)",
    )


def test_a_send_bills_with_the_batch_key_passes_the_argument_checks(
    pytester: pytest.Pytester,
) -> None:
    source = GOOD_PLUGIN + BATCH_HOOK.format(arguments="deliveries, idempotency_key")
    result = run_kit(pytester, source, "-k", "argument")
    result.assert_outcomes(passed=2)


#: A status read-back hook for the toy plugin; ``{total}`` and ``{state}`` are what it says.
STATUS_HOOK = """

from decimal import Decimal

from billbridge.plugin.contract import InvoiceState, InvoiceStatus


@hookimpl
def fetch_invoice_status(connection, documents):
    return [
        InvoiceStatus(external_id=d.external_id, state={state}, total={total})
        for d in documents
    ] + {extra}
"""


def test_a_status_hook_keeping_the_contract_passes(pytester: pytest.Pytester) -> None:
    hook = STATUS_HOOK.format(state="InvoiceState.UNPAID", total='Decimal("10.00")', extra="[]")
    result = run_kit(pytester, GOOD_PLUGIN + hook, "-k", "fetch_invoice_status or argument")
    result.assert_outcomes(passed=3)


def test_a_status_hook_answering_wrong_values_fails(pytester: pytest.Pytester) -> None:
    hook = STATUS_HOOK.format(
        state='"paid"',
        total="10.5",
        extra='[InvoiceStatus(external_id="someone else\'s", state=InvoiceState.PAID)]',
    )
    result = run_kit(pytester, GOOD_PLUGIN + hook, "-k", "fetch_invoice_status")
    assert failed_tests(result) == {"test_fetch_invoice_status_reads_documents_back"}
    shows(
        result,
        "fetch_invoice_status's answer:",
        "1: state 'paid' is not an InvoiceState",
        "1: total 10.5 must be a Decimal",
        'fetch_invoice_status answered for "someone else\'s", which it was not asked',
    )


def test_a_misspelt_hook_name_fails(pytester: pytest.Pytester) -> None:
    result = run_kit(
        pytester,
        broken(("def validate_config(", "def validate_configs(")),
        "-k",
        "plugin_loads or argument_names",
    )
    assert failed_tests(result) == {
        "test_plugin_loads",
        "test_hooks_use_the_contracts_argument_names",
    }
    shows(result, "'validate_configs' is not a billbridge hook (did you mean validate_config?)")


def test_a_panel_without_titles_fails(pytester: pytest.Pytester) -> None:
    source = broken(('"title": "Mode",', ""), ('"description": "The receiver\'s key.",', ""))
    result = run_kit(pytester, source, "-k", "panel")
    assert failed_tests(result) == {
        "test_panel_has_titles_and_descriptions",
        "test_panel_is_draft_07_and_meets_the_meta_schema",
    }
    shows(
        result,
        "/properties/mode: field 'mode' has no title",
        "/properties/apiKey: option 'apiKey' has no description",
    )


def test_bare_enums_and_readable_secrets_fail(pytester: pytest.Pytester) -> None:
    source = broken(
        (
            '"oneOf": [{"const": "fast", "title": "Fast"}, {"const": "safe", "title": "Safe"}]',
            '"enum": ["fast", "safe"]',
        ),
        ('"writeOnly": True,', ""),
    )
    result = run_kit(pytester, source, "-k", "panel")
    assert failed_tests(result) == {
        "test_panel_choices_are_labelled",
        "test_panel_secrets_are_write_only",
        "test_panel_is_draft_07_and_meets_the_meta_schema",
    }
    shows(
        result,
        "/properties/mode: bare enum ['fast', 'safe']",
        "/properties/apiKey: 'apiKey' looks like a secret but is not \"writeOnly\": true",
    )


def test_a_send_bill_that_creates_twice_fails(pytester: pytest.Pytester) -> None:
    # The fake dedupes on the idempotency key; a plugin that sends a fresh key per request
    # (here: a second request with another key) makes two documents for one delivery.
    source = broken(
        ("CREATES = 1", "CREATES = 2"),
        ('"Idempotency-Key": idempotency_key}', '"Idempotency-Key": idempotency_key + str(_)}'),
    )
    result = run_kit(pytester, source, "-k", "send_bill")
    assert "test_send_bill_creates_once_per_idempotency_key" in failed_tests(result)
    shows(result, "after one send_bill the fake holds new documents")


def test_an_update_that_creates_fails(pytester: pytest.Pytester) -> None:
    source = broken(('"id": previous and previous.external_id', '"id": None'))
    result = run_kit(pytester, source, "-k", "send_bill")
    assert failed_tests(result) == {"test_send_bill_updates_on_a_new_version"}
    shows(result, "it must update previous.external_id")


def test_invalid_configs_must_fail_where_expected(pytester: pytest.Pytester) -> None:
    source = broken(('.startswith(" ")', '.startswith("never")'))
    result = run_kit(pytester, source, "-k", "config")
    assert failed_tests(result) == {"test_invalid_configs_are_refused_at_their_path"}
    shows(result, "invalid_configs[1]: no error at /apiKey; errors: none")


def test_a_missing_plugin_says_what_failed_to_load(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_missing=textwrap.dedent(
            """
            from billbridge.testing.conformance import DestinationConformance

            class TestMissing(DestinationConformance):
                destination = "no_such_destination"
            """
        )
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-k", "plugin_loads")
    result.assert_outcomes(failed=1)
    shows(result, "no plugin serves 'no_such_destination'", "installed: quickbooks")


# --- the checks as functions -----------------------------------------------------------------------


def test_secret_words_are_whole_words() -> None:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "apiKey": {"type": "string"},
            "client_secret": {"type": "string"},
            "monkeyBusiness": {"type": "string"},
            "keyboardLayout": {"type": "string"},
            "sortKey": {"type": "string"},
        },
    }
    problems = checks.secret_problems(schema, not_secrets=["sortKey"])
    assert [p.split(":")[0] for p in problems] == [
        "/properties/apiKey",
        "/properties/client_secret",
    ]


def test_secrets_must_be_where_the_core_redacts_them() -> None:
    schema = {
        "type": "object",
        "properties": {
            "auth": {
                "type": "object",
                "properties": {"token": {"type": "string", "writeOnly": True}},
            },
            "headers": {
                "type": "object",
                "additionalProperties": {"type": "string", "writeOnly": True},
            },
            "password": {"type": "string", "writeOnly": True, "default": "hunter2"},
        },
    }
    problems = checks.secret_problems(schema)
    assert any(
        p.startswith("/properties/headers/additionalProperties: writeOnly inside") for p in problems
    )
    assert any(
        p.startswith("/properties/password: a writeOnly value must not carry 'default'")
        for p in problems
    )
    assert not any(p.startswith("/properties/auth") for p in problems)


def test_defaults_are_checked_against_their_field_with_refs() -> None:
    schema = {
        "definitions": {"positive": {"type": "integer", "minimum": 1}},
        "type": "object",
        "properties": {
            "retries": {"$ref": "#/definitions/positive", "default": 0},
            "name": {"type": "string", "examples": ["ok", 3]},
        },
    }
    assert checks.default_problems(schema) == [
        "/properties/retries: default 0 is invalid: 0 is less than the minimum of 1",
        "/properties/name: examples[1] 3 is invalid: 3 is not of type 'string'",
    ]


class _Plugin:
    """A plugin object holding hook functions as attributes (pluggy needs a hashable one)."""

    def __init__(self, **hooks: Any) -> None:
        self.__dict__.update(hooks)


def test_needed_arguments_are_named_with_why_and_where() -> None:
    @hookimpl
    def send_bill(bill: Any, previous: Any) -> None: ...

    @hookimpl(specname="send_bills")
    def batch(connection: Any, deliveries: Any) -> None: ...

    @hookimpl
    def preview_bill(bill: Any, account: Any) -> None: ...

    @hookimpl
    def validate_config(config: Any) -> None: ...

    plugin = _Plugin(
        send_bill=send_bill, batch=batch, preview_bill=preview_bill, validate_config=validate_config
    )
    problems = checks.needed_argument_problems(plugin)
    assert [p.split(", so pluggy")[0] for p in problems] == [
        "send_bills: the implementation does not take 'idempotency_key'",
        "preview_bill: the implementation does not take 'previous'",
        "send_bill: the implementation does not take 'idempotency_key'",
    ]
    assert all("docs/writing-a-destination.md" in p for p in problems)

    # A keyword-only argument is never passed either: it does not count as taken.
    @hookimpl
    def send_bill_kw(bill: Any, previous: Any, *, idempotency_key: str) -> None: ...

    kw_only = _Plugin(send_bill=send_bill_kw)
    assert len(checks.needed_argument_problems(kw_only)) == 1


def test_the_bundled_plugins_take_the_arguments_they_need() -> None:
    from billbridge.plugin.manager import load_plugins

    registry = load_plugins(blocked=())
    for name in ("quickbooks", "xero"):
        plugin = registry.pm.get_plugin(name)
        assert checks.needed_argument_problems(plugin) == [], name
        assert checks.hook_argument_problems(plugin) == [], name


def test_the_bundled_panels_pass_the_static_checks() -> None:
    from billbridge.plugin.manager import load_plugins

    registry = load_plugins(blocked=())
    for key in ("quickbooks", "xero"):
        destination = registry.destination(key)
        schema = destination.schema
        assert checks.meta_schema_problems(schema) == [], key
        assert checks.title_problems(schema) == [], key
        assert checks.label_problems(schema) == [], key
        assert checks.secret_problems(schema) == [], key
        assert checks.default_problems(schema) == [], key
        assert checks.external_table_problems(schema, destination) == [], key


# --- what the kit's failures say ---------------------------------------------------------------


def test_a_failing_check_names_the_guide_section_that_explains_it(
    pytester: pytest.Pytester,
) -> None:
    source = broken(('"title": "Mode",', ""))
    result = run_kit(pytester, source, "-k", "titles")
    assert failed_tests(result) == {"test_panel_has_titles_and_descriptions"}
    shows(result, 'how to fix it: see docs/writing-a-destination.md, "4. The panel schema"')


def test_a_refusal_shows_the_destinations_own_words(pytester: pytest.Pytester) -> None:
    source = GOOD_PLUGIN + textwrap.dedent(
        """
        from billbridge.errors import DestinationValidationError


        @hookimpl
        def send_bill(connection, bill, previous, idempotency_key):
            raise DestinationValidationError(
                "the fake refused the invoice (HTTP 422)",
                detail="Invoice number already exists",
            )
        """
    )
    result = run_kit(pytester, source, "-k", "creates_once")
    assert failed_tests(result) == {"test_send_bill_creates_once_per_idempotency_key"}
    shows(
        result,
        "send_bill raised DestinationValidationError: the fake refused the invoice (HTTP 422)",
        "the destination said: Invoice number already exists",
        'see docs/writing-a-destination.md, "9. The conformance kit"',
    )
    assert "Traceback" not in result.stdout.str()


def test_a_preview_that_differs_shows_the_differing_keys_only(pytester: pytest.Pytester) -> None:
    source = GOOD_PLUGIN + textwrap.dedent(
        """
        @hookimpl
        def preview_bill(bill, previous):
            body = {"bill": bill.id, "version": bill.version + 1, "memo": "draft"}
            body["id"] = previous and previous.external_id
            return {"method": "POST", "path": "/invoices", "body": body}
        """
    )
    result = run_kit(pytester, source, "-k", "preview")
    assert failed_tests(result) == {"test_preview_bill_is_pure_and_matches_send_bill"}
    shows(
        result,
        "create: the body send_bill sent differs from preview_bill's (sent / previewed):",
        "/version: 1 / 2",
        '/memo: only previewed: "draft"',
        "update: the body send_bill sent differs",
        "/version: 2 / 3",
        'see docs/writing-a-destination.md, "`preview_bill`"',
    )
    output = result.stdout.str()
    assert "/bill:" not in output  # equal values are not shown
    assert output.count("/version:") == 2


@pytest.mark.parametrize("caught", ["Exception", "BaseException"])
def test_a_network_call_in_validate_config_fails_even_when_the_plugin_catches_it(
    pytester: pytest.Pytester, caught: str
) -> None:
    source = broken(
        (
            "def validate_config(config):\n",
            "def validate_config(config):\n"
            "    import httpx\n"
            "    try:\n"
            '        httpx.get("http://127.0.0.1:9/licence")\n'
            f"    except {caught}:\n"
            "        pass\n",
        )
    )
    result = run_kit(pytester, source, "-k", "validate_config_returns")
    assert failed_tests(result) == {"test_validate_config_returns_field_errors"}
    shows(
        result,
        "validate_config used the network, which it must not",
        "validate_config tried to reach ('127.0.0.1', 9)",
        'see docs/writing-a-destination.md, "`validate_config`"',
    )
