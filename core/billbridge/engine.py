"""The embedding API: one :class:`Engine` object a billing service talks to.

.. code-block:: python

    engine = billbridge.Engine()                      # SQLite in ~/.billbridge, migrated
    engine.destinations(); engine.schema("xero")
    integ = engine.integrations.create(name="Xero UK", destination="xero",
                                       config={"accountFilter": 'address.country == UK'},
                                       destination_config={"invoiceStatus": "AUTHORISED"})
    engine.mappings.create(entity="Account", entity_id=account_id,
                           external_table="Contact", external_id=contact_id)

Every change is validated before anything is saved; refused input raises
:class:`~billbridge.errors.ValidationFailed` whose ``errors`` are ``{path, message}`` pairs a UI
places next to fields.
"""

from __future__ import annotations

import builtins
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, TypeVar

import attrs
import httpx

from billbridge import __version__
from billbridge.credentials import Credentials
from billbridge.delivery import Deliverer, DeliveryReport, ProgressCallback, build_delivery
from billbridge.domain import filter_expr
from billbridge.domain.models import (
    Account,
    Bill,
    BillEntityConfig,
    Clock,
    ExternalMapping,
    GlobalConfig,
    Integration,
    Run,
    RunStatus,
    Secret,
    converter,
    thaw,
    utcnow,
)
from billbridge.domain.preparation import mapping_keys
from billbridge.domain.schemas import REDACTED, SEALED, core_schema, secret_options, validate
from billbridge.errors import BillbridgeError, FieldError, UnknownDestination, ValidationFailed
from billbridge.plugin.contract import Destination
from billbridge.plugin.manager import PluginRegistry, load_plugins
from billbridge.runs import Events, Runs, Skips
from billbridge.secrets import SecretBox
from billbridge.settings import Settings
from billbridge.store import (
    CredentialRepository,
    Database,
    IntegrationRepository,
    MappingRepository,
    OAuthAppRepository,
)
from billbridge.store.queue import DeliveryQueue
from billbridge.submission import (
    AccountInput,
    BillInput,
    SubmitCounts,
    SubmitResult,
    Submitter,
    read_pair,
    receive,
)

__all__ = ["Engine", "Integrations", "Mappings"]

_T = TypeVar("_T")


