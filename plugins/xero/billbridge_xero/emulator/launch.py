"""Starting the emulator from billbridge's command line (the ``billbridge.emulators`` entry
point): :func:`start_demo` for ``billbridge demo``, :func:`main` for ``billbridge emulator``."""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from decimal import Decimal

from billbridge.testing.emulation.emulators import DemoDocument, ServedEmulator
from billbridge_xero.emulator.app import XeroEmulator

__all__ = ["DemoHandle", "main", "start_demo"]


class DemoHandle(ServedEmulator):
    """A running emulator for ``billbridge demo`` (see
    :mod:`billbridge.testing.emulation.emulators`)."""

    destination = "xero"
    title = "Xero"

    def __init__(self, tenants: Sequence[tuple[str, str]]) -> None:
        self.emulator = XeroEmulator()
        for tenant_id, name in tenants:
            currency = "USD" if " US" in f" {name}" else "GBP"
            self.emulator.add_organisation(
                name, tenant_id, base_currency=currency, filler_contacts=20
            )
        super().__init__(self.emulator.oauth, self.emulator.app)

    def endpoints(self) -> dict[str, str]:
        """Where the engine must send its requests."""
        return self.emulator.endpoints(self.url)

    def tenants(self) -> list[tuple[str, str]]:
        """The seeded organisations as ``(tenant id, name)``."""
        return [(t, org.name) for t, org in self.emulator.organisations.items()]

    def grant(self, tenant_ids: Sequence[str]) -> None:
        """The next consents connect these organisations (the user's choice on Xero's page)."""
        self.emulator.consent_organisations = list(tenant_ids)

    def documents(self, tenant_id: str) -> list[DemoDocument]:
        """Every invoice and credit note of the organisation."""
        found = []
        for kind in ("Invoice", "CreditNote"):
            for doc in self.emulator.documents(tenant_id, kind):
                number = doc.get("InvoiceNumber") or doc.get("CreditNoteNumber")
                found.append(
                    DemoDocument(
                        id=str(doc.get("InvoiceID") or doc.get("CreditNoteID")),
                        kind=kind,
                        number=number,
                        total=Decimal(str(doc.get("Total", 0))),
                        customer=str((doc.get("Contact") or {}).get("Name", "")),
                    )
                )
        return found


def start_demo(*, tenants: Sequence[tuple[str, str]]) -> DemoHandle:
    """Start the emulator on a free loopback port with one organisation per ``(id, name)``."""
    return DemoHandle(tenants)


def main(host: str = "127.0.0.1", port: int = 8082) -> None:
    """Serve the emulator in the foreground with one organisation and one OAuth app.

    The app's client id and secret come from ``BILLBRIDGE_EMULATOR_CLIENT_ID`` /
    ``BILLBRIDGE_EMULATOR_CLIENT_SECRET``, or are made up and printed (they only open this
    emulator). ``billbridge emulator xero --port N`` calls this.
    """
    import uvicorn

    emulator = XeroEmulator()
    org = emulator.add_organisation("Demo Company (UK)", base_currency="GBP")
    client_id = os.environ.get("BILLBRIDGE_EMULATOR_CLIENT_ID") or "xero-emulator"
    secret_from_env = os.environ.get("BILLBRIDGE_EMULATOR_CLIENT_SECRET")
    client_secret = secret_from_env or secrets.token_urlsafe(24)
    emulator.oauth.add_client(client_id, client_secret)
    base = f"http://{host}:{port}"
    print(f"Xero emulator on {base}")
    for name, url in emulator.endpoints(base).items():
        print(f"  {name}: {url}")
    print(f"  organisation: {org.name} (tenant {org.tenant_id})")
    print(f"  client id: {client_id}")
    shown = "(from BILLBRIDGE_EMULATOR_CLIENT_SECRET)" if secret_from_env else client_secret
    print(f"  client secret: {shown}", flush=True)
    uvicorn.run(emulator.app, host=host, port=port, log_level="info", lifespan="off")
