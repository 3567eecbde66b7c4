"""The destination conformance suite: subclass it in a test module and pytest runs every check.

.. code-block:: python

    import pytest
    from billbridge.testing.conformance import DestinationConformance, Harness

    class TestMyDestination(DestinationConformance):
        destination = "mydest"
        valid_configs = [{"url": "https://example.com/hook", "secret": "0123456789abcdef"}]
        invalid_configs = [({"url": "ftp://x", "secret": "0123456789abcdef"}, "/url")]

        @pytest.fixture
        def harness(self):
            with serve(MyFake().app) as server, httpx.Client() as http:
                yield Harness(connection=Connection(...), documents=lambda: fake.invoices)

The plugin is loaded through the ``billbridge.destinations`` entry points, exactly as the engine
finds it (set ``plugin`` to test a plugin object that is not installed). Hooks are called through
a :class:`~billbridge.plugin.manager.PluginRegistry` with keyword arguments, as the core calls them.
What is checked, and what each class attribute means, is in the author guide
(``docs/writing-a-destination.md``, "The conformance kit").
"""

from __future__ import annotations

import copy
import functools
import socket
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from importlib import metadata
from typing import Any, ClassVar, NoReturn, Protocol, TypeVar
from urllib.parse import parse_qs, urlsplit

import attrs
import httpx
import pytest
from oauthlib.oauth2 import WebApplicationClient

from billbridge.domain.models import (
    Account,
    Bill,
    Credential,
    CredentialStatus,
    DocumentStatus,
    InvoiceState,
    LedgerEntry,
    Secret,
    dumps,
    loads,
    thaw,
)
from billbridge.domain.preparation import apply_defaults
from billbridge.domain.schemas import validate
from billbridge.errors import (
    BillbridgeError,
    DestinationError,
    DestinationValidationError,
    FieldError,
    TransientError,
    UnknownDestination,
)
from billbridge.plugin.contract import (
    Connection,
    Delivery,
    Destination,
    ExternalEntity,
    ExternalEntityPage,
    InvoicePayment,
    InvoiceStatus,
    OAuthCallback,
    ResolvedMappings,
    SendResult,
    TenantChoice,
)
from billbridge.plugin.idempotency import batch_idempotency_key
from billbridge.plugin.manager import (
    ENTRY_POINT_GROUP,
    PluginFailure,
    PluginRegistry,
    create_plugin_manager,
    load_plugins,
)
from billbridge.services.oauth import OAuthApp, Tokens, consent_url, token_request
from billbridge.testing import checks
from billbridge.testing.recorder import RecordedRequest
from billbridge.testing.samples import sample_account, sample_bill
from billbridge.testing.tokens import OAuthTestApp

__all__ = [
    "BillFactory",
    "DestinationConformance",
    "Harness",
    "explained_in",
    "json_differences",
    "no_network",
    "see",
]

_WRITES = frozenset({"POST", "PUT", "PATCH"})


class BillFactory(Protocol):
    """Makes the bills the suite delivers: ``number`` picks the bill, ``version`` its version."""

    def __call__(self, *, number: int = 1, version: int = 1) -> Bill:
        """Bill ``number`` at ``version`` (same id for every version of one number)."""
        ...


@attrs.define(kw_only=True)
class Harness:
    """What the suite needs to deliver bills to your fake destination and look at the result.

    :param connection: a :class:`~billbridge.plugin.contract.Connection` to the fake (its URL as
        ``api_base_url``, a valid token for an OAuth destination, an ``httpx.Client``).
    :param documents: every invoice-like document the fake holds now, by the external id
        ``send_bill`` returns for it. The kit deep-copies them to compare a document before
        and after an update.
    :param account: the billed account (default:
        :func:`~billbridge.testing.samples.sample_account`).
    :param mappings: resolved external mappings the bills need (account → customer, products →
        items...), keyed as the core keys them.
    :param config: the destination configuration to deliver with (panel defaults are filled in
        as the core does).
    :param bill: makes bills (default :func:`~billbridge.testing.samples.sample_bill`); each
        ``version`` of one ``number`` must change what the invoice says.
    :param requests: the requests the fake has received so far (e.g. ``recorder.requests``
        from :class:`~billbridge.testing.recorder.RecordingMiddleware`); enables the check that
        ``preview_bill`` describes what ``send_bill`` sends.
    :param lose_next_response: makes the fake process the next write and lose its answer
        (e.g. ``lambda: plan.script("lost")`` with a
        :class:`~billbridge.testing.emulation.faults.FaultPlan`); enables the lost-response check.
    :param oauth_callback: what the provider's consent redirect brought back (OAuth
        destinations; ``ObtainedTokens.oauth_callback()``); enables the ``authenticate`` check.
    :param oauth_app: your fake provider's OAuth endpoints and an app registered there
        (:class:`~billbridge.testing.tokens.OAuthTestApp`); enables the check that the fake
        gives tokens to the core's own consent, code exchange and refresh, made with what the
        plugin's ``OAuthSpec`` declares (client authentication above all).
    :param pay: makes the fake record a payment of a document in full, by external id
        (e.g. ``lambda i: emulator.record_payment(tenant, i)``); with ``fetch_invoice_status``
        implemented, the check then expects it read back as paid.
    :param void: makes the fake void (or delete) a document, by external id; the check then
        expects it read back as voided or deleted.
    """

    connection: Connection
    documents: Callable[[], Mapping[str, Any]]
    account: Account = attrs.field(factory=sample_account)
    mappings: ResolvedMappings = attrs.field(factory=ResolvedMappings)
    config: Mapping[str, Any] = attrs.field(factory=dict)
    bill: BillFactory = sample_bill
    requests: Callable[[], Sequence[RecordedRequest]] | None = None
    lose_next_response: Callable[[], None] | None = None
    oauth_callback: OAuthCallback | None = None
    oauth_app: OAuthTestApp | None = None
    pay: Callable[[str], None] | None = None
    void: Callable[[str], None] | None = None


