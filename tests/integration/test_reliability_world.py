"""The world the reliability tests share: both emulators, an engine wired to them, and counts.

The QuickBooks and Xero emulators are served by the test process over loopback HTTP; engines
(in this process or in worker processes) reach them through ``DestinationSettings`` overrides,
connect through the real OAuth consent, and deliver month-end-shaped bills
(``benchmarks.bills``) routed by account country: US accounts to QuickBooks, GB accounts to
Xero. What reached each emulator is counted per bill, so "exactly once" can be asserted.

The reliability suites (``test_reliability_*.py``) import from here; the tests below check
that the world itself works.

Heavy variants, and every test that starts processes, are marked ``slow``: the default
``pytest`` leaves them out and ``.ci/run`` runs them (``pytest -m slow``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest
from benchmarks.bills import PRODUCTS, account_id, bill_id, bill_pairs, product_id
from benchmarks.harness import REDIRECT, oauth_connect
from billbridge_quickbooks.emulator import Company, QuickBooksEmulator
from billbridge_quickbooks.translate import marked_bill
from billbridge_xero.emulator import XeroEmulator
from billbridge_xero.emulator.organisation import Organisation
from sqlalchemy import func, select

from billbridge.domain.clock import Clock, SystemClock
from billbridge.domain.models import RunStatus, Secret
from billbridge.engine import Engine
from billbridge.secrets import SecretBox, generate_key
from billbridge.settings import DestinationSettings, Settings
from billbridge.store.tables import RunRow
from billbridge.testing.emulation.faults import FaultPlan
from billbridge.testing.emulation.server import RunningServer, serve
from support import ROOT, db_session

TESTS = ROOT / "tests"
INTEGRATION = TESTS / "integration"
CLIENT_ID = "reliability-app"
CLIENT_SECRET = "reliability-client-secret-9f3a1c"
#: The day after the bills' date (they are dated 2026-11-01).
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC).timestamp()
ITEM_CODES = ("PLATFORM", "API-CALLS", "EVENTS", "SEATS", "STORAGE")
XERO_CONFIG: dict[str, Any] = {"defaultAccountCode": "200", "invoiceStatus": "AUTHORISED"}


@attrs.define
class Emulators:
    """Both emulators, served, with one company / organisation and the run's customers."""

    clock: Clock
    quickbooks: QuickBooksEmulator
    xero: XeroEmulator
    company: Company
    org: Organisation
    quickbooks_server: RunningServer
    xero_server: RunningServer
    #: External ids of the customers (QuickBooks) and contacts (Xero), by account number.
    customers: dict[int, str] = attrs.field(factory=dict)
    contacts: dict[int, str] = attrs.field(factory=dict)

    def endpoints(self) -> dict[str, dict[str, str]]:
        """``DestinationSettings`` keyword arguments per destination."""
        return {
            "quickbooks": self.quickbooks.endpoints(self.quickbooks_server.url),
            "xero": self.xero.endpoints(self.xero_server.url),
        }

    def destination_settings(self) -> dict[str, DestinationSettings]:
        """The OAuth app and emulator URLs for both destinations."""
        return {
            key: DestinationSettings(
                client_id=CLIENT_ID,
                client_secret=Secret(CLIENT_SECRET),
                redirect_uri=REDIRECT,
                **urls,
            )
            for key, urls in self.endpoints().items()
        }

    def add_accounts(self, quickbooks: int, xero: int) -> None:
        """Customers for QuickBooks accounts ``QB 1..n`` and contacts for Xero ``XE 1..n``."""
        for n in range(len(self.customers) + 1, quickbooks + 1):
            self.customers[n] = str(self.company.add_customer(f"Reliability {n}")["Id"])
        for n in range(len(self.contacts) + 1, xero + 1):
            self.contacts[n] = str(self.org.add_contact(f"Reliability {n}")["ContactID"])

    def quickbooks_documents(self) -> Counter[str]:
        """How many QuickBooks documents each bill id has (by the PrivateNote marker)."""
        found: Counter[str] = Counter()
        with self.quickbooks._lock:
            documents = [*self.company.invoices.values(), *self.company.credit_memos.values()]
        for document in documents:
            marked = marked_bill(document.get("PrivateNote"))
            found[marked[0] if marked else f"unmarked:{document['Id']}"] += 1
        return found

    def xero_documents(self) -> Counter[str]:
        """How many Xero documents each invoice number has."""
        with self.xero._lock:
            documents = list(self.org.documents.values())
        return Counter(str(d.get("Number")) for d in documents if d.get("Status") != "DELETED")


@pytest.fixture
def emulators() -> Iterator[Emulators]:
    """Both emulators on the real clock, limits on, no faults."""
    with running_emulators(SystemClock()) as world:
        yield world


