"""External mappings: one per (entity, id, system, table), globally and per integration."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billbridge.domain.models import ExternalMapping
from billbridge.errors import Conflict, NotFound
from billbridge.store.common import count_of, page, require_row, rowcount
from billbridge.store.tables import GLOBAL_SCOPE, ExternalMappingRow, IntegrationRow

__all__ = ["MappingRepository"]


def _scope(integration_id: str | None) -> str:
    return GLOBAL_SCOPE if integration_id is None else integration_id


def _mapping_key(mapping: ExternalMapping) -> tuple[str, str, str, str, str]:
    return (
        mapping.m3ter_entity,
        mapping.m3ter_id,
        mapping.external_system,
        mapping.external_table,
        _scope(mapping.integration_id),
    )


def _describe_mapping(mapping: ExternalMapping) -> str:
    where = (
        f"linked to integration {mapping.integration_id}"
        if mapping.integration_id is not None
        else "global"
    )
    return (
        f"{mapping.m3ter_entity} {mapping.m3ter_id} → {mapping.external_system} "
        f"{mapping.external_table} ({where})"
    )


class MappingRepository:
    """External mappings: one per (entity, id, system, table), globally and per integration."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, mapping: ExternalMapping) -> ExternalMapping:
        """Save one mapping. A duplicate raises ``Conflict`` naming the mapping that exists."""
        return self.add_many([mapping])[0]

    def add_many(self, mappings: Iterable[ExternalMapping]) -> builtins.list[ExternalMapping]:
        """Save several mappings, all or nothing.

        A duplicate inside ``mappings`` or of a stored mapping raises ``Conflict`` and saves
        none of them; a linked mapping whose integration does not exist raises ``NotFound``.
        """
        batch = builtins.list(mappings)
        seen: dict[tuple[str, str, str, str, str], ExternalMapping] = {}
        for mapping in batch:
            key = _mapping_key(mapping)
            if key in seen:
                raise Conflict(
                    f"duplicate external mapping in the request: {_describe_mapping(mapping)}"
                )
            seen[key] = mapping
        for integration_id in {m.integration_id for m in batch if m.integration_id is not None}:
            require_row(self.session, IntegrationRow, integration_id, "integration")
        try:
            # One savepoint for the batch: on a conflict none of the rows stays.
            with self.session.begin_nested():
                self.session.add_all([self._to_row(m) for m in batch])
        except IntegrityError as exc:
            existing = self._first_existing(batch)
            if existing is None:
                # Another writer may have inserted and the constraint named nothing we can
                # find (or a mapping id was reused): still a conflict, with the database's word.
                raise Conflict(f"external mappings conflict with stored ones: {exc.orig}") from exc
            raise Conflict(
                f"external mapping already exists: {_describe_mapping(existing)} is mapped to "
                f"{existing.external_id} (mapping {existing.id})"
            ) from exc
        return [self.get(m.id) for m in batch]

    def get(self, mapping_id: str) -> ExternalMapping:
        """The mapping with this id, or ``NotFound``."""
        return self._to_domain(
            require_row(self.session, ExternalMappingRow, mapping_id, "external mapping")
        )

    def delete(self, mapping_id: str) -> None:
        """Delete one mapping, or raise ``NotFound``."""
        result = self.session.execute(
            delete(ExternalMappingRow).where(ExternalMappingRow.id == mapping_id),
            execution_options={"synchronize_session": False},
        )
        if rowcount(result) == 0:
            raise NotFound(f"external mapping {mapping_id} not found")

    def list(
        self,
        *,
        m3ter_entity: str | None = None,
        m3ter_id: str | None = None,
        external_system: str | None = None,
        external_table: str | None = None,
        integration_id: str | None = None,
        linked: bool | None = None,
        limit: int | None = None,
        offset: int = 0,
        external_id: str | None = None,
    ) -> builtins.list[ExternalMapping]:
        """Mappings matching every given filter, oldest first.

        ``linked=True`` keeps mappings that belong to an integration, ``False`` global ones.
        """
        conditions = self._conditions(
            m3ter_entity, m3ter_id, external_system, external_table, integration_id, linked,
            external_id,
        )  # fmt: skip
        return self._select(select(ExternalMappingRow).where(*conditions), limit, offset)

    def count(
        self,
        *,
        m3ter_entity: str | None = None,
        m3ter_id: str | None = None,
        external_system: str | None = None,
        external_table: str | None = None,
        integration_id: str | None = None,
        linked: bool | None = None,
        external_id: str | None = None,
    ) -> int:
        """How many mappings :meth:`list` would return without paging."""
        conditions = self._conditions(
            m3ter_entity, m3ter_id, external_system, external_table, integration_id, linked,
            external_id,
        )  # fmt: skip
        return count_of(self.session, select(ExternalMappingRow.id).where(*conditions))

    @staticmethod
    def _conditions(
        m3ter_entity: str | None,
        m3ter_id: str | None,
        external_system: str | None,
        external_table: str | None,
        integration_id: str | None,
        linked: bool | None,
        external_id: str | None,
    ) -> builtins.list[ColumnElement[bool]]:
        m = ExternalMappingRow
        conditions: builtins.list[ColumnElement[bool]] = []
        for column, value in (
            (m.m3ter_entity, m3ter_entity),
            (m.m3ter_id, m3ter_id),
            (m.external_system, external_system),
            (m.external_table, external_table),
            (m.integration_id, integration_id),
            (m.external_id, external_id),
        ):
            if value is not None:
                conditions.append(column == value)
        if linked is not None:
            conditions.append(m.scope != GLOBAL_SCOPE if linked else m.scope == GLOBAL_SCOPE)
        return conditions

    def find_by_entity(
        self, m3ter_entity: str, m3ter_id: str, external_system: str | None = None
    ) -> builtins.list[ExternalMapping]:
        """Every mapping (global and linked) of one m3ter entity, optionally for one system."""
        return self.list(
            m3ter_entity=m3ter_entity, m3ter_id=m3ter_id, external_system=external_system
        )

    def for_entities(
        self, external_system: str, entities: Sequence[tuple[str, str]]
    ) -> builtins.list[ExternalMapping]:
        """Every mapping (global and linked) of these ``(entity, id)`` pairs to one system.

        Oldest first, as every other listing.
        """
        m = ExternalMappingRow
        ids_by_entity: dict[str, builtins.list[str]] = {}
        for entity, entity_id in dict.fromkeys(entities):
            ids_by_entity.setdefault(entity, []).append(entity_id)
        found: builtins.list[ExternalMapping] = []
        # One query per entity type with ``m3ter_entity = ? AND m3ter_id IN (...)``: that shape
        # reaches the unique key's index on both databases. A row-value ``IN`` over the pairs
        # made SQLite read every mapping of the system instead (one per bill batch, so the cost
        # grew with the number of accounts mapped).
        for entity, ids in ids_by_entity.items():
            for start in range(0, len(ids), 500):
                found += self._select(
                    select(m).where(
                        m.m3ter_entity == entity,
                        m.m3ter_id.in_(ids[start : start + 500]),
                        m.external_system == external_system,
                    ),
                    None,
                    0,
                )
        if len(ids_by_entity) > 1:
            found.sort(key=lambda mapping: (mapping.created_at, mapping.id))
        return found

    def find_by_external(
        self, external_system: str, external_table: str, external_id: str
    ) -> builtins.list[ExternalMapping]:
        """Every mapping that points at one external record."""
        m = ExternalMappingRow
        return self._select(
            select(m).where(
                m.external_system == external_system,
                m.external_table == external_table,
                m.external_id == external_id,
            ),
            None,
            0,
        )

    def _select(
        self, statement: Select[Any], limit: int | None, offset: int
    ) -> builtins.list[ExternalMapping]:
        m = ExternalMappingRow
        # Plain columns, not ORM objects: a batch's delivery reads dozens of mappings, and
        # building (and tracking) an ORM instance per row cost more than the query.
        columns = statement.with_only_columns(
            m.id,
            m.m3ter_entity,
            m.m3ter_id,
            m.external_system,
            m.external_table,
            m.external_id,
            m.integration_id,
            m.created_at,
        ).order_by(m.created_at, m.id)
        return [self._to_domain(row) for row in self.session.execute(page(columns, limit, offset))]

    def _first_existing(self, batch: Sequence[ExternalMapping]) -> ExternalMapping | None:
        m = ExternalMappingRow
        for mapping in batch:
            row = self.session.scalar(
                select(m).where(
                    m.m3ter_entity == mapping.m3ter_entity,
                    m.m3ter_id == mapping.m3ter_id,
                    m.external_system == mapping.external_system,
                    m.external_table == mapping.external_table,
                    m.scope == _scope(mapping.integration_id),
                )
            )
            if row is not None:
                return self._to_domain(row)
        return None

    @staticmethod
    def _to_row(mapping: ExternalMapping) -> ExternalMappingRow:
        return ExternalMappingRow(
            id=mapping.id,
            m3ter_entity=mapping.m3ter_entity,
            m3ter_id=mapping.m3ter_id,
            external_system=mapping.external_system,
            external_table=mapping.external_table,
            external_id=mapping.external_id,
            integration_id=mapping.integration_id,
            scope=_scope(mapping.integration_id),
            created_at=mapping.created_at,
        )

    @staticmethod
    def _to_domain(row: ExternalMappingRow | Row[*tuple[Any, ...]]) -> ExternalMapping:
        return ExternalMapping(
            id=row.id,
            m3ter_entity=row.m3ter_entity,
            m3ter_id=row.m3ter_id,
            external_system=row.external_system,
            external_table=row.external_table,
            external_id=row.external_id,
            integration_id=row.integration_id,
            created_at=row.created_at,
        )