@contextmanager
def no_network(monkeypatch: pytest.MonkeyPatch, hook: str = "this hook") -> Iterator[list[str]]:
    """Within the block, opening a connection or resolving a name fails the test.

    Hooks that must be pure (``validate_config``, ``preview_bill``) run inside it. Every attempt
    is recorded (the block yields the list) and fails the test when the block ends, even when
    the hook caught what was raised at it: a plugin's broad ``except Exception`` cannot hide a
    network call. What is raised is pytest's failure, which ``except Exception`` does not catch
    either.
    """
    attempts: list[str] = []

    def refuse(*args: Any, **_kwargs: Any) -> NoReturn:
        target = next((a for a in args if isinstance(a, tuple | str)), "?")
        attempts.append(f"{hook} tried to reach {target!r}")
        pytest.fail(f"{hook} must not use the network (it tried to reach {target!r})")

    with monkeypatch.context() as patched:
        patched.setattr(socket.socket, "connect", refuse)
        patched.setattr(socket.socket, "connect_ex", refuse)
        patched.setattr(socket, "create_connection", refuse)
        patched.setattr(socket, "getaddrinfo", refuse)
        failure: BaseException | None = None
        try:
            yield attempts
        except pytest.fail.Exception as exc:
            failure = exc  # ours, or another check's: reported below, after the attempts
    if attempts:
        _fail(f"{hook} used the network, which it must not", attempts)
    if failure is not None:
        raise failure


def _fail(what: str, problems: Sequence[str]) -> NoReturn:
    listed = "\n".join(f"  - {p}" for p in problems)
    pytest.fail(f"{what}:\n{listed}", pytrace=False)


_T = TypeVar("_T", bound=Callable[..., Any])


def explained_in(section: str) -> Callable[[_T], _T]:
    """Name the author guide's section that explains a check in every failure it reports.

    ``section`` is a heading of ``docs/writing-a-destination.md`` as written there, without
    the ``#``s (a test keeps them in step with the guide).
    """

    def decorate(check: _T) -> _T:
        @functools.wraps(check)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return check(*args, **kwargs)
            except pytest.fail.Exception as failure:
                message = failure.msg or ""
                if checks.GUIDE in message:
                    raise
                explained = f"{message}\n  how to fix it: {see(section)}"
                # from None: the same message once, not again as "during handling of".
                raise pytest.fail.Exception(explained, pytrace=False) from None

        run.guide_section = section  # type: ignore[attr-defined]
        return run  # type: ignore[return-value]

    return decorate


def see(section: str) -> str:
    """``see docs/writing-a-destination.md, "SECTION"``."""
    return f'see {checks.GUIDE}, "{section}"'


def _require(what: str, problems: Sequence[str]) -> None:
    if problems:
        _fail(what, problems)


def _key() -> str:
    # The core's keys are 36-character UUIDs; a fresh one per delivery, like a fresh version.
    return str(uuid.uuid4())


def _ledger(bill: Bill, result: SendResult) -> LedgerEntry:
    """What the core's ledger records after a delivery, as ``previous`` for the next version."""
    return LedgerEntry(
        integration_id="conformance",
        bill_id=bill.id,
        bill_version=bill.version,
        external_id=result.external_id,
        updated_at=datetime.now(UTC),
        external_number=result.number,
        external_url=result.url,
        state=result.state,
    )


def _result_problems(result: Any, hook: str) -> list[str]:
    if not isinstance(result, SendResult):
        return [
            f"{hook} returned {type(result).__name__}, not billbridge.plugin.contract.SendResult"
        ]
    problems = []
    if not isinstance(result.external_id, str) or not result.external_id.strip():
        problems.append(f"{hook}: external_id {result.external_id!r} must be a non-empty string")
    if result.number is not None and not isinstance(result.number, str):
        problems.append(f"{hook}: number {result.number!r} must be a string or None")
    if result.url is not None and not str(result.url).startswith(("https://", "http://")):
        problems.append(f"{hook}: url {result.url!r} must be an http(s) URL or None")
    try:
        dumps(thaw(result.state))
    except TypeError as exc:
        problems.append(f"{hook}: state must be JSON-able (the ledger stores it): {exc}")
    return problems


def _status_problems(answer: Any, asked: Sequence[LedgerEntry]) -> list[str]:
    """What is wrong with a ``fetch_invoice_status`` answer for the documents ``asked``."""
    hook = "fetch_invoice_status"
    if isinstance(answer, str | bytes | Mapping) or not isinstance(answer, Sequence):
        return [f"{hook} returned {type(answer).__name__}, not a sequence of InvoiceStatus"]
    wanted = {d.external_id for d in asked}
    problems: list[str] = []
    seen: set[str] = set()
    for status in answer:
        if not isinstance(status, InvoiceStatus):
            problems.append(
                f"{hook} returned {type(status).__name__}, not "
                "billbridge.plugin.contract.InvoiceStatus"
            )
            continue
        if status.external_id not in wanted:
            problems.append(f"{hook} answered for {status.external_id!r}, which it was not asked")
        elif status.external_id in seen:
            problems.append(f"{hook} answered twice for {status.external_id!r}")
        seen.add(status.external_id)
        if not isinstance(status.state, InvoiceState):
            problems.append(f"{status.external_id}: state {status.state!r} is not an InvoiceState")
        for name in ("total", "amount_due", "amount_paid", "amount_credited"):
            value = getattr(status, name)
            if value is not None and not isinstance(value, Decimal):
                problems.append(f"{status.external_id}: {name} {value!r} must be a Decimal")
        for payment in status.payments:
            if not isinstance(payment, InvoicePayment) or not isinstance(payment.amount, Decimal):
                problems.append(
                    f"{status.external_id}: payments must be InvoicePayment values with a "
                    f"Decimal amount, got {payment!r}"
                )
    return problems


def _json(value: Any) -> Any:
    """``value`` as it reads back from JSON (exact decimals), to compare bodies."""
    return loads(dumps(thaw(value)))