class running_emulators:
    """Start both emulators on ``clock`` (context manager yielding :class:`Emulators`)."""

    def __init__(
        self,
        clock: Clock,
        *,
        limits: bool = True,
        quickbooks_faults: FaultPlan | None = None,
        xero_faults: FaultPlan | None = None,
        wrap: Mapping[str, Callable[[Any], Any]] | None = None,
        **emulator_args: Any,
    ) -> None:
        self.clock = clock
        #: ASGI middleware to put around an emulator (``quickbooks``/``xero``) before serving.
        self.wrap = dict(wrap or {})
        quickbooks_args = {
            k: v
            for k, v in emulator_args.items()
            if k in ("requests_per_minute", "requests_per_second", "batches_per_minute")
        }
        xero_args = {
            k: v
            for k, v in emulator_args.items()
            if k in ("minute_limit", "daily_cap", "concurrency_limit", "idempotency_window_minutes")
        }
        self.quickbooks = QuickBooksEmulator(
            clock, faults=quickbooks_faults, limits=limits, **quickbooks_args
        )
        self.xero = XeroEmulator(clock, faults=xero_faults, limits=limits, **xero_args)

    def __enter__(self) -> Emulators:
        company = self.quickbooks.add_company(name="Reliability Inc")
        self.quickbooks.oauth.add_client(CLIENT_ID, CLIENT_SECRET)
        org = self.xero.add_organisation("Reliability Ltd", base_currency="GBP", filler_contacts=3)
        self.xero.oauth.add_client(CLIENT_ID, CLIENT_SECRET)
        apps = {"quickbooks": self.quickbooks.app, "xero": self.xero.app}
        for key, middleware in self.wrap.items():
            apps[key] = middleware(apps[key])
        self._servers = [serve(apps["quickbooks"]), serve(apps["xero"])]
        return Emulators(
            self.clock,
            self.quickbooks,
            self.xero,
            company,
            org,
            self._servers[0],
            self._servers[1],
        )

    def __exit__(self, *_exc: object) -> None:
        for server in self._servers:
            server.stop()


def make_engine(
    database_url: str,
    world: Emulators,
    home: Path,
    key: str,
    *,
    clock: Clock | None = None,
    **settings: Any,
) -> Engine:
    """An engine with the bundled plugins, talking to the emulators, on ``clock``."""
    chosen = clock or world.clock
    return Engine(
        database_url,
        settings=Settings(home=home, destinations=world.destination_settings(), **settings),
        clock=chosen,
        secret_box=SecretBox([key]),
    )


@attrs.frozen
class Prepared:
    """What :func:`prepare` made: integration and credential ids per destination."""

    integrations: Mapping[str, str]
    credentials: Mapping[str, str]


def prepare(engine: Engine, world: Emulators, *, quickbooks: int, xero: int) -> Prepared:
    """Integrations routed by country, credentials through consent, every mapping needed."""
    world.add_accounts(quickbooks, xero)
    integrations: dict[str, str] = {}
    credentials: dict[str, str] = {}
    for key, country, config, table, prefix, externals, items in (
        ("quickbooks", "US", {}, "Customer", "QB", world.customers, None),
        ("xero", "GB", XERO_CONFIG, "Contact", "XE", world.contacts, ITEM_CODES),
    ):
        integration = engine.integrations.create(
            name=f"{key} reliability",
            destination=key,
            config={"accountFilter": f"address.country == {country}"},
            destination_config=config,
        )
        credential = oauth_connect(engine, key, f"{key} reliability")
        engine.integrations.connect(integration.id, credential.id)
        integrations[key], credentials[key] = integration.id, credential.id
        item_ids = list(items) if items else quickbooks_items(world)
        engine.mappings.create_many(
            [
                {
                    "entity": "Account",
                    "entity_id": account_id(prefix, n),
                    "external_system": key,
                    "external_table": table,
                    "external_id": external,
                }
                for n, external in externals.items()
            ]
            + [
                {
                    "entity": "Product",
                    "entity_id": product_id(i),
                    "external_system": key,
                    "external_table": "Item",
                    "external_id": item_ids[i % len(item_ids)],
                }
                for i in range(PRODUCTS)
            ]
        )
    return Prepared(integrations, credentials)


def quickbooks_items(world: Emulators) -> list[str]:
    """The ids of the QuickBooks company's active items."""
    return [str(i["Id"]) for i in world.company.items.values() if i.get("Active")]


def submit(engine: Engine, *, quickbooks: int, xero: int, start: int = 1, lines: int = 5) -> int:
    """Submit QuickBooks bills ``QB start..`` and Xero bills ``XE start..``; how many."""
    pairs = [
        *bill_pairs("QB", quickbooks, start=start, lines=lines, currency="USD"),
        *bill_pairs("XE", xero, start=start, lines=lines, currency="GBP", country="GB"),
    ]
    return sum(c.runs for c in engine.submit_bills(pairs))


def run_statuses(engine: Engine) -> dict[str, int]:
    """How many runs are in each status."""
    with db_session(engine) as session:
        rows = session.execute(select(RunRow.status, func.count()).group_by(RunRow.status))
        return {str(status): int(count) for status, count in rows}


