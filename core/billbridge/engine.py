"""The embedding API: one :class:`Engine` object a billing service talks to.

.. code-block:: python

    engine = billbridge.Engine()                      # SQLite in ~/.billbridge, migrated
    engine.destinations(); engine.schema("xero")
    integ = engine.integrations.create(name="Xero UK", destination="xero",
                                       config={"accountFilter": 'address.country == UK'},
                                       destination_config={"invoiceStatus": "AUTHORISED"})
    engine.mappings.create(entity="Account", entity_id=account_id,
                           external_table="Contact", external_id=contact_id)
    engine.submit_bill(bill_json, account_json)
    engine.deliver_pending()

The engine is a thin facade: it builds the store, the plugin registry and the services
(:mod:`billbridge.services`) once and hands each what it needs. It is safe to use from several
threads at once: every call opens its own unit of work (one database transaction), shared state
(the bill cache, the external entities cache, the key ring) is locked, and the HTTP client is
thread-safe. The HTTP service (:mod:`billbridge.api`) relies on it: one engine per process
serves every request from a thread pool, beside the background worker.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import attrs
import httpx

from billbridge import __version__
from billbridge.domain.clock import Clock, SystemClock
from billbridge.domain.intake import AccountInput, BillInput, Received, receive, receive_at
from billbridge.domain.models import Run, thaw
from billbridge.domain.runs import RetryPolicy
from billbridge.domain.schemas import core_schema, published_panel, published_schemas
from billbridge.domain.uischema import ui_schema
from billbridge.errors import FieldError, ValidationFailed
from billbridge.plugin.contract import Destination
from billbridge.plugin.manager import PluginRegistry, load_plugins
from billbridge.secrets import SecretBox
from billbridge.services.activity import Activity
from billbridge.services.api_keys import ApiKeys
from billbridge.services.bill_cache import BillCache
from billbridge.services.config_secrets import ConfigSecrets
from billbridge.services.credentials import Credentials
from billbridge.services.delivery import Deliverer, DeliveryReport, ProgressCallback
from billbridge.services.delivery.groups import TenantGroup
from billbridge.services.delivery.prepare import Preparer
from billbridge.services.delivery.record import Recorder
from billbridge.services.delivery.send import Sender
from billbridge.services.events import Events
from billbridge.services.explain import Explainer, Explanation
from billbridge.services.external import ExternalEntities
from billbridge.services.filters import FilterCheck, check_filter
from billbridge.services.integrations import Integrations
from billbridge.services.mappings import Mappings
from billbridge.services.monitoring import Monitoring
from billbridge.services.preview import Previewer
from billbridge.services.runs import Runs, Skips
from billbridge.services.status import StatusPoller, StatusReport
from billbridge.services.submission import SubmitCounts, SubmitResult, Submitter
from billbridge.services.webhooks import Webhooks
from billbridge.settings import Settings
from billbridge.store import Database, atomically, unit_of_work_factory

__all__ = ["Engine"]


class Engine:
    """billbridge, embedded: destinations, integrations, mappings, credentials and delivery.

    :param database_url: SQLAlchemy URL; default ``BILLBRIDGE_DATABASE_URL`` or a SQLite file in
        ``BILLBRIDGE_HOME`` (``~/.billbridge``). The schema is migrated on first use.
    :param settings: everything else configurable (see :class:`~billbridge.settings.Settings`).
    :param plugins: a plugin registry; default: every installed destination plugin.
    :param clock: the time and how to wait (tests and benchmarks pass faster ones).
    :param secret_box: encryption of secrets at rest; default: keys from
        ``BILLBRIDGE_SECRET_KEY``, or for the embedded SQLite default a key file in the home
        directory (created with mode 0600 on first use).
    :param retry: when failed deliveries are tried again, and when they give up.
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        settings: Settings | None = None,
        plugins: PluginRegistry | None = None,
        clock: Clock | None = None,
        secret_box: SecretBox | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.settings = settings or Settings()
        if database_url is not None:
            self.settings = attrs.evolve(self.settings, database_url=database_url)
        self.plugins = plugins if plugins is not None else load_plugins()
        self.plugins.set_timeouts(self.settings.plugin_timeout_for)
        self.clock: Clock = clock or SystemClock()
        self.db = Database(
            self.settings.resolved_database_url, busy_timeout=self.settings.sqlite_busy_timeout
        )
        self.db.ensure_schema()
        self._secret_box = secret_box
        self._secret_box_lock = threading.Lock()
        self.uow = unit_of_work_factory(self.db, lambda: self.secret_box)
        #: One HTTP client (connection pool, timeouts) for every call to a destination.
        self.http = httpx.Client(
            timeout=httpx.Timeout(self.settings.http_timeout, connect=10.0),
            headers={"User-Agent": f"billbridge/{__version__}"},
            follow_redirects=False,
        )
        self._compose(retry)

    def _compose(self, retry: RetryPolicy | None) -> None:
        uow, plugins, clock = self.uow, self.plugins, self.clock
        self.config_secrets = ConfigSecrets(
            uow=uow, plugins=plugins, secret_box=lambda: self.secret_box
        )
        self.integrations = Integrations(
            uow=uow, plugins=plugins, secrets=self.config_secrets, clock=clock
        )
        self.mappings = Mappings(uow=uow, plugins=plugins, clock=clock)
        self.credentials = Credentials(
            uow=uow, plugins=plugins, settings=self.settings, clock=clock, http=self.http
        )
        self.runs = Runs(uow=uow, clock=clock)
        self.skips = Skips(uow=uow)
        self.events = Events(uow=uow, clock=clock)
        #: Parsed bill versions shared by submission and delivery in this process.
        self.bill_cache = BillCache(self.settings.bill_cache_size)
        self._submitter = Submitter(uow=uow, clock=clock, bill_cache=self.bill_cache)
        self._previewer = Previewer(uow=uow, plugins=plugins, unseal=self.config_secrets.unseal)
        sender = Sender(
            plugins=plugins,
            credentials=self.credentials,
            clock=clock,
            http=self.http,
            api_base_url=self.api_base_url,
        )
        self.deliverer = Deliverer(
            uow=uow,
            plugins=plugins,
            clock=clock,
            settings=self.settings,
            preparer=Preparer(
                uow=uow, bill_cache=self.bill_cache, unseal=self.config_secrets.unseal
            ),
            sender=sender,
            recorder_factory=lambda worker_id, policy: Recorder(
                uow=uow,
                plugins=plugins,
                clock=clock,
                bill_cache=self.bill_cache,
                retry=policy,
                worker_id=worker_id,
            ),
            retry=retry,
        )
        #: Reads delivered documents' statuses back (paid, voided...) on each integration's
        #: schedule, within the tenants' limits.
        self.status = StatusPoller(
            uow=uow,
            plugins=plugins,
            clock=clock,
            settings=self.settings,
            sender=sender,
            unseal=self.config_secrets.unseal,
            worker_id=f"{self.deliverer.worker_id}/status",
        )
        self._compose_service_face()

    def _compose_service_face(self) -> None:
        """What the HTTP service (``billbridge serve``) needs beyond the embedding API."""
        uow, plugins, clock = self.uow, self.plugins, self.clock
        #: API keys of the HTTP service.
        self.api_keys = ApiKeys(uow=uow, clock=clock)
        #: Destination tables for pickers, names of mapped ids, connection tests.
        self.external = ExternalEntities(
            uow=uow,
            plugins=plugins,
            credentials=self.credentials,
            clock=clock,
            http=self.http,
            api_base_url=self.api_base_url,
            ttl=self.settings.external_entities_ttl,
        )
        #: Events and delivery outcomes in time order (webhooks, event streams).
        self.activity = Activity(uow=uow)
        #: Signed notifications of the activity feed.
        self.webhooks = Webhooks(uow=uow, clock=clock, http=self.http)
        #: Gauges and outcomes for metrics.
        self.monitoring = Monitoring(uow=uow, plugins=plugins, clock=clock)
        self._explainer = Explainer(uow=uow)

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        """Release database and HTTP connections."""
        self.http.close()
        self.db.dispose()

    @property
    def secret_box(self) -> SecretBox:
        """The key ring for secrets at rest (made on first use: engines without credentials
        never need a key)."""
        with self._secret_box_lock:
            if self._secret_box is None:
                key_file = self.settings.key_file if self.db.is_sqlite else None
                self._secret_box = SecretBox.from_env(key_file=key_file)
            return self._secret_box

    def use_secret_keys(self, secret_box: SecretBox) -> None:
        """Replace the key ring (for rotation: the new key first, the old ones after it)."""
        with self._secret_box_lock:
            self._secret_box = secret_box

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Engine({self.db.display_url!r})"

    def rotate_secrets(self) -> dict[str, int]:
        """Re-encrypt every stored secret with the newest key; how many of each kind.

        Rotation: put a new key first in ``BILLBRIDGE_SECRET_KEY`` (keep the old one after it),
        run this, then drop the old key (see :meth:`ConfigSecrets.rotate`).
        """
        return atomically(self.uow, self.config_secrets.rotate)

    # -- bills ------------------------------------------------------------------------------

    def submit_bill(
        self, bill: BillInput, account: AccountInput, *, base_path: str | None = None
    ) -> SubmitResult:
        """Route one bill version to every enabled Bill integration and record each decision.

        :param bill: m3ter's bill (JSON text, parsed JSON, or a
            :class:`~billbridge.domain.models.Bill`).
        :param account: the bill's account, likewise.
        :param base_path: report refused input under ``{base_path}/bill`` and
            ``{base_path}/account`` (default: at the refused document's own paths).
        :returns: the runs queued (WAITING) and the skips with their reasons.
        :raises ValidationFailed: not valid m3ter JSON, or the account does not match the bill;
            nothing is stored then.
        :raises Conflict: this bill version was received before with other content.
        """
        received = (
            receive(bill, account) if base_path is None else receive_at(bill, account, base_path)
        )
        return self._submitter.submit([received])

    def submit_all(
        self, items: Sequence[tuple[BillInput, AccountInput]], *, base_path: str = ""
    ) -> SubmitResult:
        """Submit several bills all or nothing: one refused document stores none of them.

        Every refused document is reported, under ``{base_path}/{index}/bill`` or
        ``.../account``. Meant for requests of up to a few hundred bills; a backfill streams
        through :meth:`submit_bills` instead.
        """
        received: list[Received] = []
        errors: list[FieldError] = []
        for index, (bill, account) in enumerate(items):
            try:
                received.append(receive_at(bill, account, f"{base_path}/{index}"))
            except ValidationFailed as exc:
                errors += exc.errors
        if errors:
            raise ValidationFailed(errors, summary="bills refused; none was submitted")
        return self._submitter.submit(received)

    def explain(
        self, bill: BillInput, account: AccountInput, *, base_path: str = ""
    ) -> Explanation:
        """Which integrations would take this bill version now, and why the others would not.

        The same decisions :meth:`submit_bill` would make and record; nothing is recorded.
        """
        return self._explainer.explain(bill, account, base_path=base_path)

    def submit_bills(
        self, pairs: Iterable[tuple[BillInput, AccountInput]], *, chunk: int = 500
    ) -> Iterator[SubmitCounts]:
        """Submit many bills (a backfill) in bounded chunks; yields each chunk's counts."""
        return self._submitter.submit_many(pairs, chunk=chunk)

    def preview(
        self,
        bill: BillInput,
        account: AccountInput,
        integration_id: str,
        *,
        base_path: str | None = None,
    ) -> dict[str, Any]:
        """The exact request the integration would send for this bill; nothing sent or stored.

        :param base_path: as for :meth:`submit_bill`.
        :raises MissingMapping: the account (or an item) has no mapping;
            :class:`~billbridge.errors.BillbridgeError` when the destination cannot preview.
        """
        return self._previewer.preview(bill, account, integration_id, base_path=base_path)

    def check_filter(self, expression: str, account: AccountInput | None = None) -> FilterCheck:
        """Check an account filter expression (and whether ``account`` matches it)."""
        return check_filter(expression, account)

    def deliver_pending(
        self,
        *,
        max_runs: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> DeliveryReport:
        """Deliver every run due now (see :class:`~billbridge.services.delivery.Deliverer`)."""
        return self.deliverer.deliver_pending(max_runs=max_runs, progress=progress)

    def deliver(self, run_id: str) -> Run:
        """Deliver one run now, from any job system; returns the run as it then is (STARTED
        when another worker is sending it; see :meth:`Deliverer.deliver`)."""
        return self.deliverer.deliver(run_id)

    def next_due_at(self) -> datetime | None:
        """When the next waiting run becomes due (``None``: nothing is waiting)."""
        return self.deliverer.next_due_at()

    def due_tenants(self) -> list[TenantGroup]:
        """The destination tenants with runs due now, each with its ``key`` and
        ``integration_ids``: a job system's fan-out, one :meth:`deliver_tenant` job each."""
        return self.deliverer.due_tenants()

    def deliver_tenant(
        self, key: str, integration_ids: Sequence[str], *, max_runs: int | None = None
    ) -> DeliveryReport | None:
        """Deliver one tenant's due runs under its lease; ``None`` when the tenant is being
        delivered elsewhere already (see :meth:`Deliverer.deliver_tenant
        <billbridge.services.delivery.Deliverer.deliver_tenant>`)."""
        return self.deliverer.deliver_tenant(key, integration_ids, max_runs=max_runs)

    def poll_invoice_statuses(self, *, limit: int | None = None) -> StatusReport:
        """Read back the status of every delivered document due for it (paid, voided...).

        Documents are read on each integration's ``statusCheckMinutes`` schedule until they are
        settled; ``billbridge worker`` and the API's background worker call this after each
        delivery pass. See :mod:`billbridge.services.status`.
        """
        if limit is None:
            return self.status.poll()
        return self.status.poll(limit=limit)

    def next_status_check_at(self) -> datetime | None:
        """When the next status read-back is due (``None``: none is scheduled)."""
        return self.status.next_check_at()

    # -- destinations -----------------------------------------------------------------------------

    def destinations(self) -> list[Destination]:
        """Every installed destination, by key order."""
        return [self.plugins.destinations[k] for k in sorted(self.plugins.destinations)]

    def destination(self, key: str) -> Destination:
        """One destination; raises :class:`~billbridge.errors.UnknownDestination`."""
        return self.plugins.destination(key)

    def api_base_url(self, key: str) -> str:
        """The destination's API root: the configured override, else what the plugin declares."""
        override = self.settings.destination(key).api_base_url
        return (override or self.destination(key).api_base_url or "").rstrip("/")

    def schema(self, key: str) -> dict[str, Any]:
        """The destination's configuration panel (JSON Schema draft-07), a fresh copy."""
        schema: dict[str, Any] = thaw(self.destination(key).schema)
        return schema

    def panel_schema(self, key: str) -> dict[str, Any]:
        """The destination's panel as published for UIs: an ``$id`` of its own and secrets
        that accept the sentinel (see :func:`~billbridge.domain.schemas.published_panel`)."""
        return published_panel(key, self.destination(key).schema)

    def published_schemas(self) -> dict[str, dict[str, Any]]:
        """Every schema a UI builder needs (see
        :func:`~billbridge.domain.schemas.published_schemas`)."""
        return published_schemas({d.key: d.schema for d in self.destinations()})

    def forms(
        self,
        key: str,
        *,
        entity_endpoint: str | None = None,
        filter_endpoint: str | None = None,
    ) -> dict[str, dict[str, Any]]:
        """The three panels of an integration to ``key``, each ``{"schema", "uiSchema"}``.

        ``config`` (global), ``entityConfig`` (Bill) and ``destinationConfig`` (the
        destination's own panel). The uiSchemas are for react-jsonschema-form (see
        :mod:`billbridge.domain.uischema`); ``entity_endpoint`` (with ``{table}``) and
        ``filter_endpoint`` are where its picker and filter widgets call.
        """
        schemas = {
            "config": core_schema("global-config"),
            "entityConfig": core_schema("bill-entity-config"),
            "destinationConfig": self.panel_schema(key),
        }
        return {
            part: {
                "schema": schema,
                "uiSchema": ui_schema(
                    schema, entity_endpoint=entity_endpoint, filter_endpoint=filter_endpoint
                ),
            }
            for part, schema in schemas.items()
        }

    def readiness(self) -> dict[str, Any]:
        """Whether this engine can serve: the database answers and its schema is current.

        ``{"ready": bool, "database": "ok" | <why not>, "migration": <revision or None>,
        "expectedMigration": <head>}``; never raises.
        """
        head = self.db.head_revision()
        try:
            current = self.db.current_revision()
        except Exception as exc:  # an unreachable database is an answer here, not an error
            return {
                "ready": False,
                "database": f"unreachable ({type(exc).__name__})",
                "migration": None,
                "expectedMigration": head,
            }
        return {
            "ready": current == head,
            "database": "ok",
            "migration": current,
            "expectedMigration": head,
        }
