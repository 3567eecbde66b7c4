"""Small helpers shared by test modules."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import attrs
from sqlalchemy.orm import Session

import fakebooks_plugin as fake
from billbridge import Engine
from billbridge.domain.models import CredentialTokens, loads
from billbridge.store import atomically
from billbridge.testing.emulation.clock import ManualClock
from billbridge.testing.emulation.server import RunningServer

#: The repository's root directory.
ROOT = Path(__file__).resolve().parents[1]
#: The sample m3ter documents, shipped inside the package (``billbridge/demo_samples``): the
#: tests need nothing outside the repository.
SAMPLES = Path(str(resources.files("billbridge").joinpath("demo_samples")))


def sample(name: str) -> Any:
    """A sample m3ter document (parsed JSON, exact decimals)."""
    return loads((SAMPLES / name).read_text(encoding="utf-8"))


ACME_BILL = sample("bill-acme-uk-2025-09.json")
ACME = sample("account-acme-uk.json")
GLOBEX_BILL = sample("bill-globex-us-2026-09.json")
GLOBEX = sample("account-globex-us.json")


@contextmanager
def db_session(engine: Engine) -> Iterator[Session]:
    """The session of a committed unit of work, for tests that look at rows directly."""
    with engine.uow() as uow:
        yield uow.session
        uow.commit()


@attrs.define
class World:
    engine: Engine
    provider: fake.Provider
    server: RunningServer
    clock: ManualClock
    key: str
    database_url: str
    home: Path

    def integration(self, name: str = "Fake", **config: Any) -> Any:
        integration = self.engine.integrations.create(name=name, destination="fakebooks", **config)
        credential = fake.connect(self.engine, f"{name} credential")
        return self.engine.integrations.connect(integration.id, credential.id)

    def map_account(self, account: dict[str, Any], customer: str, **extra: Any) -> None:
        self.engine.mappings.create(
            entity="Account",
            entity_id=account["id"],
            external_table="Customer",
            external_id=customer,
            external_system="fakebooks",
            **extra,
        )

    def submit_numbered(self, numbers: range) -> None:
        """Submit ``bill-N`` for account ``acct-N`` (mapped to ``cust-N``) for each N."""
        for n in numbers:
            account = {**ACME, "id": f"acct-{n}"}
            self.map_account(account, f"cust-{n}")
            self.engine.submit_bill(
                {**ACME_BILL, "id": f"bill-{n}", "accountId": account["id"]}, account
            )

    def other_engine(self, **kwargs: Any) -> Engine:
        return fake.make_engine(
            self.database_url, self.server.url, self.clock, self.home, self.key, **kwargs
        )


def bill_version(document: dict[str, Any], version: int, **changes: Any) -> dict[str, Any]:
    return {**document, "version": version, **changes}


def statuses(world: World, **filters: Any) -> list[str]:
    return sorted(r.status.value for r in world.engine.runs.list(limit=None, **filters))


def stored_tokens(engine: Engine, credential_id: str) -> CredentialTokens:
    """A credential's tokens as stored (decrypted): what the public API never hands out."""
    return atomically(engine.uow, lambda uow: uow.credentials.tokens(credential_id))