def assert_each_bill_once(world: Emulators, *, quickbooks: int, xero: int) -> None:
    """Every bill has exactly one document at its destination, and nothing else is there."""
    qbo = world.quickbooks_documents()
    expected = {bill_id("QB", n) for n in range(1, quickbooks + 1)}
    assert set(qbo) == expected, f"QuickBooks documents for unknown bills: {set(qbo) - expected}"
    assert [b for b, c in qbo.items() if c != 1] == [], "a QuickBooks bill was sent twice"
    xero_docs = world.xero_documents()
    numbers = {f"XE-{n:06d}" for n in range(1, xero + 1)}
    assert set(xero_docs) == numbers, f"Xero documents not expected: {set(xero_docs) ^ numbers}"
    assert [n for n, c in xero_docs.items() if c != 1] == [], "a Xero bill was sent twice"


WORKER_ENV = "BILLBRIDGE_RELIABILITY_WORKER"


def worker_env(params: Mapping[str, Any]) -> dict[str, str]:
    """The environment for a worker process: the project and the tests importable (the worker
    modules live in tests/integration/, support and fakebooks_plugin in tests/), and the
    worker's parameters (:func:`worker_params`) as JSON."""
    path = os.pathsep.join(
        [str(ROOT), str(TESTS), str(INTEGRATION), os.environ.get("PYTHONPATH", "")]
    )
    return {
        **os.environ,
        "PYTHONPATH": path,
        "PYTHONHASHSEED": "0",
        WORKER_ENV: json.dumps(dict(params)),
    }


def worker_params(
    world: Emulators, database_url: str, home: Path, key: str, **extra: Any
) -> dict[str, Any]:
    """What a worker process needs to build its engine (:func:`worker_engine`)."""
    return {
        "database_url": database_url,
        "home": str(home),
        "key": key,
        "destinations": {
            name: {
                field: (value.reveal() if isinstance(value, Secret) else value)
                for field, value in attrs.asdict(settings, recurse=False).items()
            }
            for name, settings in world.destination_settings().items()
        },
        **extra,
    }


def worker_engine(params: Mapping[str, Any], **settings: Any) -> Engine:
    """In a worker process: the engine :func:`worker_params` describes (real clock)."""
    destinations = {}
    for name, values in params["destinations"].items():
        fields: dict[str, Any] = dict(values)
        if fields.get("client_secret"):
            fields["client_secret"] = Secret(fields["client_secret"])
        destinations[name] = DestinationSettings(**fields)
    return Engine(
        params["database_url"],
        settings=Settings(home=Path(params["home"]), destinations=destinations, **settings),
        secret_box=SecretBox([params["key"]]),
    )


def read_worker_params() -> dict[str, Any]:
    """In a worker process: its parameters."""
    loaded: dict[str, Any] = json.loads(os.environ[WORKER_ENV])
    return loaded


PYTHON = sys.executable


class StartBarrier:
    """A barrier across processes: workers say they are ready, and all start at once.

    The test process listens on a loopback port; each worker connects, says ``ready`` and blocks
    reading; once every worker has said so, each is sent ``go`` in the same instant. No sleeps,
    so a loaded machine only makes the start later, never out of step.
    """

    def __init__(self, parties: int) -> None:
        self.parties = parties
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._server.getsockname()[1]

    def release_when_ready(
        self, processes: Sequence[subprocess.Popen[bytes]] = (), timeout: float = 120.0
    ) -> None:
        """Wait for every worker's ``ready``, then send them all ``go``.

        A worker that exits before it is ready fails the wait at once, with what it printed.
        """
        deadline = time.monotonic() + timeout
        self._server.settimeout(0.5)  # wake up to look at the workers, not to pace anything
        waiting: list[socket.socket] = []
        try:
            while len(waiting) < self.parties:
                try:
                    connection, _ = self._server.accept()
                except TimeoutError:
                    for process in processes:
                        if process.poll() is not None:
                            _, err = process.communicate()
                            raise AssertionError(
                                "a worker exited before the start: "
                                + err.decode(errors="replace")[-3000:]
                            ) from None
                    assert time.monotonic() < deadline, "the workers did not get ready in time"
                    continue
                connection.settimeout(timeout)
                assert connection.recv(5) == b"ready"
                waiting.append(connection)
            for connection in waiting:
                connection.sendall(b"go")
        finally:
            for connection in waiting:
                connection.close()
            self._server.close()


def wait_for_start(port: int) -> None:
    """In a worker process: tell the barrier it is ready, then block until every worker is."""
    with socket.create_connection(("127.0.0.1", port)) as connection:
        connection.sendall(b"ready")
        assert connection.recv(2) == b"go"


# --- the world works ------------------------------------------------------------------------------


def test_one_bill_each_way_is_delivered_once(
    emulators: Emulators, database_url: str, tmp_path: Path
) -> None:
    engine = make_engine(database_url, emulators, tmp_path, generate_key())
    try:
        prepare(engine, emulators, quickbooks=2, xero=2)
        assert submit(engine, quickbooks=2, xero=2) == 4
        report = engine.deliver_pending()
        assert report.completed == 4
        assert run_statuses(engine) == {RunStatus.COMPLETE.value: 4}
        assert_each_bill_once(emulators, quickbooks=2, xero=2)
    finally:
        engine.close()
