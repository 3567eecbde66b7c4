"""An in-memory unit of work for service tests that need storage but not a database.

Only what the services under test use is here; each fake keeps the store's documented rules
(``NotFound``, optimistic versions, conflicts) so a service behaves as it would on a database.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

import attrs

from billbridge.domain.models import Event, EventType, ExternalMapping, Integration, RunStatus
from billbridge.errors import Conflict, NotFound, StaleVersion


class FakeIntegrations:
    def __init__(self) -> None:
        self.rows: dict[str, Integration] = {}

    def add(self, integration: Integration) -> Integration:
        if integration.id in self.rows:
            raise Conflict(f"integration {integration.id} already exists")
        self.rows[integration.id] = integration
        return integration

    def get(self, integration_id: str) -> Integration:
        try:
            return self.rows[integration_id]
        except KeyError:
            raise NotFound(f"integration {integration_id} not found") from None

    def list(self, **filters: Any) -> builtins.list[Integration]:
        found = sorted(self.rows.values(), key=lambda i: (i.created_at, i.id))
        for name, value in filters.items():
            if value is not None:
                found = [i for i in found if getattr(i, name) == value]
        return found

    def update(self, integration: Integration, expected_version: int | None = None) -> Integration:
        current = self.get(integration.id)
        expected = integration.version if expected_version is None else expected_version
        if current.version != expected:
            raise StaleVersion(f"integration {integration.id} was changed by someone else")
        saved = attrs.evolve(integration, version=expected + 1)
        self.rows[integration.id] = saved
        return saved

    def sealed_sample(self) -> str | None:  # what secret_sample finds in configurations
        for integration in self.rows.values():
            for value in integration.destination_config.values():
                if isinstance(value, dict) and "$sealed" in value:
                    return str(value["$sealed"])
        return None

    def set_consecutive_errors(self, integration_id: str, count: int) -> None:
        self.rows[integration_id] = attrs.evolve(self.get(integration_id), consecutive_errors=count)


class FakeMappings:
    def __init__(self) -> None:
        self.rows: list[ExternalMapping] = []

    def add_many(self, mappings: Iterable[ExternalMapping]) -> builtins.list[ExternalMapping]:
        batch = builtins.list(mappings)
        keys = {self._key(m) for m in self.rows}
        for mapping in batch:
            if self._key(mapping) in keys:
                raise Conflict("external mapping already exists")
            keys.add(self._key(mapping))
        self.rows += batch
        return batch

    @staticmethod
    def _key(m: ExternalMapping) -> tuple[str, ...]:
        return (m.m3ter_entity, m.m3ter_id, m.external_system, m.external_table,
                m.integration_id or "")  # fmt: skip


class FakeEvents:
    def __init__(self) -> None:
        self.rows: list[Event] = []

    def add(self, event: Event) -> Event:
        self.rows.append(event)
        return event

    def list(self, *, type: EventType | None = None, **_: Any) -> builtins.list[Event]:
        return [e for e in self.rows if type is None or e.type is type]


class FakeRuns:
    def __init__(self) -> None:
        self.moved: list[tuple[str, RunStatus]] = []

    def set_status(self, *, integration_id: str, status: RunStatus, **_: Any) -> int:
        self.moved.append((integration_id, status))
        return 1


@attrs.define
class FakeUnitOfWork:
    """Shared in-memory repositories; ``commits`` counts committed units of work."""

    integrations: FakeIntegrations = attrs.Factory(FakeIntegrations)
    mappings: FakeMappings = attrs.Factory(FakeMappings)
    events: FakeEvents = attrs.Factory(FakeEvents)
    runs: FakeRuns = attrs.Factory(FakeRuns)
    commits: int = 0

    def __call__(self) -> FakeUnitOfWork:
        return self  # the factory: every unit of work sees the same memory

    def __enter__(self) -> FakeUnitOfWork:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None

    def commit(self) -> None:
        self.commits += 1

    def secret_sample(self) -> str | None:
        return self.integrations.sealed_sample()


class FixedClock:
    """A clock that stays where it is put."""

    def __init__(self, now: datetime) -> None:
        self._now = now

    def time(self) -> float:
        return self._now.timestamp()

    def now(self) -> datetime:
        return self._now

    def sleep(self, seconds: float) -> None:
        raise AssertionError(f"a unit test slept {seconds} s")


def registry_with(*destinations: Any) -> Any:
    """A plugin registry serving ``destinations`` through one in-process plugin."""
    from billbridge import hookimpl
    from billbridge.plugin.manager import load_plugins

    class Plugin:
        @hookimpl
        def register_destinations(self) -> Sequence[Any]:
            return destinations

    return load_plugins(entry_points=False, extra=[("fake", Plugin())], blocked=())
