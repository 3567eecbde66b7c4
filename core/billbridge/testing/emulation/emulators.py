"""Running a destination's emulator from the core without importing its plugin.

Plugins that ship an emulator register its module in the entry point group
``billbridge.emulators``. The module offers two functions:

* ``main(host: str, port: int) -> None``: serve in the foreground (``billbridge emulator``);
* ``start_demo(*, tenants: Sequence[tuple[str, str]]) -> EmulatorHandle``: start on a free
  loopback port with the named tenants (``(id, name)``) seeded, for ``billbridge demo``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from decimal import Decimal
from importlib import metadata
from types import ModuleType
from typing import Any, Protocol

import attrs

from billbridge.testing.emulation.oauth import OAuthServer
from billbridge.testing.emulation.server import serve

__all__ = [
    "ENTRY_POINT_GROUP",
    "DemoDocument",
    "EmulatorHandle",
    "ServedEmulator",
    "emulator_module",
    "installed",
]

ENTRY_POINT_GROUP = "billbridge.emulators"


@attrs.frozen
class DemoDocument:
    """An invoice or credit note as an emulator holds it."""

    id: str
    kind: str
    number: str | None
    total: Decimal
    customer: str


class EmulatorHandle(Protocol):
    """A running emulator, as the demo uses it."""

    #: The destination key the emulator stands in for (``quickbooks``, ``xero``).
    destination: str
    title: str
    url: str
    client_id: str
    client_secret: str

    def endpoints(self) -> Mapping[str, str]:
        """``api_base_url``, ``authorize_url``, ``token_url``, ``revoke_url``."""
        ...

    def tenants(self) -> Sequence[tuple[str, str]]:
        """Every seeded tenant as ``(id, name)``."""
        ...

    def grant(self, tenant_ids: Sequence[str]) -> None:
        """Make the next consents connect these tenants."""
        ...

    def documents(self, tenant_id: str) -> Sequence[DemoDocument]:
        """Every invoice and credit note of one tenant."""
        ...

    def stop(self) -> None:
        """Stop serving."""
        ...


class ServedEmulator:
    """The parts of an :class:`EmulatorHandle` every emulator shares: an OAuth app of its own
    (made up, not a provider's) and a server on a free loopback port."""

    client_id = "billbridge-demo"

    def __init__(self, oauth: OAuthServer, app: Any) -> None:
        self.client_secret = secrets.token_urlsafe(18)
        oauth.add_client(self.client_id, self.client_secret)
        self._server = serve(app)
        self.url = self._server.url

    def stop(self) -> None:
        """Stop serving."""
        self._server.stop()


def installed() -> dict[str, metadata.EntryPoint]:
    """Emulator entry points by name."""
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def emulator_module(name: str) -> ModuleType:
    """The emulator module registered as ``name`` (``KeyError`` naming the installed ones)."""
    found = installed()
    if name not in found:
        raise KeyError(
            f"no emulator named {name!r}; installed: {', '.join(sorted(found)) or 'none'}"
        )
    module: ModuleType = found[name].load()
    return module
