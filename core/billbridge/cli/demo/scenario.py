"""The demo's scenario: the whole main job, end to end, on the embedded default.

It starts the QuickBooks and Xero emulators on loopback, connects credentials through the full
OAuth flow (consent page, loopback redirect, code exchange, tenant choice), creates three
integrations (QuickBooks for every account; Xero UK and Xero US routed by an account filter),
maps accounts and products from what the destinations list, submits the sample bills, delivers
them, then submits a regenerated version of one bill to show that its invoices are updated, not
duplicated, and that an unmapped account produced an event a person can act on.

Everything goes through the public API; the emulators are found through the
``billbridge.emulators`` entry points, so the core imports no plugin, and they are imported only
when the demo starts them (:func:`billbridge.cli.emulator.load_emulator`), so the runtime never
imports the testing kit.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import httpx
from rich.console import Console

from billbridge.cli.consent import connect_interactively
from billbridge.cli.demo.story import Story, report
from billbridge.cli.emulator import load_emulator
from billbridge.domain.models import Integration, Secret, loads
from billbridge.engine import Engine
from billbridge.plugin.contract import ExternalEntityPage
from billbridge.secrets import SecretBox, generate_key
from billbridge.settings import DestinationSettings, Settings

if TYPE_CHECKING:
    from billbridge.testing.emulation.emulators import EmulatorHandle

__all__ = ["SAMPLE_ACCOUNTS", "SAMPLE_BILLS", "Serving", "run_demo"]

QUICKBOOKS_COMPANY = ("9341454000000001", "Demo Company (US)")
XERO_UK = ("b1b2c3d4-0000-4000-8000-0000000000a1", "Demo UK Ltd")
XERO_US = ("b1b2c3d4-0000-4000-8000-0000000000b2", "Demo US Inc")
#: The credentials the demo connects: destination, credential name, tenant (id, name).
CONNECTIONS = (
    ("quickbooks", "QuickBooks US", QUICKBOOKS_COMPANY),
    ("xero", "Xero UK", XERO_UK),
    ("xero", "Xero US", XERO_US),
)

#: m3ter products in the sample bills and the QuickBooks item each one is sold as.
PRODUCT_ITEMS = {
    "p-platform": "Platform",
    "p-api": "API Calls",
    "p-storage": "Storage",
    "p-events": "Events",
    "p-seats": "Seats",
}

SAMPLE_BILLS = ("bill-acme-uk-2025-09.json", "bill-globex-us-2026-09.json")
SAMPLE_ACCOUNTS = ("account-acme-uk.json", "account-globex-us.json", "account-initech.json")


def _samples() -> dict[str, Any]:
    """The sample bills and accounts shipped in ``billbridge/demo_samples``."""
    base = resources.files("billbridge").joinpath("demo_samples")
    return {
        name: loads(base.joinpath(name).read_text(encoding="utf-8"))
        for name in (*SAMPLE_BILLS, *SAMPLE_ACCOUNTS)
    }


def _browser(url: str) -> None:
    # Stands in for the person at the consent page: the emulator approves at once and redirects
    # to billbridge's loopback listener, which completes the credential.
    threading.Thread(
        target=lambda: httpx.get(url, follow_redirects=True, timeout=30), daemon=True
    ).start()


@contextmanager
def _emulators() -> Iterator[dict[str, EmulatorHandle]]:
    with ExitStack() as stack:
        quickbooks = load_emulator("quickbooks").start_demo(tenants=[QUICKBOOKS_COMPANY])
        stack.callback(quickbooks.stop)
        xero = load_emulator("xero").start_demo(tenants=[XERO_UK, XERO_US])
        stack.callback(xero.stop)
        yield {"quickbooks": quickbooks, "xero": xero}


def _settings(home: Path, emulators: Mapping[str, EmulatorHandle]) -> Settings:
    destinations = {}
    for key, handle in emulators.items():
        endpoints = handle.endpoints()
        destinations[key] = DestinationSettings(
            client_id=handle.client_id,
            client_secret=Secret(handle.client_secret),
            api_base_url=endpoints["api_base_url"],
            authorize_url=endpoints["authorize_url"],
            token_url=endpoints["token_url"],
            revoke_url=endpoints["revoke_url"],
        )
    return Settings(home=home, destinations=destinations)


@attrs.frozen
class Serving:
    """Where ``billbridge demo --serve`` serves the API and the console after the scenario."""

    host: str = "127.0.0.1"
    port: int = 8000


def run_demo(
    home: Path | None = None,
    *,
    console: Console | None = None,
    serve: Serving | None = None,
    scenario: bool = True,
) -> dict[str, Any]:
    """Run the demo; returns a summary (counts) that tests check.

    :param home: where the SQLite database lives (a temporary directory when ``None``).
    :param serve: then serve the API and the console on the demo's data, with the emulators
        still running, until SIGINT/SIGTERM.
    :param scenario: ``False`` (with ``serve``): an empty database, the emulators only.
    """
    out = console or Console()
    story = Story(out)
    with ExitStack() as stack:
        if home is None:
            home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="billbridge-demo-")))
        emulators = stack.enter_context(_emulators())
        story.step(
            f"QuickBooks emulator on {emulators['quickbooks'].url}, "
            f"Xero emulator on {emulators['xero'].url}"
        )
        engine = Engine(
            f"sqlite:///{home / 'billbridge.db'}",
            settings=_settings(home, emulators),
            secret_box=SecretBox([generate_key()]),
        )
        stack.callback(engine.close)
        story.step(f"database {engine.db.display_url} (SQLite, migrated on first use)")
        summary = _play(engine, emulators, story) if scenario else {}
        if serve is not None:
            _serve(engine, serve, story)
        return summary
    raise AssertionError("unreachable")  # pragma: no cover


def _serve(engine: Engine, serving: Serving, story: Story) -> None:
    """The API and the console on the demo's data; consents go to the emulators' pages."""
    from billbridge.api.settings import ApiSettings
    from billbridge.cli.serve import run_server

    story.step(
        "serving the console: open the URL below (consent pages are the emulators'; they "
        "approve at once and send you back)"
    )
    story.console.file.flush()
    run_server(
        engine,
        ApiSettings(),
        host=serving.host,
        port=serving.port,
        poll=1.0,
        log_level="warning",
        console_key=True,
    )


def _play(engine: Engine, emulators: Mapping[str, EmulatorHandle], story: Story) -> dict[str, Any]:
    samples = _samples()
    accounts = {samples[name]["id"]: samples[name] for name in SAMPLE_ACCOUNTS}
    credentials = _connect(engine, emulators, story)
    items = _items(engine, credentials["QuickBooks US"])
    integrations = _integrations(engine, credentials, items, story)
    _map(engine, integrations, accounts, items, story)
    _submit_samples(engine, samples, accounts, story)
    first = _deliver(engine, story)
    before = _invoices(emulators)

    # m3ter regenerates Acme's bill: version 4, more API usage. Same invoices, updated.
    acme = samples["bill-acme-uk-2025-09.json"]
    regenerated = _regenerate(acme)
    result = engine.submit_bill(regenerated, accounts[acme["accountId"]])
    story.step(
        f"Acme's bill regenerated (version {regenerated['version']}, total "
        f"{regenerated['billTotal']}): {len(result.runs)} update run(s) queued"
    )
    second = _deliver(engine, story)
    after = _invoices(emulators)

    report(engine, story, integrations, before, after, acme["id"])
    events = engine.events.list(limit=None)
    return {
        "credentials": len(credentials),
        "integrations": len(integrations),
        "runs_first": first,
        "runs_second": second,
        "invoices_before": sum(len(v) for v in before.values()),
        "invoices_after": sum(len(v) for v in after.values()),
        "events": [e.type.value for e in events],
        "seconds": time.monotonic() - story.started,
    }


def _connect(
    engine: Engine, emulators: Mapping[str, EmulatorHandle], story: Story
) -> dict[str, str]:
    """Credential ids by name, connected through the providers' consent pages and a loopback
    redirect."""
    connected = {}
    for destination, name, (tenant_id, _tenant_name) in CONNECTIONS:
        emulators[destination].grant([tenant_id])
        credential = engine.credentials.create(name, destination)
        done = connect_interactively(engine, credential, open_url=_browser)
        story.step(f"connected [bold]{done.name}[/] → {done.tenant_name} ({done.tenant_id})")
        connected[name] = done.id
    return connected


def _integrations(
    engine: Engine, credentials: Mapping[str, str], items: Mapping[str, str], story: Story
) -> list[Integration]:
    """One QuickBooks integration for everyone, two Xero ones split by the account filter."""

    def integration(name: str, destination: str, credential: str, **config: Any) -> Integration:
        created = engine.integrations.create(name=name, destination=destination, **config)
        return engine.integrations.connect(created.id, credentials[credential])

    quickbooks = integration(
        "QuickBooks (all accounts)",
        "quickbooks",
        "QuickBooks US",
        # The account-wide commitment line has no product to sell it as in QuickBooks.
        entity_config={"excludedLineItemTypes": ["COMMITMENT_CONSUMED"]},
        destination_config={
            "creditMemoItem": items["Credits and Adjustments"],
            "debitMemoItem": items["Fees"],
            "accountManagerEmailCustomField": "accountManagerEmail",
        },
    )
    xero_config = {
        "invoiceStatus": "AUTHORISED",
        "defaultAccountCode": "200",
        "lineAmountTypes": "NoTax",
    }
    xero_uk = integration(
        "Xero UK",
        "xero",
        "Xero UK",
        config={"accountFilter": 'customFields.country == "UK"'},
        destination_config=xero_config,
    )
    xero_us = integration(
        "Xero US",
        "xero",
        "Xero US",
        config={"accountFilter": "address.country == US"},
        destination_config=xero_config,
    )
    integrations = [quickbooks, xero_uk, xero_us]
    story.step(
        "integrations: "
        + ", ".join(
            f"[bold]{i.name}[/] ({i.config.account_filter or 'every account'})"
            for i in integrations
        )
    )
    return integrations


def _map(
    engine: Engine,
    integrations: Sequence[Integration],
    accounts: Mapping[str, Any],
    items: Mapping[str, str],
    story: Story,
) -> None:
    """Mappings picked from what each destination lists. Initech stays unmapped on purpose."""
    quickbooks, xero_uk, xero_us = integrations
    mapped = 0
    for integ, table in ((quickbooks, "Customer"), (xero_uk, "Contact"), (xero_us, "Contact")):
        credential = integ.credential_id or ""
        for account in accounts.values():
            if account["name"] == "Initech":
                continue
            found = _find(engine, credential, integ.destination, table, account["name"])
            if found is not None:
                engine.mappings.create(
                    entity="Account",
                    entity_id=account["id"],
                    external_table=table,
                    external_id=found,
                    integration_id=integ.id,
                )
                mapped += 1
    engine.mappings.create_many(
        [
            {
                "entity": "Product",
                "entity_id": product,
                "external_table": "Item",
                "external_id": items[item],
                "integration_id": quickbooks.id,
            }
            for product, item in PRODUCT_ITEMS.items()
        ]
    )
    story.step(
        f"mapped {mapped} accounts and {len(PRODUCT_ITEMS)} products from the destinations' lists"
    )


def _submit_samples(
    engine: Engine, samples: Mapping[str, Any], accounts: Mapping[str, Any], story: Story
) -> None:
    """The sample bills, plus one for Initech (no mapping anywhere)."""
    bills = [samples[name] for name in SAMPLE_BILLS]
    initech = accounts["2cd21f54-7d7f-54b2-ace7-a7bb359fe3fa"]
    bills.append(
        {
            **samples["bill-globex-us-2026-09.json"],
            "id": "0c3f2a8e-5d1b-4f6e-9a7c-1b2d3e4f5a6b",
            "accountId": initech["id"],
            "accountCode": initech["code"],
            "sequentialInvoiceNumber": "INV-001043",
        }
    )
    queued = skipped = 0
    for bill in bills:
        result = engine.submit_bill(bill, accounts[bill["accountId"]])
        queued += len(result.runs)
        skipped += len(result.skips)
    story.step(f"submitted {len(bills)} bills: {queued} runs queued, {skipped} skipped by routing")


def _items(engine: Engine, credential_id: str) -> dict[str, str]:
    """QuickBooks items by name, read through list_external_entities (every page)."""
    found: dict[str, str] = {}
    cursor: str | None = None
    while True:
        page = _page(engine, credential_id, "quickbooks", "Item", None, cursor)
        found.update({item.name: item.id for item in page.items})
        cursor = page.next_cursor
        if cursor is None:
            return found


def _page(
    engine: Engine,
    credential_id: str,
    destination: str,
    table: str,
    search: str | None,
    cursor: str | None,
) -> ExternalEntityPage:
    page: ExternalEntityPage = engine.credentials.call(
        credential_id,
        lambda connection: engine.plugins.call(
            "list_external_entities",
            destination,
            connection=connection,
            table=table,
            search=search,
            cursor=cursor,
        ),
    )
    return page


def _find(
    engine: Engine, credential_id: str, destination: str, table: str, name: str
) -> str | None:
    page = _page(engine, credential_id, destination, table, name, None)
    return next((item.id for item in page.items if item.name == name), None)


def _regenerate(bill: Mapping[str, Any]) -> dict[str, Any]:
    lines = [dict(line) for line in bill["lineItems"]]
    for line in lines:
        if line["id"] == "li-002":  # 25,000 more API calls at the second band's price
            line["quantity"] = line["units"] = 175000
            line["subtotal"] = Decimal("650.0")
            bands = [dict(b) for b in line["usagePerPricingBand"]]
            bands[1]["bandQuantity"] = bands[1]["bandUnits"] = 75000
            bands[1]["unitSubtotal"] = bands[1]["bandSubtotal"] = Decimal("150.0")
            line["usagePerPricingBand"] = bands
    return {
        **bill,
        "version": bill["version"] + 1,
        "billTotal": Decimal("1320.0"),
        "lineItems": lines,
    }


def _deliver(engine: Engine, story: Story) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        console=story.console,
        transient=True,
    ) as bar:
        task = bar.add_task("delivering", total=None)
        report = engine.deliver_pending(
            progress=lambda done, total: bar.update(task, completed=done, total=max(total, done))
        )
    parts = ", ".join(f"{n} {status}" for status, n in sorted(report.statuses.items()))
    story.step(f"delivered {report.attempted} run(s) in {report.requests} request(s): {parts}")
    return report.attempted


def _invoices(emulators: Mapping[str, EmulatorHandle]) -> dict[str, list[Any]]:
    return {
        f"{handle.title} / {name}": list(handle.documents(tenant))
        for handle in emulators.values()
        for tenant, name in handle.tenants()
    }
