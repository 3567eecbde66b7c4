"""External mappings (``engine.mappings``): m3ter entity → record in a destination."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import attrs

from billbridge.domain.clock import Clock
from billbridge.domain.models import ExternalMapping, Integration
from billbridge.domain.schemas import core_schema, validate
from billbridge.errors import FieldError, UnknownDestination, ValidationFailed
from billbridge.plugin.manager import PluginRegistry
from billbridge.store import UnitOfWork, UnitOfWorkFactory, atomically, new_id

__all__ = ["Mappings"]


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

    def __init__(self, *, uow: UnitOfWorkFactory, plugins: PluginRegistry, clock: Clock) -> None:
        self._uow = uow
        self._plugins = plugins
        self._clock = clock

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
            for i in atomically(self._uow, lambda uow: uow.integrations.list())
            if i.id in {m.integration_id for m in items if m.integration_id}
        }
        errors: list[FieldError] = []
        prepared: list[ExternalMapping] = []
        now = self._clock.now()
        for index, item in enumerate(items):
            base = "" if _single else f"/{index}"
            mapping, problems = self._prepare(item, integrations, now, base)
            errors += problems
            if mapping is not None:
                prepared.append(mapping)
        if errors:
            raise ValidationFailed(errors, summary="external mapping refused")
        return atomically(self._uow, lambda uow: uow.mappings.add_many(prepared))

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
        """The mapping to store for ``item``, or the problems with it (paths under ``base``)."""
        system, errors = self._system(item, integrations, base)
        document: dict[str, Any] = {
            "m3terEntity": item.entity,
            "m3terId": item.entity_id,
            "externalSystem": system or "",
            "externalTable": item.external_table,
            "externalId": str(item.external_id),
        }
        reported = {e.path for e in errors}
        errors += [
            e
            for e in validate(document, core_schema("external-mapping"), base_path=base)
            if e.path not in reported
        ]
        if system:
            errors += self._table_errors(system, item.external_table, base)
        if errors or system is None:
            return None, errors
        return (
            ExternalMapping(
                id=new_id(),
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

    def _system(
        self, item: _MappingInput, integrations: Mapping[str, Integration], base: str
    ) -> tuple[str | None, list[FieldError]]:
        """The destination the mapping points into: given, its integration's, or the only
        installed destination with the table."""
        system = item.external_system
        if item.integration_id is not None:
            integration = integrations.get(item.integration_id)
            if integration is None:
                message = f"integration {item.integration_id} not found"
                return system, [FieldError(f"{base}/integrationConfigId", message)]
            if system is None:
                return integration.destination, []
            if system != integration.destination:
                message = (
                    f"integration {integration.id} delivers to {integration.destination}, "
                    f"not {system}"
                )
                return system, [FieldError(f"{base}/externalSystem", message)]
        if system is not None or not item.external_table:
            return system, []
        owners = [
            d.key
            for d in self._plugins.destinations.values()
            if item.external_table in d.external_tables
        ]
        if len(owners) == 1:
            return owners[0], []
        hint = (
            f"{item.external_table} exists in " + ", ".join(owners)
            if owners
            else f"no installed destination has a {item.external_table} table"
        )
        return None, [FieldError(f"{base}/externalSystem", f"is required ({hint})")]

    def _table_errors(self, system: str, table: str, base: str) -> list[FieldError]:
        try:
            destination = self._plugins.destination(system)
        except UnknownDestination as exc:
            return [FieldError(f"{base}/externalSystem", str(exc))]
        if table and table not in destination.external_tables:
            return [
                FieldError(
                    f"{base}/externalTable",
                    f"{system} has no table {table!r}; it has "
                    + ", ".join(destination.external_tables),
                )
            ]
        return []

    def get(self, mapping_id: str) -> ExternalMapping:
        """One mapping; raises :class:`~billbridge.errors.NotFound`."""
        return atomically(self._uow, lambda uow: uow.mappings.get(mapping_id))

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
        external_id: str | None = None,
    ) -> builtins.list[ExternalMapping]:
        """Mappings matching every given filter, oldest first."""
        return atomically(
            self._uow,
            lambda uow: uow.mappings.list(
                m3ter_entity=entity,
                m3ter_id=entity_id,
                external_system=external_system,
                external_table=external_table,
                integration_id=integration_id,
                linked=linked,
                limit=limit,
                offset=offset,
                external_id=external_id,
            ),
        )

    def count(
        self,
        *,
        entity: str | None = None,
        entity_id: str | None = None,
        external_system: str | None = None,
        external_table: str | None = None,
        integration_id: str | None = None,
        linked: bool | None = None,
        external_id: str | None = None,
    ) -> int:
        """How many mappings :meth:`list` would return without paging."""
        return atomically(
            self._uow,
            lambda uow: uow.mappings.count(
                m3ter_entity=entity,
                m3ter_id=entity_id,
                external_system=external_system,
                external_table=external_table,
                integration_id=integration_id,
                linked=linked,
                external_id=external_id,
            ),
        )

    def find(
        self, entity: str, entity_id: str, *, external_system: str | None = None
    ) -> builtins.list[ExternalMapping]:
        """Every mapping (global and linked) of one m3ter entity."""
        return atomically(
            self._uow, lambda uow: uow.mappings.find_by_entity(entity, entity_id, external_system)
        )

    def find_external(
        self, external_system: str, external_table: str, external_id: str
    ) -> builtins.list[ExternalMapping]:
        """Every mapping that points at one external record."""
        return atomically(
            self._uow,
            lambda uow: uow.mappings.find_by_external(external_system, external_table, external_id),
        )

    def update(
        self,
        mapping_id: str,
        *,
        external_id: str | None = None,
        external_table: str | None = None,
        external_system: str | None = None,
    ) -> ExternalMapping:
        """Point a mapping at another external record (the m3ter side and link stay).

        Validated as :meth:`create` validates; replaced in one transaction, so a conflict with
        another mapping leaves this one as it was.
        :raises NotFound: no such mapping; :class:`ValidationFailed`; ``Conflict``.
        """
        current = self.get(mapping_id)
        item = _MappingInput(
            entity=current.m3ter_entity,
            entity_id=current.m3ter_id,
            external_table=external_table or current.external_table,
            external_id=external_id or current.external_id,
            external_system=external_system or current.external_system,
            integration_id=current.integration_id,
        )
        integrations = {
            i.id: i
            for i in atomically(self._uow, lambda uow: uow.integrations.list())
            if i.id == current.integration_id
        }
        prepared, errors = self._prepare(item, integrations, current.created_at, "")
        if errors or prepared is None:
            raise ValidationFailed(errors, summary="external mapping refused")
        replacement = attrs.evolve(prepared, id=current.id)

        def replace(uow: UnitOfWork) -> ExternalMapping:
            uow.mappings.delete(current.id)
            return uow.mappings.add(replacement)

        return atomically(self._uow, replace)

    def delete(self, mapping_id: str) -> None:
        """Delete one mapping; raises :class:`~billbridge.errors.NotFound`."""
        atomically(self._uow, lambda uow: uow.mappings.delete(mapping_id))
