"""Starting the emulator from billbridge's command line (the ``billbridge.emulators`` entry
point): :func:`start_demo` for ``billbridge demo``, :func:`main` for ``billbridge emulator``."""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from decimal import Decimal

import uvicorn

from billbridge.testing.emulation.emulators import DemoDocument, ServedEmulator
from billbridge_quickbooks.emulator.app import QuickBooksEmulator

__all__ = ["DemoHandle", "main", "start_demo"]


class DemoHandle(ServedEmulator):
    """A running emulator for ``billbridge demo`` (see
    :mod:`billbridge.testing.emulation.emulators`)."""

    destination = "quickbooks"
    title = "QuickBooks Online"

    def __init__(self, tenants: Sequence[tuple[str, str]]) -> None:
        self.emulator = QuickBooksEmulator()
        for realm, name in tenants:
            self.emulator.add_company(realm, name)
        super().__init__(self.emulator.oauth, self.emulator.app)

    def endpoints(self) -> dict[str, str]:
        """Where the engine must send its requests."""
        return self.emulator.endpoints(self.url)

    def tenants(self) -> list[tuple[str, str]]:
        """The seeded companies as ``(realm id, name)``."""
        return [(realm, company.name) for realm, company in self.emulator.companies.items()]

    def grant(self, tenant_ids: Sequence[str]) -> None:
        """A QuickBooks consent connects one company: the first of ``tenant_ids``."""
        self.emulator.choose_company(tenant_ids[0])

    def documents(self, tenant_id: str) -> list[DemoDocument]:
        """Every invoice and credit memo of the company."""
        company = self.emulator.company(tenant_id)
        found = []
        for kind, table in (("Invoice", company.invoices), ("CreditMemo", company.credit_memos)):
            for doc in table.values():
                customer = company.customers.get(str(doc["CustomerRef"]["value"]), {})
                found.append(
                    DemoDocument(
                        id=str(doc["Id"]),
                        kind=kind,
                        number=doc.get("DocNumber"),
                        total=Decimal(str(doc.get("TotalAmt", 0))),
                        customer=str(customer.get("DisplayName", doc["CustomerRef"]["value"])),
                    )
                )
        return found


def start_demo(*, tenants: Sequence[tuple[str, str]]) -> DemoHandle:
    """Start the emulator on a free loopback port with one company per ``(realm id, name)``."""
    return DemoHandle(tenants)


def main(host: str = "127.0.0.1", port: int = 8081) -> None:
    """Serve the emulator in the foreground: one seeded company and one OAuth app.

    The app's id and secret come from ``BILLBRIDGE_EMULATOR_CLIENT_ID`` /
    ``BILLBRIDGE_EMULATOR_CLIENT_SECRET`` or are made up and printed (they are the emulator's
    own, not Intuit credentials). Any loopback redirect URI is accepted. Stop with Ctrl-C.
    """
    emulator = QuickBooksEmulator()
    company = emulator.add_company(name="billbridge demo company")
    client_id = os.environ.get("BILLBRIDGE_EMULATOR_CLIENT_ID") or "billbridge-demo"
    client_secret = os.environ.get("BILLBRIDGE_EMULATOR_CLIENT_SECRET") or secrets.token_urlsafe(18)
    emulator.oauth.add_client(client_id, client_secret)
    base = f"http://{host}:{port}"
    print(
        *[
            f"QuickBooks Online emulator on {base}",
            *(f"  {name}: {url}" for name, url in emulator.endpoints(base).items()),
            f"  company: {company.name} (realmId {company.realm_id})",
            f"  OAuth client id: {client_id}",
            f"  OAuth client secret: {client_secret}",
            "  customers: "
            + ", ".join(
                f"{c['DisplayName']}={c['Id']}" for c in company.customers.values() if c["Active"]
            ),
            "  items: "
            + ", ".join(f"{i['Name']}={i['Id']}" for i in company.items.values() if i["Active"]),
        ],
        sep="\n",
        flush=True,
    )
    uvicorn.run(emulator.app, host=host, port=port, log_level="info", lifespan="off")