class Engine:
    """billbridge, embedded: destinations, integrations, mappings (and, later, delivery).

    :param database_url: SQLAlchemy URL; default ``BILLBRIDGE_DATABASE_URL`` or a SQLite file in
        ``BILLBRIDGE_HOME`` (``~/.billbridge``). The schema is migrated on first use.
    :param settings: everything else configurable (see :class:`~billbridge.settings.Settings`).
    :param plugins: a plugin registry; default: every installed destination plugin.
    :param clock: the current time (tests pass a fake one).
    :param sleep: how the engine waits (tests and benchmarks pass a faster one).
    :param secret_box: encryption of secrets at rest; default: keys from
        ``BILLBRIDGE_SECRET_KEY``, or for the embedded SQLite default a key file in the home
        directory (created with mode 0600 on first use).
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        settings: Settings | None = None,
        plugins: PluginRegistry | None = None,
        clock: Clock = utcnow,
        sleep: Callable[[float], None] = time.sleep,
        secret_box: SecretBox | None = None,
    ) -> None:
        self.settings = settings or Settings()
        if database_url is not None:
            self.settings = attrs.evolve(self.settings, database_url=database_url)
        self.plugins = plugins if plugins is not None else load_plugins()
        self.clock = clock
        self.sleep = sleep
        self.db = Database(self.settings.resolved_database_url)
        self.db.ensure_schema()
        self._secret_box = secret_box
        #: One HTTP client (connection pool, timeouts) for every call to a destination.
        self.http = httpx.Client(
            timeout=httpx.Timeout(self.settings.http_timeout, connect=10.0),
            headers={"User-Agent": f"billbridge/{__version__}"},
            follow_redirects=False,
        )
        self.integrations = Integrations(self)
        self.mappings = Mappings(self)
        self.credentials = Credentials(self)
        self.runs = Runs(self)
        self.skips = Skips(self)
        self.events = Events(self)
        #: Parsed bill versions, shared by submission and delivery in this process (bill
        #: versions never change, so a cached one is always right).
        self.bill_cache = BillCache(self.settings.bill_cache_size)
        self.deliverer = Deliverer(self)
        self._submitter = Submitter(self)

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        """Release database and HTTP connections."""
        self.http.close()
        self.db.dispose()

    @property
    def secret_box(self) -> SecretBox:
        """The key ring for secrets at rest (made on first use: engines without credentials
        never need a key)."""
        if self._secret_box is None:
            key_file = self.settings.key_file if self.db.is_sqlite else None
            self._secret_box = SecretBox.from_env(key_file=key_file)
        return self._secret_box

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Engine({self.db.display_url!r})"

    def rotate_secrets(self) -> int:
        """Re-encrypt every stored secret with the newest key; returns how many were rewritten.

        Rotation: put a new key first in ``BILLBRIDGE_SECRET_KEY`` (keep the old one after it),
        run this, then drop the old key.
        """
        box = self.secret_box

        def work(session: Any) -> int:
            credentials = CredentialRepository(session, box)
            count = 0
            for credential in credentials.list():
                credentials.update(credential)
                count += 1
            apps = OAuthAppRepository(session, box)
            for destination in apps.destinations():
                app = apps.get(destination)
                if app is not None and app.client_id and app.client_secret:
                    apps.put(
                        destination,
                        client_id=app.client_id,
                        client_secret=app.client_secret,
                        redirect_uri=app.redirect_uri,
                        at=self.clock(),
                    )
                    count += 1
            return count

        return self._unit_of_work(work)

    # -- bills ------------------------------------------------------------------------------

    def submit_bill(self, bill: BillInput, account: AccountInput) -> SubmitResult:
        """Route one bill version to every enabled Bill integration and record each decision.

        :param bill: m3ter's bill (JSON text, parsed JSON, or a
        :class:`~billbridge.domain.models.Bill`).
        :param account: the bill's account, likewise.
        :returns: the runs queued (WAITING) and the skips with their reasons.
        :raises ValidationFailed: not valid m3ter JSON, or the account does not match the bill;
            nothing is stored then.
        """
        return self._submitter.submit([receive(bill, account)])

    def submit_bills(
        self, pairs: Iterable[tuple[BillInput, AccountInput]], *, chunk: int = 500
    ) -> Iterator[SubmitCounts]:
        """Submit many bills (a backfill) in bounded chunks; yields each chunk's counts."""
        return self._submitter.submit_many(pairs, chunk=chunk)

    def preview(
        self, bill: BillInput, account: AccountInput, integration_id: str
    ) -> dict[str, Any]:
        """The exact request the integration would send for this bill; nothing sent or stored.

        :raises MissingMapping: the account (or an item) has no mapping;
            :class:`~billbridge.errors.BillbridgeError` when the destination cannot preview.
        """
        parsed_bill, parsed_account = read_pair(bill, account)
        integration = self.integrations.get(integration_id)
        destination = self.destination(integration.destination)
        if not self.plugins.has_hook(integration.destination, "preview_bill"):
            raise BillbridgeError(f"{integration.destination} cannot preview invoices")

        def load(session: Any) -> tuple[Any, Any]:
            keys = sorted(mapping_keys(parsed_bill, parsed_account))
            candidates = MappingRepository(session).for_entities(integration.destination, keys)
            previous = DeliveryQueue(session).ledger(integration.id, [parsed_bill.id])
            return candidates, previous.get(parsed_bill.id)

        candidates, previous = self._unit_of_work(load)
        run = Run(
            id="preview",
            integration_id=integration.id,
            bill_id=parsed_bill.id,
            bill_version=parsed_bill.version,
            status=RunStatus.WAITING,
            created_at=self.clock(),
            updated_at=self.clock(),
        )
        delivery = build_delivery(
            run,
            integration,
            destination,
            parsed_bill,
            parsed_account,
            candidates,
            previous,
            self.unseal,
        )
        payload = self.plugins.call(
            "preview_bill",
            integration.destination,
            bill=delivery.bill,
            account=delivery.account,
            config=delivery.config,
            mappings=delivery.mappings,
            previous=delivery.previous,
        )
        return thaw(payload)  # type: ignore[no-any-return]

    def deliver_pending(
        self,
        *,
        max_runs: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> DeliveryReport:
        """Deliver every run due now (see :class:`~billbridge.delivery.Deliverer`)."""
        return self.deliverer.deliver_pending(max_runs=max_runs, progress=progress)

    def deliver(self, run_id: str) -> Run:
        """Deliver one run now, from any job system; returns the run as it ends up."""
        return self.deliverer.deliver(run_id)

    def next_due_at(self) -> datetime | None:
        """When the next waiting run becomes due (``None``: nothing is waiting)."""
        return self._unit_of_work(lambda s: DeliveryQueue(s).next_due_at())

    # -- destinations -----------------------------------------------------------------------------

    def destinations(self) -> list[Destination]:
        """Every installed destination, by key order."""
        return [self.plugins.destinations[k] for k in sorted(self.plugins.destinations)]

    def destination(self, key: str) -> Destination:
        """One destination; raises :class:`~billbridge.errors.UnknownDestination`."""
        return self.plugins.destination(key)

    def seal(self, key: str, config: Mapping[str, Any]) -> dict[str, Any]:
        """The destination configuration with its secrets (``writeOnly``) encrypted.

        A sealed value is stored as ``{"$sealed": "<Fernet token>"}``, so neither the database
        nor an Integration's ``repr`` holds the secret.
        """
        try:
            secrets = secret_options(self.destination(key).schema)
        except UnknownDestination:
            secrets = []
        sealed: dict[str, Any] = thaw(config)
        for name in secrets:
            value = sealed.get(name)
            if isinstance(value, str):
                sealed[name] = {SEALED: self.secret_box.encrypt(Secret(value))}
        return sealed

    def unseal(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The destination configuration with sealed secrets decrypted (for the plugin)."""
        plain: dict[str, Any] = thaw(config)
        for name, value in plain.items():
            if isinstance(value, Mapping) and set(value) == {SEALED}:
                plain[name] = self.secret_box.decrypt(value[SEALED]).reveal()
        return plain

    def api_base_url(self, key: str) -> str:
        """The destination's API root: the configured override, else what the plugin declares."""
        override = self.settings.destination(key).api_base_url
        return (override or self.destination(key).api_base_url or "").rstrip("/")

    def schema(self, key: str) -> dict[str, Any]:
        """The destination's configuration panel (JSON Schema draft-07), a fresh copy."""
        schema: dict[str, Any] = thaw(self.destination(key).schema)
        return schema

    # -- shared helpers ---------------------------------------------------------------------------

    def _unit_of_work(self, work: Callable[[Any], _T]) -> _T:
        with self.db.session() as session:
            return work(session)


class BillCache:
    """Parsed bill versions waiting for delivery, by ``(bill id, version)``: bounded, thread-safe.

    Submission puts each bill with the number of runs it queued, and delivery settles runs as
    they end; a bill whose runs have all ended is dropped at once. The cache so holds the bills
    still to be sent, not the month's history: less memory, and fewer long-lived objects for
    the garbage collector to walk on every full collection (a parsed 20-line bill is about 40
    of them). Past ``size`` the least recently used go first, which also covers bills whose
    runs another process delivers. A bill read back from the database for delivery is kept
    until the runs that asked for it end.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, int], tuple[Bill, Account]] = OrderedDict()
        #: Runs not yet ended, by cached bill version.
        self._open: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get_many(
        self, keys: Iterable[tuple[str, int]]
    ) -> dict[tuple[str, int], tuple[Bill, Account]]:
        """The cached ones among ``keys``."""
        found: dict[tuple[str, int], tuple[Bill, Account]] = {}
        with self._lock:
            for key in keys:
                item = self._items.get(key)
                if item is not None:
                    self._items.move_to_end(key)
                    found[key] = item
        return found

    def put_many(
        self,
        items: Mapping[tuple[str, int], tuple[Bill, Account]],
        runs: Mapping[tuple[str, int], int],
    ) -> None:
        """Keep these bills until ``runs[key]`` more of their runs have ended.

        A bill with no runs to wait for is not kept (one already kept keeps its count).
        """
        if self.size <= 0:
            return
        with self._lock:
            for key, item in items.items():
                waiting = self._open.get(key, 0) + runs.get(key, 0)
                if waiting <= 0:
                    continue
                self._open[key] = waiting
                self._items[key] = item
                self._items.move_to_end(key)
            while len(self._items) > self.size:
                key, _ = self._items.popitem(last=False)
                self._open.pop(key, None)

    def settle(self, keys: Iterable[tuple[str, int]]) -> None:
        """One run of each of these bill versions has ended (once per run)."""
        with self._lock:
            for key in keys:
                waiting = self._open.get(key)
                if waiting is None:
                    continue
                if waiting <= 1:
                    del self._open[key]
                    self._items.pop(key, None)
                else:
                    self._open[key] = waiting - 1


def _keep_redacted(given: Mapping[str, Any], stored: Mapping[str, Any]) -> dict[str, Any]:
    kept = dict(given)
    for name, value in given.items():
        if value == REDACTED and name in stored:
            kept[name] = stored[name]
    return kept


def _config_dict(config: GlobalConfig | BillEntityConfig) -> dict[str, Any]:
    """A configuration as its panel's values (unset options left out, as a UI sends them)."""
    return {k: v for k, v in converter.unstructure(config).items() if v is not None}


def _new_id() -> str:
    return str(uuid.uuid4())


class Integrations:
    """Create, read, update, delete, enable and disable integrations (``engine.integrations``)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(
        self,
        *,
        name: str,
        destination: str,
        config: Mapping[str, Any] | None = None,
        entity_config: Mapping[str, Any] | None = None,
        destination_config: Mapping[str, Any] | None = None,
        entity_type: str = "Bill",
        enabled: bool = True,
    ) -> Integration:
        """Validate and save a new integration.

        :param name: the integration's name (also ``config["name"]``).
        :param destination: an installed destination key.
        :param config: the global configuration panel's values.
        :param entity_config: the Bill entity configuration panel's values.
        :param destination_config: the destination's own panel values.
        :raises ValidationFailed: with every problem found; nothing is saved.
        """
        global_config, bill_config, dest_config = self.validate(
            destination=destination,
            config={**(config or {}), "name": name},
            entity_config=entity_config or {},
            destination_config=destination_config or {},
            entity_type=entity_type,
        )
        now = self._engine.clock()
        integration = Integration(
            id=_new_id(),
            destination=destination,
            entity_type=entity_type,
            config=global_config,
            entity_config=bill_config,
            destination_config=self._engine.seal(destination, dest_config),
            enabled=enabled,
            created_at=now,
            updated_at=now,
        )
        return self._engine._unit_of_work(lambda s: IntegrationRepository(s).add(integration))

    def get(self, integration_id: str) -> Integration:
        """One integration; raises :class:`~billbridge.errors.NotFound`."""
        return self._engine._unit_of_work(lambda s: IntegrationRepository(s).get(integration_id))

    def list(
        self, *, destination: str | None = None, enabled: bool | None = None
    ) -> list[Integration]:
        """Integrations, oldest first, optionally of one destination or enabled state."""
        return self._engine._unit_of_work(
            lambda s: IntegrationRepository(s).list(destination=destination, enabled=enabled)
        )

    def update(
        self,
        integration_id: str,
        *,
        version: int,
        name: str | None = None,
        config: Mapping[str, Any] | None = None,
        entity_config: Mapping[str, Any] | None = None,
        destination_config: Mapping[str, Any] | None = None,
    ) -> Integration:
        """Replace the given parts of an integration's configuration.

        :param version: the version the caller read (optimistic locking): if the integration
            changed since, :class:`~billbridge.errors.StaleVersion` is raised and nothing saved.
        :raises ValidationFailed: the new configuration is refused as a whole.
        """
        current = self.get(integration_id)
        new_config = dict(config) if config is not None else _config_dict(current.config)
        new_config["name"] = name if name is not None else new_config.get("name", current.name)
        global_config, bill_config, dest_config = self.validate(
            destination=current.destination,
            config=new_config,
            entity_config=(
                entity_config if entity_config is not None else _config_dict(current.entity_config)
            ),
            destination_config=self._engine.unseal(
                # "********" for a secret means "keep the one stored": UIs never see it.
                _keep_redacted(destination_config, current.destination_config)
                if destination_config is not None
                else current.destination_config
            ),
            entity_type=current.entity_type,
        )
        changed = attrs.evolve(
            current,
            config=global_config,
            entity_config=bill_config,
            destination_config=self._engine.seal(current.destination, dest_config),
            updated_at=self._engine.clock(),
        )
        return self._engine._unit_of_work(
            lambda s: IntegrationRepository(s).update(changed, expected_version=version)
        )

    def delete(self, integration_id: str) -> None:
        """Delete an integration with its linked mappings, runs, events and ledger."""
        self._engine._unit_of_work(lambda s: IntegrationRepository(s).delete(integration_id))

    def connect(self, integration_id: str, credential_id: str) -> Integration:
        """Connect a credential to an integration (connecting another one changes it).

        The credential must be COMPLETE and for the integration's destination.
        """
        current_destination = self.get(integration_id).destination
        if self._engine.destination(current_destination).oauth is None:
            raise ValidationFailed(
                [FieldError("/credentialId", f"{current_destination} needs no credential")],
                summary="cannot connect the credential",
            )
        credential = self._engine.credentials.get(credential_id)
        box = self._engine.secret_box

        def work(session: Any) -> Integration:
            repo = IntegrationRepository(session)
            current = repo.get(integration_id)
            errors = []
            if credential.destination != current.destination:
                errors.append(
                    FieldError(
                        "/credentialId",
                        f"credential {credential.name!r} is for {credential.destination}, "
                        f"this integration delivers to {current.destination}",
                    )
                )
            if credential.status.value != "COMPLETE":
                errors.append(
                    FieldError(
                        "/credentialId",
                        f"credential {credential.display_name} is not complete: finish its "
                        "consent first",
                    )
                )
            if errors:
                raise ValidationFailed(errors, summary="cannot connect the credential")
            # Lock the credential row too: a credential deleted meanwhile must not be linked.
            CredentialRepository(session, box).get(credential_id, for_update=True)
            return repo.update(
                attrs.evolve(current, credential_id=credential_id, updated_at=self._engine.clock())
            )

        return self._engine._unit_of_work(work)

    def disconnect(self, integration_id: str) -> Integration:
        """Disconnect the integration's credential (the credential itself stays)."""

        def work(session: Any) -> Integration:
            repo = IntegrationRepository(session)
            current = repo.get(integration_id)
            if current.credential_id is None:
                raise BillbridgeError(f"integration {current.name!r} is not connected")
            return repo.update(
                attrs.evolve(current, credential_id=None, updated_at=self._engine.clock())
            )

        return self._engine._unit_of_work(work)

    def enable(self, integration_id: str) -> Integration:
        """Enable an integration; the successive-error count starts again from zero."""
        return self._set_enabled(integration_id, enabled=True)

    def disable(self, integration_id: str) -> Integration:
        """Disable an integration: its bills are no longer routed or delivered."""
        return self._set_enabled(integration_id, enabled=False)

    def _set_enabled(self, integration_id: str, *, enabled: bool) -> Integration:
        def work(session: Any) -> Integration:
            repo = IntegrationRepository(session)
            current = repo.get(integration_id)
            changed = attrs.evolve(
                current,
                enabled=enabled,
                consecutive_errors=0 if enabled else current.consecutive_errors,
                updated_at=self._engine.clock(),
            )
            return repo.update(changed)

        return self._engine._unit_of_work(work)

    # -- validation -------------------------------------------------------------------------------

    def validate(
        self,
        *,
        destination: str,
        config: Mapping[str, Any],
        entity_config: Mapping[str, Any],
        destination_config: Mapping[str, Any],
        entity_type: str = "Bill",
    ) -> tuple[GlobalConfig, BillEntityConfig, dict[str, Any]]:
        """Validate a whole integration configuration without saving anything.

        Checks, and reports together: the destination is installed and takes the entity type;
        the global and entity configuration against the core's panels; the account filter's
        syntax (with its position); the destination configuration against the plugin's panel
        and then the plugin's ``validate_config``.

        :returns: the parsed global and entity configuration and the destination configuration.
        :raises ValidationFailed: listing every problem with its path.
        """
        errors: list[FieldError] = []
        plugin_destination: Destination | None = None
        try:
            plugin_destination = self._engine.destination(destination)
        except UnknownDestination as exc:
            errors.append(FieldError("/destination", str(exc)))
        if plugin_destination is not None and entity_type not in plugin_destination.entity_types:
            errors.append(
                FieldError(
                    "/entityType",
                    f"{destination} does not take {entity_type!r}; it takes "
                    + ", ".join(plugin_destination.entity_types),
                )
            )

        errors += validate(dict(config), core_schema("global-config"), base_path="/config")
        name = config.get("name")
        if isinstance(name, str) and name and not name.strip():
            errors.append(FieldError("/config/name", "must not be blank"))
        expression = config.get("accountFilter")
        if isinstance(expression, str) and expression.strip():
            try:
                filter_expr.parse(expression)
            except filter_expr.FilterSyntaxError as exc:
                # One line, where a UI shows it; the position is what a person needs.
                where = f"at line {exc.line}, column {exc.column}"
                hint = f" ({exc.hint})" if exc.hint else ""
                errors.append(FieldError("/config/accountFilter", f"{exc.message} {where}{hint}"))
        errors += validate(
            dict(entity_config), core_schema("bill-entity-config"), base_path="/entityConfig"
        )

        if plugin_destination is not None:
            schema_errors = validate(
                dict(destination_config),
                plugin_destination.schema,
                base_path="/destinationConfig",
            )
            errors += schema_errors
            if not schema_errors and self._engine.plugins.has_hook(destination, "validate_config"):
                # The plugin's own checks assume a configuration that fits its schema.
                semantic = self._engine.plugins.call(
                    "validate_config", destination, config=dict(destination_config)
                )
                errors += [
                    FieldError(f"/destinationConfig{e.path if e.path != '/' else ''}", e.message)
                    for e in semantic or ()
                ]
        if errors:
            raise ValidationFailed(errors, summary="integration configuration refused")
        return (
            converter.structure(dict(config), GlobalConfig),
            converter.structure(dict(entity_config), BillEntityConfig),
            thaw(destination_config),
        )


@attrs.frozen
class _MappingInput:
    entity: str
    entity_id: str
    external_table: str
    external_id: str
    external_system: str | None = None
    integration_id: str | None = None


class Mappings:
    """External mappings (``engine.mappings``): m3ter entity → record in a destination."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(
        self,
        *,
        entity: str,
        entity_id: str,
        external_table: str,
        external_id: str,
        external_system: str | None = None,
        integration_id: str | None = None,
    ) -> ExternalMapping:
        """Map an m3ter entity to an external record.

        :param entity: the m3ter entity type (``Account``, ``Product``, ``Aggregation``...).
        :param entity_id: the m3ter id.
        :param external_table: the destination table (``Customer``, ``Contact``, ``Item``...).
        :param external_id: the record's id in the destination.
        :param external_system: the destination key. May be left out when ``integration_id``
            is given, or when exactly one installed destination has ``external_table``.
        :param integration_id: link the mapping to one integration (it then wins over a global
            mapping for that integration, and is the only kind an enforcing integration uses).
        :raises ValidationFailed: a field is wrong or missing; :class:`~billbridge.errors.Conflict`
            the mapping duplicates another.
        """
        item = _MappingInput(
            entity, entity_id, external_table, external_id, external_system, integration_id
        )
        return self.create_many([item], _single=True)[0]

    def create_many(
        self, mappings: Iterable[Mapping[str, Any] | _MappingInput], *, _single: bool = False
    ) -> builtins.list[ExternalMapping]:
        """Create several mappings, all or nothing.

        Each item is a mapping with the keys of :meth:`create` (``entity``, ``entity_id``,
        ``external_table``, ``external_id``, optional ``external_system``, ``integration_id``)
        or m3ter's camelCase names (``m3terEntity``, ``m3terId``, ``externalSystem``,
        ``externalTable``, ``externalId``, ``integrationConfigId``). Errors are reported with
        the item's index (``/3/externalTable``).
        """
        items = [self._coerce(m) for m in mappings]
        integrations = {
            i.id: i
            for i in self._engine.integrations.list()
            if i.id in {m.integration_id for m in items if m.integration_id}
        }
        errors: list[FieldError] = []
        prepared: list[ExternalMapping] = []
        now = self._engine.clock()
        for index, item in enumerate(items):
            base = "" if _single else f"/{index}"
            mapping, problems = self._prepare(item, integrations, now, base)
            errors += problems
            if mapping is not None:
                prepared.append(mapping)
        if errors:
            raise ValidationFailed(errors, summary="external mapping refused")
        return self._engine._unit_of_work(lambda s: MappingRepository(s).add_many(prepared))

    @staticmethod
    def _coerce(item: Mapping[str, Any] | _MappingInput) -> _MappingInput:
        if isinstance(item, _MappingInput):
            return item

        def pick(*names: str) -> Any:
            for name in names:
                if item.get(name) is not None:
                    return item[name]
            return None

        def text(*names: str) -> str:
            value = pick(*names)
            # Ids typed into a UI may arrive as numbers (QuickBooks ids are numeric): keep text.
            return "" if value is None else str(value)

        return _MappingInput(
            entity=text("entity", "m3terEntity"),
            entity_id=text("entity_id", "m3terId"),
            external_table=text("external_table", "externalTable"),
            external_id=text("external_id", "externalId"),
            external_system=pick("external_system", "externalSystem"),
            integration_id=pick("integration_id", "integrationConfigId"),
        )

    def _prepare(
        self,
        item: _MappingInput,
        integrations: Mapping[str, Integration],
        now: datetime,
        base: str,
    ) -> tuple[ExternalMapping | None, list[FieldError]]:
        document: dict[str, Any] = {
            "m3terEntity": item.entity,
            "m3terId": item.entity_id,
            "externalSystem": item.external_system or "",
            "externalTable": item.external_table,
            "externalId": str(item.external_id),
        }
        errors: list[FieldError] = []
        system = item.external_system
        if item.integration_id is not None:
            integration = integrations.get(item.integration_id)
            if integration is None:
                errors.append(
                    FieldError(
                        f"{base}/integrationConfigId",
                        f"integration {item.integration_id} not found",
                    )
                )
            elif system is None:
                system = integration.destination
            elif system != integration.destination:
                errors.append(
                    FieldError(
                        f"{base}/externalSystem",
                        f"integration {integration.id} delivers to {integration.destination}, "
                        f"not {system}",
                    )
                )
        if system is None and item.external_table:
            owners = [
                d.key
                for d in self._engine.destinations()
                if item.external_table in d.external_tables
            ]
            if len(owners) == 1:
                system = owners[0]
            else:
                hint = (
                    f"{item.external_table} exists in " + ", ".join(owners)
                    if owners
                    else f"no installed destination has a {item.external_table} table"
                )
                errors.append(FieldError(f"{base}/externalSystem", f"is required ({hint})"))
        document["externalSystem"] = system or ""
        reported = {e.path for e in errors}
        errors += [
            e
            for e in validate(document, core_schema("external-mapping"), base_path=base)
            if e.path not in reported
        ]
        if system:
            try:
                destination = self._engine.destination(system)
            except UnknownDestination as exc:
                errors.append(FieldError(f"{base}/externalSystem", str(exc)))
            else:
                if item.external_table and item.external_table not in destination.external_tables:
                    errors.append(
                        FieldError(
                            f"{base}/externalTable",
                            f"{system} has no table {item.external_table!r}; it has "
                            + ", ".join(destination.external_tables),
                        )
                    )
        if errors or system is None:
            return None, errors
        return (
            ExternalMapping(
                id=_new_id(),
                m3ter_entity=item.entity,
                m3ter_id=item.entity_id,
                external_system=system,
                external_table=item.external_table,
                external_id=str(item.external_id),
                integration_id=item.integration_id,
                created_at=now,
            ),
            [],
        )

    def get(self, mapping_id: str) -> ExternalMapping:
        """One mapping; raises :class:`~billbridge.errors.NotFound`."""
        return self._engine._unit_of_work(lambda s: MappingRepository(s).get(mapping_id))

    def list(
        self,
        *,
        entity: str | None = None,
        entity_id: str | None = None,
        external_system: str | None = None,
        external_table: str | None = None,
        integration_id: str | None = None,
        linked: bool | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> builtins.list[ExternalMapping]:
        """Mappings matching every given filter, oldest first."""
        return self._engine._unit_of_work(
            lambda s: MappingRepository(s).list(
                m3ter_entity=entity,
                m3ter_id=entity_id,
                external_system=external_system,
                external_table=external_table,
                integration_id=integration_id,
                linked=linked,
                limit=limit,
                offset=offset,
            )
        )

    def find(
        self, entity: str, entity_id: str, *, external_system: str | None = None
    ) -> builtins.list[ExternalMapping]:
        """Every mapping (global and linked) of one m3ter entity."""
        return self._engine._unit_of_work(
            lambda s: MappingRepository(s).find_by_entity(entity, entity_id, external_system)
        )

    def find_external(
        self, external_system: str, external_table: str, external_id: str
    ) -> builtins.list[ExternalMapping]:
        """Every mapping that points at one external record."""
        return self._engine._unit_of_work(
            lambda s: MappingRepository(s).find_by_external(
                external_system, external_table, external_id
            )
        )

    def delete(self, mapping_id: str) -> None:
        """Delete one mapping; raises :class:`~billbridge.errors.NotFound`."""
        self._engine._unit_of_work(lambda s: MappingRepository(s).delete(mapping_id))
