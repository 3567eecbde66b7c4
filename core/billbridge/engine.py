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
threads at once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import attrs
import httpx

from billbridge import __version__
from billbridge.domain.clock import Clock, SystemClock
from billbridge.domain.intake import AccountInput, BillInput, receive
from billbridge.domain.models import Run, thaw
from billbridge.domain.runs import RetryPolicy
from billbridge.plugin.contract import Destination
from billbridge.plugin.manager import PluginRegistry, load_plugins
from billbridge.secrets import SecretBox
from billbridge.services.bill_cache import BillCache
from billbridge.services.config_secrets import ConfigSecrets
from billbridge.services.credentials import Credentials
from billbridge.services.delivery import Deliverer, DeliveryReport, ProgressCallback
from billbridge.services.delivery.prepare import Preparer
from billbridge.services.delivery.record import Recorder
from billbridge.services.delivery.send import Sender
from billbridge.services.events import Events
from billbridge.services.external import ExternalEntities
from billbridge.services.integrations import Integrations
from billbridge.services.mappings import Mappings
from billbridge.services.preview import Previewer
from billbridge.services.runs import Runs, Skips
from billbridge.services.submission import SubmitCounts, SubmitResult, Submitter
from billbridge.settings import Settings
from billbridge.store import Database, UnitOfWork, atomically, unit_of_work_factory

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
        self.clock: Clock = clock or SystemClock()
        self.db = Database(self.settings.resolved_database_url)
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
        self.config_secrets = ConfigSecrets(plugins=plugins, secret_box=lambda: self.secret_box)
        self.integrations = Integrations(
            uow=uow, plugins=plugins, secrets=self.config_secrets, clock=clock
        )
        self.mappings = Mappings(uow=uow, plugins=plugins, clock=clock)
        self.credentials = Credentials(
            uow=uow, plugins=plugins, settings=self.settings, clock=clock, http=self.http
        )
        #: The destinations' own records (customers, items...), listed for an integration.
        self.external = ExternalEntities(
            uow=uow,
            plugins=plugins,
            credentials=self.credentials,
            http=self.http,
            api_base_url=self.api_base_url,
        )
        self.runs = Runs(uow=uow, clock=clock)
        self.skips = Skips(uow=uow)
        self.events = Events(uow=uow, clock=clock)
        #: Parsed bill versions shared by submission and delivery in this process.
        self.bill_cache = BillCache(self.settings.bill_cache_size)
        self._submitter = Submitter(uow=uow, clock=clock, bill_cache=self.bill_cache)
        self._previewer = Previewer(uow=uow, plugins=plugins, unseal=self.config_secrets.unseal)
        self.deliverer = Deliverer(
            uow=uow,
            plugins=plugins,
            clock=clock,
            settings=self.settings,
            preparer=Preparer(
                uow=uow, bill_cache=self.bill_cache, unseal=self.config_secrets.unseal
            ),
            sender=Sender(
                plugins=plugins,
                credentials=self.credentials,
                clock=clock,
                http=self.http,
                api_base_url=self.api_base_url,
            ),
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

    def rotate_secrets(self) -> int:
        """Re-encrypt every stored secret with the newest key; returns how many were rewritten.

        Rotation: put a new key first in ``BILLBRIDGE_SECRET_KEY`` (keep the old one after it),
        run this, then drop the old key.
        """

        def work(uow: UnitOfWork) -> int:
            count = 0
            for credential in uow.credentials.list():
                uow.credentials.update(credential)
                count += 1
            for destination in uow.oauth_apps.destinations():
                app = uow.oauth_apps.get(destination)
                if app is not None and app.client_id and app.client_secret:
                    uow.oauth_apps.put(
                        destination,
                        client_id=app.client_id,
                        client_secret=app.client_secret,
                        redirect_uri=app.redirect_uri,
                        at=self.clock.now(),
                    )
                    count += 1
            return count

        return atomically(self.uow, work)

    # -- bills ------------------------------------------------------------------------------

    def submit_bill(self, bill: BillInput, account: AccountInput) -> SubmitResult:
        """Route one bill version to every enabled Bill integration and record each decision.

        :param bill: m3ter's bill (JSON text, parsed JSON, or a
            :class:`~billbridge.domain.models.Bill`).
        :param account: the bill's account, likewise.
        :returns: the runs queued (WAITING) and the skips with their reasons.
        :raises ValidationFailed: not valid m3ter JSON, or the account does not match the bill;
            nothing is stored then.
        :raises Conflict: this bill version was received before with other content.
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
        return self._previewer.preview(bill, account, integration_id)

    def deliver_pending(
        self,
        *,
        max_runs: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> DeliveryReport:
        """Deliver every run due now (see :class:`~billbridge.services.delivery.Deliverer`)."""
        return self.deliverer.deliver_pending(max_runs=max_runs, progress=progress)

    def deliver(self, run_id: str) -> Run:
        """Deliver one run now, from any job system; returns the run as it ends up."""
        return self.deliverer.deliver(run_id)

    def next_due_at(self) -> datetime | None:
        """When the next waiting run becomes due (``None``: nothing is waiting)."""
        return self.deliverer.next_due_at()

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