class DestinationConformance:
    """Checks that a destination plugin keeps billbridge's contract; subclass it to run them.

    Set :attr:`destination` and provide a ``harness`` fixture returning (or yielding) a
    :class:`Harness`; tests that need no fake (schema, declaration, hooks, configuration) run
    without one. Optional hooks are checked when implemented and skipped otherwise, with the
    reason shown by ``pytest -rs``.
    """

    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.conformance]

    #: The destination key under test (as in ``register_destinations``).
    destination: ClassVar[str] = ""
    #: A plugin object (module) to test instead of the installed entry point.
    plugin: ClassVar[object | None] = None
    #: The name to register :attr:`plugin` under (default: the destination key).
    plugin_name: ClassVar[str | None] = None
    #: Configurations the panel and ``validate_config`` must accept.
    valid_configs: ClassVar[Sequence[Mapping[str, Any]]] = ()
    #: ``(configuration, JSON Pointer)`` pairs that must be refused at that pointer.
    invalid_configs: ClassVar[Sequence[tuple[Mapping[str, Any], str]]] = ()
    #: Property names (or pointers) that look like secrets but are not.
    not_secrets: ClassVar[Sequence[str]] = ()
    #: External tables whose search is not by name (left out of the search check).
    unsearchable_tables: ClassVar[Sequence[str]] = ()
    #: The most pages ``list_external_entities`` may take for one table.
    max_pages: ClassVar[int] = 100

    # -- fixtures -------------------------------------------------------------------------------

    @pytest.fixture(scope="class")
    @classmethod
    def conformance_registry(cls) -> PluginRegistry:
        """The plugin registry, loaded as the engine loads it (entry points, nothing blocked)."""
        name = cls.plugin_name or cls.destination
        try:
            if cls.plugin is not None:
                return load_plugins(entry_points=False, extra=[(name, cls.plugin)], blocked=())
            return load_plugins(blocked=())
        except Exception as exc:
            # The engine could not even start with this plugin installed (pluggy refuses an
            # argument the contract does not have while registering): an empty registry that
            # says why, so every check reports the cause instead of an error in a fixture.
            registry = PluginRegistry(create_plugin_manager())
            registry.failures.append(PluginFailure(name, f"{type(exc).__name__}: {exc}"))
            return registry

    @pytest.fixture
    def harness(self) -> Harness:
        """Override in your test class: the fake destination the delivery checks use."""
        pytest.fail(
            f"{type(self).__name__} needs a `harness` fixture returning a "
            "billbridge.testing.conformance.Harness (a Connection to your fake destination and "
            "a way to read what it stores); see docs/writing-a-destination.md",
            pytrace=False,
        )

    # -- helpers ----------------------------------------------------------------------------------

    def served(self, registry: PluginRegistry) -> Destination:
        """The destination under test, or a failure that says why it is not there."""
        if not self.destination:
            pytest.fail(f'set `destination = "<key>"` on {type(self).__name__}', pytrace=False)
        try:
            return registry.destination(self.destination)
        except UnknownDestination:
            failures = [f"{f.name}: {f.error}" for f in registry.failures]
            where = (
                f"the plugin object {self.plugin!r}"
                if self.plugin is not None
                else f"the installed {ENTRY_POINT_GROUP!r} entry points"
            )
            _fail(
                f"no plugin serves {self.destination!r} among {where} (installed: "
                f"{', '.join(sorted(registry.destinations)) or 'none'}); plugins that did not load",
                failures or ["none: is the plugin installed (pip install -e .)?"],
            )

    def plugin_object(self, registry: PluginRegistry) -> object | None:
        """The plugin object that serves (or should serve) the destination."""
        if self.plugin is not None:
            return self.plugin
        if self.destination in registry.destinations:
            return registry.pm.get_plugin(registry.owner(self.destination))
        for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if entry_point.name == self.destination:
                try:
                    loaded: object = entry_point.load()
                except Exception:  # reported by test_plugin_loads
                    return None
                return loaded
        return None

    def call(
        self,
        registry: PluginRegistry,
        hook: str,
        *,
        expect: tuple[type[BaseException], ...] = (),
        **kwargs: Any,
    ) -> Any:
        """Call ``hook`` on the destination's plugin, by keyword, as the core does.

        A :class:`~billbridge.errors.DestinationError` the check does not ``expect`` fails it
        with the exception's message and the destination's own words (``detail``).
        """
        key = self.served(registry).key
        try:
            return registry.call(hook, key, **kwargs)
        except expect:
            raise
        except DestinationError as exc:
            said = [f"the destination said: {exc.detail}"] if exc.detail else []
            _fail(
                f"{hook} raised {type(exc).__name__}: {exc}",
                [
                    *said,
                    "the check expected it to succeed: is the harness's fake serving what the "
                    "plugin calls (Harness.connection.api_base_url, Harness.config), with the "
                    "mappings it needs (Harness.mappings)?",
                    f"how to fix it: {see('9. The conformance kit')} (the harness) and "
                    f'"5. Exceptions and run statuses"',
                ],
            )

    def delivery_config(self, registry: PluginRegistry, harness: Harness) -> dict[str, Any]:
        """The harness's configuration, checked as the core checks it, with panel defaults."""
        destination = self.served(registry)
        problems = [f"{e.path}: {e.message}" for e in validate(harness.config, destination.schema)]
        if not problems and registry.has_hook(destination.key, "validate_config"):
            errors = self.call(registry, "validate_config", config=dict(harness.config))
            problems = [f"{e.path}: {e.message}" for e in errors or ()]
        _require("the harness's config is refused (fix Harness.config)", problems)
        return apply_defaults(harness.config, destination.schema)

    def send(
        self,
        registry: PluginRegistry,
        harness: Harness,
        bill: Bill,
        *,
        previous: LedgerEntry | None = None,
        key: str | None = None,
        expect: tuple[type[BaseException], ...] = (),
    ) -> SendResult:
        """Deliver ``bill`` with ``send_bill`` and check the result's shape."""
        result = self.call(
            registry,
            "send_bill",
            expect=expect,
            connection=harness.connection,
            bill=bill,
            account=harness.account,
            config=self.delivery_config(registry, harness),
            mappings=harness.mappings,
            previous=previous,
            idempotency_key=key or _key(),
        )
        _require("send_bill's result", _result_problems(result, "send_bill"))
        assert isinstance(result, SendResult)
        return result

    @staticmethod
    def harness_for(request: pytest.FixtureRequest) -> Harness:
        """The ``harness`` fixture, set up only once a test knows it will not skip (starting a
        fake takes time)."""
        harness = request.getfixturevalue("harness")
        if not isinstance(harness, Harness):
            pytest.fail(
                f"the harness fixture returned {type(harness).__name__}, not a Harness",
                pytrace=False,
            )
        return harness

    @staticmethod
    def stored(harness: Harness) -> dict[str, Any]:
        """A deep copy of the fake's documents by external id."""
        return {str(k): copy.deepcopy(v) for k, v in harness.documents().items()}

    # -- the plugin and its declaration -------------------------------------------------------

    @explained_in("1. The package and its entry point")
    def test_plugin_loads(self, conformance_registry: PluginRegistry) -> None:
        """The plugin loads and serves the destination key."""
        destination = self.served(conformance_registry)
        owner = conformance_registry.owner(destination.key)
        failed = [f.error for f in conformance_registry.failures if f.name == owner]
        _require(f"plugin {owner!r} reported failures", failed)

    @explained_in("`register_destinations`")
    def test_declaration(self, conformance_registry: PluginRegistry) -> None:
        """``register_destinations`` declares a complete, consistent destination."""
        destination = self.served(conformance_registry)
        _require(
            f"the declaration of {destination.key!r}",
            checks.declaration_problems(destination, self.destination),
        )

    @explained_in("3. The hooks")
    def test_required_hooks_are_implemented(self, conformance_registry: PluginRegistry) -> None:
        """register_destinations and send_bill, plus authenticate / list_external_entities when
        the destination's OAuth or its panel's option lists need them."""
        destination = self.served(conformance_registry)
        contract = [name for name in vars(conformance_registry.pm.hook) if not name.startswith("_")]
        implemented = [h for h in contract if conformance_registry.has_hook(destination.key, h)]
        _require("hooks", checks.missing_hooks(destination, implemented, destination.schema))

    @explained_in("2. How hooks are called")
    def test_hooks_use_the_contracts_argument_names(
        self, conformance_registry: PluginRegistry
    ) -> None:
        """Every hook implementation names a hook and only arguments the contract passes."""
        plugin = self.plugin_object(conformance_registry)
        if plugin is None:
            self.served(conformance_registry)  # fails, saying why the plugin is missing
            pytest.fail("the plugin object cannot be found", pytrace=False)
        _require("hook implementations", checks.hook_argument_problems(plugin))

    @explained_in("2. How hooks are called")
    def test_hooks_take_the_arguments_they_need(self, conformance_registry: PluginRegistry) -> None:
        """No hook implementation leaves out an argument the contract needs it to use
        (``send_bill``'s and ``send_bills``' ``idempotency_key`` above all): pluggy would
        silently not pass it."""
        plugin = self.plugin_object(conformance_registry)
        if plugin is None:
            self.served(conformance_registry)  # fails, saying why the plugin is missing
            pytest.fail("the plugin object cannot be found", pytrace=False)
        _require(
            "hook implementations leave out arguments they need",
            checks.needed_argument_problems(plugin),
        )

    # -- the panel ------------------------------------------------------------------------------

    @explained_in("4. The panel schema")
    def test_panel_is_draft_07_and_meets_the_meta_schema(
        self, conformance_registry: PluginRegistry
    ) -> None:
        """The panel is a valid draft-07 schema and passes billbridge's panel meta-schema."""
        schema = self.served(conformance_registry).schema
        _require("the panel schema", checks.meta_schema_problems(schema))

    @explained_in("4. The panel schema")
    def test_panel_has_titles_and_descriptions(self, conformance_registry: PluginRegistry) -> None:
        """Every field has a title; the panel and every option have a description."""
        schema = self.served(conformance_registry).schema
        _require("the panel's labels", checks.title_problems(schema))

    @explained_in("4. The panel schema")
    def test_panel_choices_are_labelled(self, conformance_registry: PluginRegistry) -> None:
        """Choices are ``oneOf`` of ``{const, title}``; no bare ``enum``."""
        schema = self.served(conformance_registry).schema
        _require("the panel's choices", checks.label_problems(schema))

    @explained_in("4. The panel schema")
    def test_panel_secrets_are_write_only(self, conformance_registry: PluginRegistry) -> None:
        """Secret-looking options are ``writeOnly``, without defaults, where the core redacts."""
        schema = self.served(conformance_registry).schema
        _require("the panel's secrets", checks.secret_problems(schema, self.not_secrets))

    @explained_in("4. The panel schema")
    def test_panel_external_tables_are_declared(self, conformance_registry: PluginRegistry) -> None:
        """Every ``x-external-table`` is one of the destination's ``external_tables``."""
        destination = self.served(conformance_registry)
        _require(
            "the panel's option lists",
            checks.external_table_problems(destination.schema, destination),
        )

    @explained_in("4. The panel schema")
    def test_panel_defaults_and_examples_are_valid(
        self, conformance_registry: PluginRegistry
    ) -> None:
        """Every ``default`` and ``examples`` value passes its own field's schema."""
        schema = self.served(conformance_registry).schema
        _require("the panel's defaults and examples", checks.default_problems(schema))

    # -- configurations -------------------------------------------------------------------------

    def _config_errors(
        self, registry: PluginRegistry, config: Mapping[str, Any], monkeypatch: pytest.MonkeyPatch
    ) -> list[FieldError]:
        """The errors the engine would report for ``config``: schema first, then the hook."""
        destination = self.served(registry)
        errors = validate(dict(config), destination.schema)
        if errors or not registry.has_hook(destination.key, "validate_config"):
            return errors
        with no_network(monkeypatch, "validate_config"):
            semantic = self.call(registry, "validate_config", config=dict(config))
        problems = _field_error_problems(semantic)
        _require("validate_config's answer", problems)
        return list(semantic)

    @explained_in("`validate_config`")
    def test_valid_configs_are_accepted(
        self, conformance_registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Each of ``valid_configs`` passes the panel and ``validate_config``."""
        self.served(conformance_registry)
        if not self.valid_configs:
            pytest.fail(
                "list at least one configuration people would save in `valid_configs`",
                pytrace=False,
            )
        problems = []
        for index, config in enumerate(self.valid_configs):
            for error in self._config_errors(conformance_registry, config, monkeypatch):
                problems.append(f"valid_configs[{index}] {error.path or '/'}: {error.message}")
        _require("valid configurations were refused", problems)

    @explained_in("`validate_config`")
    def test_invalid_configs_are_refused_at_their_path(
        self, conformance_registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Each of ``invalid_configs`` is refused with an error at its expected JSON Pointer."""
        self.served(conformance_registry)
        if not self.invalid_configs:
            pytest.skip("no invalid_configs listed")
        problems = []
        for index, (config, path) in enumerate(self.invalid_configs):
            errors = self._config_errors(conformance_registry, config, monkeypatch)
            if path not in {e.path for e in errors}:
                found = ", ".join(f"{e.path or '/'} ({e.message})" for e in errors) or "none"
                problems.append(f"invalid_configs[{index}]: no error at {path}; errors: {found}")
        _require("invalid configurations were not refused where expected", problems)

    @explained_in("`validate_config`")
    def test_validate_config_returns_field_errors(
        self, conformance_registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``validate_config`` returns a sequence of FieldError with JSON Pointers, offline."""
        destination = self.served(conformance_registry)
        if not conformance_registry.has_hook(destination.key, "validate_config"):
            pytest.skip("validate_config is not implemented (the panel schema is the only check)")
        configs = [*self.valid_configs, *(config for config, _path in self.invalid_configs)]
        problems = []
        for config in configs or [{}]:
            with no_network(monkeypatch, "validate_config"):
                answer = self.call(conformance_registry, "validate_config", config=dict(config))
            problems += _field_error_problems(answer)
        _require("validate_config's answers", problems)

    # -- external entities ------------------------------------------------------------------------

    def list_all(
        self, registry: PluginRegistry, harness: Harness, table: str, search: str | None = None
    ) -> tuple[list[ExternalEntity], list[str]]:
        """Every entity of ``table`` (following cursors), and the paging problems seen."""
        entities: list[ExternalEntity] = []
        problems: list[str] = []
        cursors: set[str] = set()
        cursor: str | None = None
        for _page in range(self.max_pages):
            page = self.call(
                registry,
                "list_external_entities",
                connection=harness.connection,
                table=table,
                search=search,
                cursor=cursor,
            )
            if not isinstance(page, ExternalEntityPage):
                wrong = type(page).__name__
                return entities, [f"{table}: returned {wrong}, not ExternalEntityPage"]
            for item in page.items:
                if not isinstance(item, ExternalEntity):
                    wrong = type(item).__name__
                    problems.append(f"{table}: an item is {wrong}, not ExternalEntity")
                elif not (isinstance(item.id, str) and item.id and isinstance(item.name, str)):
                    problems.append(f"{table}: {item!r} needs a non-empty string id and a name")
                else:
                    entities.append(item)
            cursor = page.next_cursor
            if cursor is None:
                break
            if not isinstance(cursor, str) or cursor in cursors:
                problems.append(f"{table}: next_cursor {cursor!r} repeats or is not a string")
                break
            cursors.add(cursor)
        else:
            problems.append(f"{table}: still more pages after max_pages={self.max_pages}")
        duplicates = sorted(i for i, n in Counter(e.id for e in entities).items() if n > 1)
        if duplicates:
            problems.append(f"{table}: ids listed more than once across pages: {duplicates[:5]}")
        return entities, problems

    def _listing(self, registry: PluginRegistry) -> Destination:
        destination = self.served(registry)
        if not registry.has_hook(destination.key, "list_external_entities"):
            pytest.skip("list_external_entities is not implemented")
        if not destination.external_tables:
            pytest.skip("the destination declares no external tables")
        return destination

    @explained_in("`list_external_entities`")
    def test_list_external_entities_pages_every_table(
        self, conformance_registry: PluginRegistry, request: pytest.FixtureRequest
    ) -> None:
        """Every declared table lists through its pages to the end, each id once."""
        destination = self._listing(conformance_registry)
        harness = self.harness_for(request)
        problems = []
        for table in destination.external_tables:
            _entities, found = self.list_all(conformance_registry, harness, table)
            problems += found
        _require("list_external_entities", problems)

    @explained_in("`list_external_entities`")
    def test_list_external_entities_search_finds_by_name(
        self, conformance_registry: PluginRegistry, request: pytest.FixtureRequest
    ) -> None:
        """Searching a table for an entity's name lists that entity."""
        destination = self._listing(conformance_registry)
        harness = self.harness_for(request)
        problems = []
        searched = 0
        for table in destination.external_tables:
            if table in self.unsearchable_tables:
                continue
            first = self.call(
                conformance_registry,
                "list_external_entities",
                connection=harness.connection,
                table=table,
                search=None,
                cursor=None,
            )
            if not isinstance(first, ExternalEntityPage) or not first.items:
                continue  # an empty table has nothing to find; a wrong answer is reported above
            wanted = first.items[0]
            found, paging = self.list_all(conformance_registry, harness, table, search=wanted.name)
            searched += 1
            problems += paging
            if wanted.id not in {e.id for e in found}:
                problems.append(f"{table}: search={wanted.name!r} did not list {wanted.id!r}")
        if not searched:
            pytest.skip("no table had an entity to search for")
        _require("list_external_entities with search", problems)

    @explained_in("`list_external_entities`")
    def test_list_external_entities_refuses_an_unknown_table(
        self, conformance_registry: PluginRegistry, request: pytest.FixtureRequest
    ) -> None:
        """An unknown table raises DestinationValidationError (the UI shows the message)."""
        self._listing(conformance_registry)
        harness = self.harness_for(request)
        with pytest.raises(DestinationValidationError):
            self.call(
                conformance_registry,
                "list_external_entities",
                expect=(DestinationValidationError,),
                connection=harness.connection,
                table="NoSuchTable",
                search=None,
                cursor=None,
            )

    # -- authenticate -----------------------------------------------------------------------------

    @explained_in("`authenticate`")
    def test_authenticate_names_the_tenant(
        self, conformance_registry: PluginRegistry, request: pytest.FixtureRequest
    ) -> None:
        """``authenticate`` returns the tenants of a consent, the harness's tenant among them."""
        destination = self.served(conformance_registry)
        if destination.oauth is None:
            pytest.skip("the destination does not use OAuth")
        harness = self.harness_for(request)
        if harness.oauth_callback is None:
            pytest.skip("the harness has no oauth_callback")
        choices = self.call(
            conformance_registry,
            "authenticate",
            credential=_credential(destination.key),
            callback=harness.oauth_callback,
            http=harness.connection.http,
            api_base_url=harness.connection.api_base_url,
        )
        problems = []
        if not isinstance(choices, Sequence) or not choices:
            problems.append(f"returned {choices!r}: a non-empty sequence of TenantChoice")
        else:
            for choice in choices:
                if not isinstance(choice, TenantChoice) or not choice.tenant_id:
                    problems.append(f"{choice!r} is not a TenantChoice with a tenant_id")
            tenants = {getattr(c, "tenant_id", None) for c in choices}
            if harness.connection.tenant_id not in tenants:
                problems.append(
                    f"the harness's tenant {harness.connection.tenant_id!r} is not among {tenants}"
                )
        _require("authenticate", problems)

    @explained_in("A fake OAuth provider")
    def test_oauth_tokens_are_obtained_as_the_core_obtains_them(
        self, conformance_registry: PluginRegistry, request: pytest.FixtureRequest
    ) -> None:
        """The fake provider answers the core's own consent URL, code exchange and refresh, made
        with the plugin's ``OAuthSpec`` (scopes, consent parameters, token request headers and
        client authentication), and ``authenticate`` names a tenant for the new token."""
        destination = self.served(conformance_registry)
        spec = destination.oauth
        if spec is None:
            pytest.skip("the destination does not use OAuth")
        harness = self.harness_for(request)
        app = harness.oauth_app
        if app is None:
            pytest.skip("the harness has no oauth_app (your fake provider's OAuth endpoints)")
        core_app = OAuthApp(app.client_id, Secret(app.client_secret), app.redirect_uri)
        client = WebApplicationClient(app.client_id)
        # A client of its own that never follows redirects: the consent's answer is one.
        with httpx.Client(timeout=10) as http:
            url = consent_url(
                client,
                app.authorize_url,
                redirect_uri=app.redirect_uri,
                scope=list(spec.scopes),
                state="conformance-state",
                **dict(spec.extra_authorize_params),
            )
            consent = http.get(url)
            location = consent.headers.get("location", "")
            callback = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
            if consent.status_code not in (302, 303) or "code" not in callback:
                _fail(
                    "the fake provider refused the consent the core asks for",
                    [
                        f"GET {url} answered {consent.status_code}: "
                        f"{callback or consent.text[:300]}",
                        f"the core asks for OAuthSpec.scopes {list(spec.scopes)} and adds "
                        f"extra_authorize_params {dict(spec.extra_authorize_params)}",
                    ],
                )
            body = client.prepare_request_body(
                code=callback["code"], redirect_uri=app.redirect_uri, include_client_id=False
            )
            tokens = _core_token_request(http, destination, app, core_app, body, "code")
            choices = self.call(
                conformance_registry,
                "authenticate",
                credential=_credential(destination.key),
                callback=OAuthCallback(params=callback, access_token=tokens.access_token),
                http=harness.connection.http,
                api_base_url=harness.connection.api_base_url,
            )
            problems = []
            if not isinstance(choices, Sequence) or not choices:
                problems.append(f"authenticate returned {choices!r} for the new token")
            if tokens.refresh_token is None:
                problems.append(
                    "the token endpoint gave no refresh_token: the credential would need "
                    "reconnecting as soon as the access token expires (does the provider want "
                    "a scope such as offline_access in OAuthSpec.scopes?)"
                )
            else:
                refresh = client.prepare_refresh_body(
                    refresh_token=tokens.refresh_token.reveal(), include_client_id=False
                )
                _core_token_request(http, destination, app, core_app, refresh, "refresh")
        _require("OAuth as the core does it", problems)

    # -- delivering --------------------------------------------------------------------------------

    @explained_in("7. Idempotency")
    def test_send_bill_creates_once_per_idempotency_key(
        self, conformance_registry: PluginRegistry, harness: Harness
    ) -> None:
        """A bill becomes one document; sending it again with the same key makes no second."""
        before = self.stored(harness)
        bill = harness.bill(number=1, version=1)
        key = _key()
        first = self.send(conformance_registry, harness, bill, key=key)
        made = set(self.stored(harness)) - set(before)
        problems = []
        if made != {first.external_id}:
            problems.append(
                f"after one send_bill the fake holds new documents {sorted(made)}, expected "
                f"exactly [{first.external_id!r}] (is Harness.documents keyed by external id?)"
            )
        if first.created is not True:
            problems.append("a create must return SendResult(created=True)")
        again = self.send(conformance_registry, harness, bill, key=key)
        if again.external_id != first.external_id:
            problems.append(
                f"a retry with the same idempotency_key returned {again.external_id!r}, not "
                f"{first.external_id!r}"
            )
        made = set(self.stored(harness)) - set(before)
        if len(made) != 1:
            problems.append(
                f"a retry with the same idempotency_key made another document: {sorted(made)} "
                "(send the key as the destination's idempotency key)"
            )
        _require("creating an invoice", problems)

    @explained_in("`send_bill`")
    def test_send_bill_updates_on_a_new_version(
        self, conformance_registry: PluginRegistry, harness: Harness
    ) -> None:
        """A new version with ``previous`` updates the document made for the earlier one."""
        first_bill = harness.bill(number=1, version=1)
        first = self.send(conformance_registry, harness, first_bill)
        before = self.stored(harness)
        if first.external_id not in before:
            pytest.fail(
                f"Harness.documents() has no {first.external_id!r} after it was created",
                pytrace=False,
            )
        second_bill = harness.bill(number=1, version=2)
        if second_bill.id != first_bill.id:
            pytest.fail("Harness.bill must keep the bill id across versions", pytrace=False)
        second = self.send(
            conformance_registry, harness, second_bill, previous=_ledger(first_bill, first)
        )
        after = self.stored(harness)
        problems = []
        if second.external_id != first.external_id:
            problems.append(
                f"the update returned external_id {second.external_id!r}; it must update "
                f"previous.external_id {first.external_id!r}"
            )
        if second.created is not False:
            problems.append("an update must return SendResult(created=False)")
        if set(after) != set(before):
            problems.append(
                f"the update added or removed documents: {sorted(set(after) ^ set(before))}"
            )
        elif after.get(first.external_id) == before[first.external_id]:
            problems.append(
                f"document {first.external_id!r} did not change although version 2 bills "
                "different amounts"
            )
        _require("updating an invoice", problems)

    @explained_in("7. Idempotency")
    def test_send_bill_reports_a_lost_response_as_transient(
        self, conformance_registry: PluginRegistry, harness: Harness
    ) -> None:
        """When the fake commits a create and the answer is lost, send_bill raises
        TransientError (so the core retries) and the retry returns the same document."""
        if harness.lose_next_response is None:
            pytest.skip("the harness cannot lose a response (Harness.lose_next_response)")
        bill = harness.bill(number=1, version=1)
        key = _key()
        before = self.stored(harness)
        harness.lose_next_response()
        lost: SendResult | None = None
        try:
            lost = self.send(conformance_registry, harness, bill, key=key, expect=(Exception,))
        except TransientError:
            pass
        except Exception as exc:
            pytest.fail(
                f"a lost response raised {type(exc).__name__}: {exc}; raise "
                "billbridge.errors.TransientError for transport failures so the core retries",
                pytrace=False,
            )
        retried = self.send(conformance_registry, harness, bill, key=key)
        made = set(self.stored(harness)) - set(before)
        problems = []
        if made != {retried.external_id}:
            problems.append(f"after the lost answer and a retry the fake holds {sorted(made)}")
        if lost is not None and lost.external_id != retried.external_id:
            problems.append(
                f"the two answers name {lost.external_id!r} and {retried.external_id!r}"
            )
        _require("a lost response", problems)

    @explained_in("`send_bills`")
    def test_send_bills_returns_outcomes_in_order(
        self, conformance_registry: PluginRegistry, request: pytest.FixtureRequest
    ) -> None:
        """``send_bills`` creates, replays (same deliveries, same batch key) and updates a batch,
        one outcome per delivery, in order."""
        destination = self.served(conformance_registry)
        if not conformance_registry.has_hook(destination.key, "send_bills"):
            pytest.skip("send_bills is not implemented (the core sends bills one at a time)")
        harness = self.harness_for(request)
        config = self.delivery_config(conformance_registry, harness)
        bills = [harness.bill(number=n, version=1) for n in (2, 3)]

        def batch(deliveries: Sequence[Delivery], what: str) -> list[SendResult]:
            outcomes = self.call(
                conformance_registry,
                "send_bills",
                connection=harness.connection,
                deliveries=list(deliveries),
                # As the core keys a batch: the same members, the same key.
                idempotency_key=batch_idempotency_key(d.idempotency_key for d in deliveries),
            )
            outcomes = list(outcomes or ())
            if len(outcomes) != len(deliveries):
                pytest.fail(
                    f"{what}: {len(outcomes)} outcomes for {len(deliveries)} deliveries",
                    pytrace=False,
                )
            problems = []
            for delivery, outcome in zip(deliveries, outcomes, strict=True):
                if isinstance(outcome, Exception):
                    problems.append(f"{what}: delivery {delivery.key} failed: {outcome!r}")
                else:
                    problems += _result_problems(outcome, "send_bills")
            _require(what, problems)
            return [o for o in outcomes if isinstance(o, SendResult)]

        def deliveries(version: int, previous: Sequence[SendResult] | None) -> list[Delivery]:
            made = []
            for index, first in enumerate(bills):
                bill = harness.bill(number=(2, 3)[index], version=version)
                made.append(
                    Delivery(
                        key=f"delivery-{index}",
                        bill=bill,
                        account=harness.account,
                        config=config,
                        mappings=harness.mappings,
                        previous=_ledger(first, previous[index]) if previous else None,
                        idempotency_key=_key(),
                    )
                )
            return made

        before = self.stored(harness)
        created_batch = deliveries(1, None)
        created = batch(created_batch, "creating a batch")
        problems = []
        made = set(self.stored(harness)) - set(before)
        if made != {r.external_id for r in created} or len(made) != len(bills):
            problems.append(f"a batch of {len(bills)} creates made documents {sorted(made)}")
        replayed = batch(created_batch, "replaying a batch with the same keys")
        if [r.external_id for r in replayed] != [r.external_id for r in created]:
            problems.append("replaying a batch returned other documents, or in another order")
        snapshot = self.stored(harness)
        if set(snapshot) != set(before) | made:
            problems.append("replaying a batch with the same keys made new documents")
        updated = batch(deliveries(2, created), "updating a batch")
        if [r.external_id for r in updated] != [r.external_id for r in created]:
            problems.append("a batch of updates must return the previous documents, in order")
        if any(r.created is not False for r in updated):
            problems.append("updates in a batch must return SendResult(created=False)")
        after = self.stored(harness)
        unchanged = [i for i in made if after.get(i) == snapshot.get(i)]
        if unchanged:
            problems.append(f"documents {sorted(unchanged)} did not change in the update batch")
        _require("send_bills", problems)

    def read_statuses(
        self, registry: PluginRegistry, harness: Harness, documents: Sequence[LedgerEntry]
    ) -> dict[str, InvoiceStatus]:
        """``fetch_invoice_status`` for ``documents``, its answer's shape checked; by id."""
        answer = self.call(
            registry,
            "fetch_invoice_status",
            connection=harness.connection,
            documents=list(documents),
            config=self.delivery_config(registry, harness),
        )
        _require("fetch_invoice_status's answer", _status_problems(answer, documents))
        return {status.external_id: status for status in answer}

    @explained_in("`fetch_invoice_status`")
    def test_fetch_invoice_status_reads_documents_back(
        self, conformance_registry: PluginRegistry, request: pytest.FixtureRequest
    ) -> None:
        """Documents just sent read back unpaid, in at most ``Limits.status_requests``
        requests; paid ones (``Harness.pay``) as paid, voided ones (``Harness.void``) as voided
        or deleted."""
        destination = self.served(conformance_registry)
        if not conformance_registry.has_hook(destination.key, "fetch_invoice_status"):
            pytest.skip("the plugin does not implement fetch_invoice_status (optional)")
        harness = self.harness_for(request)
        limits = destination.limits
        bills = [harness.bill(number=number, version=1) for number in (1, 2)]
        documents = [
            _ledger(bill, self.send(conformance_registry, harness, bill)) for bill in bills
        ]
        problems: list[str] = []
        if len(documents) > limits.status_batch_size:
            documents = documents[: limits.status_batch_size]
        sent = len(harness.requests()) if harness.requests is not None else 0
        found = self.read_statuses(conformance_registry, harness, documents)
        if harness.requests is not None:
            made = len(harness.requests()) - sent
            if made > limits.status_requests:
                problems.append(
                    f"reading {len(documents)} documents took {made} requests; "
                    f"Limits.status_requests declares at most {limits.status_requests} (the core "
                    "waits for that many rate-limit slots per call)"
                )
        for document in documents:
            status = found.get(document.external_id)
            if status is None:
                problems.append(f"no status for {document.external_id!r}, sent just before")
            elif status.state is not InvoiceState.UNPAID:
                problems.append(
                    f"{document.external_id!r} was just created, yet read back as "
                    f"{status.state.value}"
                )
        first, second = documents[0], documents[-1]
        if harness.pay is not None:
            harness.pay(first.external_id)
            status = self.read_statuses(conformance_registry, harness, [first]).get(
                first.external_id
            )
            if status is None or status.state is not InvoiceState.PAID:
                problems.append(
                    f"{first.external_id!r} was paid in full, yet read back as "
                    f"{status.state.value if status else 'nothing'}"
                )
            elif status.amount_due not in (None, Decimal(0)):
                problems.append(f"{first.external_id!r} is paid but {status.amount_due} is due")
        if harness.void is not None and second is not first:
            harness.void(second.external_id)
            # As the core asks next time: with what it read last time.
            asked = attrs.evolve(second, status=DocumentStatus(state=InvoiceState.UNPAID))
            status = self.read_statuses(conformance_registry, harness, [asked]).get(
                second.external_id
            )
            if status is None or status.state not in (InvoiceState.VOIDED, InvoiceState.DELETED):
                problems.append(
                    f"{second.external_id!r} was voided, yet read back as "
                    f"{status.state.value if status else 'nothing'}"
                )
        _require("reading statuses back", problems)

    @explained_in("`preview_bill`")
    def test_preview_bill_is_pure_and_matches_send_bill(
        self,
        conformance_registry: PluginRegistry,
        request: pytest.FixtureRequest,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """``preview_bill`` works offline and describes the request ``send_bill`` sends, for a
        create and for an update (compared when the harness records requests)."""
        destination = self.served(conformance_registry)
        if not conformance_registry.has_hook(destination.key, "preview_bill"):
            pytest.skip("preview_bill is not implemented (engine.preview will say so)")
        harness = self.harness_for(request)
        config = self.delivery_config(conformance_registry, harness)
        problems: list[str] = []

        def preview(bill: Bill, previous: LedgerEntry | None) -> Mapping[str, Any]:
            with no_network(monkeypatch, "preview_bill"):
                answer = self.call(
                    conformance_registry,
                    "preview_bill",
                    bill=bill,
                    account=harness.account,
                    config=config,
                    mappings=harness.mappings,
                    previous=previous,
                )
            if not isinstance(answer, Mapping):
                _fail("preview_bill", [f"returned {type(answer).__name__}, not a mapping"])
            missing = [k for k in ("method", "path", "body") if k not in answer]
            if missing:
                _fail("preview_bill", [f"the answer has no {', '.join(missing)}"])
            try:
                dumps(thaw(answer))
            except TypeError as exc:
                _fail("preview_bill", [f"the answer is not JSON-able: {exc}"])
            return answer

        def compare(planned: Mapping[str, Any], sent: Sequence[RecordedRequest], what: str) -> None:
            writes = [r for r in sent if r.method in _WRITES]
            if not writes:
                problems.append(f"{what}: send_bill sent no POST/PUT/PATCH the fake recorded")
                return
            request = writes[0]
            if str(planned["method"]).upper() != request.method:
                problems.append(
                    f"{what}: preview says {planned['method']}, send_bill sent {request.method}"
                )
            differences = json_differences(request.json(), _json(planned["body"]))
            if differences:
                listed = "\n".join(f"      {d}" for d in differences)
                problems.append(
                    f"{what}: the body send_bill sent differs from preview_bill's "
                    f"(sent / previewed):\n{listed}"
                )

        first_bill = harness.bill(number=1, version=1)
        planned = preview(first_bill, None)
        if harness.requests is None:
            return  # purity and shape checked; nothing to compare the preview with
        seen = len(harness.requests())
        first = self.send(conformance_registry, harness, first_bill)
        compare(planned, harness.requests()[seen:], "create")
        second_bill = harness.bill(number=1, version=2)
        previous = _ledger(first_bill, first)
        planned = preview(second_bill, previous)
        seen = len(harness.requests())
        self.send(conformance_registry, harness, second_bill, previous=previous)
        compare(planned, harness.requests()[seen:], "update")
        _require("preview_bill and send_bill disagree", problems)


def json_differences(sent: Any, planned: Any, path: str = "", limit: int = 20) -> list[str]:
    """Where two JSON documents differ, one line per differing value, with its JSON Pointer.

    ``/lines/1/amount: "20.00" / "20.0"`` says what was sent and what the preview said;
    ``only sent`` and ``only previewed`` mark keys (and list items) one of them lacks.
    """
    found: list[str] = []

    def show(value: Any) -> str:
        text = dumps(value)
        return text if len(text) <= 80 else text[:77] + "..."

    def walk(a: Any, b: Any, at: str) -> None:
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            for key in [*a, *(k for k in b if k not in a)]:
                where = f"{at}/{str(key).replace('~', '~0').replace('/', '~1')}"
                if key not in b:
                    found.append(f"{where}: only sent: {show(a[key])}")
                elif key not in a:
                    found.append(f"{where}: only previewed: {show(b[key])}")
                else:
                    walk(a[key], b[key], where)
        elif isinstance(a, list) and isinstance(b, list):
            for index in range(max(len(a), len(b))):
                where = f"{at}/{index}"
                if index >= len(b):
                    found.append(f"{where}: only sent: {show(a[index])}")
                elif index >= len(a):
                    found.append(f"{where}: only previewed: {show(b[index])}")
                else:
                    walk(a[index], b[index], where)
        elif a != b or type(a) is not type(b):
            found.append(f"{at or '/'}: {show(a)} / {show(b)}")

    walk(sent, planned, path)
    if len(found) > limit:
        return [*found[:limit], f"... and {len(found) - limit} more"]
    return found


def _credential(key: str) -> Credential:
    """An INCOMPLETE credential, as the core hands ``authenticate`` while completing one."""
    now = datetime.now(UTC)
    return Credential(
        id="conformance-credential",
        name="Conformance",
        destination=key,
        status=CredentialStatus.INCOMPLETE,
        created_at=now,
        expires_at=now,
    )


def _core_token_request(
    http: httpx.Client,
    destination: Destination,
    app: OAuthTestApp,
    core_app: OAuthApp,
    body: str,
    purpose: str,
) -> Tokens:
    """The core's own token request (client authentication as ``OAuthSpec.client_auth``
    says), failing the check with what the provider answered and what to change."""
    assert destination.oauth is not None
    try:
        return token_request(http, destination, app.token_url, core_app, body, purpose=purpose)
    except BillbridgeError as exc:
        declared = destination.oauth.client_auth
        where = "an HTTP Basic header" if declared == "basic" else "the form body"
        other = "body" if declared == "basic" else "basic"
        hints = [f"the provider answered: {exc}"]
        if "invalid_client" in str(exc):
            hints.append(
                f"OAuthSpec.client_auth is {declared!r}: the core sent the client id and secret "
                f"in {where}. If the provider documents the other way, declare "
                f"client_auth={other!r}; otherwise check the fake's OAuthServer(client_auth=...) "
                "against the provider's documentation"
            )
        what = "exchanging the consent's code" if purpose == "code" else "refreshing the token"
        _fail(f"the fake provider refused the core {what}", hints)


def _field_error_problems(answer: Any) -> list[str]:
    if isinstance(answer, str | bytes) or not isinstance(answer, Sequence):
        return [f"validate_config returned {type(answer).__name__}, not a sequence of FieldError"]
    problems = []
    for error in answer:
        if not isinstance(error, FieldError):
            problems.append(f"validate_config returned {error!r}, not a FieldError")
        elif error.path and not error.path.startswith("/"):
            problems.append(
                f"validate_config path {error.path!r} is not a JSON Pointer ('/field', or '')"
            )
        elif not error.message:
            problems.append(f"validate_config error at {error.path} has no message")
    return problems
