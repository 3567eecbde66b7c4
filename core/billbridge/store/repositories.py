"""Repositories: the only code that turns rows into domain objects and back.

A repository is made for one unit of work and wraps its session::

    with database.session() as session:
        integrations = IntegrationRepository(session)
        integration = integrations.get(integration_id)
        integrations.update(attrs.evolve(integration, enabled=False))

Everything a repository returns is an attrs object from :mod:`billbridge.domain.models`; rows never
leave this module, so plugins and services cannot depend on the schema.

Conventions shared by every repository:

* Writes are flushed at once, so constraint violations surface from the call that caused them,
  as :class:`~billbridge.errors.Conflict` or :class:`~billbridge.errors.NotFound`. Inserts that
  may conflict run in a SAVEPOINT: after such an error the unit of work is still usable (on
  PostgreSQL a failed statement would otherwise abort the whole transaction).
* Reads always go to the database (``populate_existing``): deletes cascade inside the database,
  so the session's identity map cannot be trusted to know what still exists.
* Stored values are returned as read back (times in UTC, JSON numbers as ``Decimal``), not as
  passed in: what you get is what the next reader will get.
* The repository stores timestamps it is given; the caller's clock decides ``created_at`` and
  ``updated_at``. Only versions are managed here.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import ColumnElement, CursorResult, Row, Select, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import GenerativeSelect

from billbridge.domain.models import (
    Account,
    Bill,
    BillEntityConfig,
    Credential,
    CredentialStatus,
    Event,
    EventType,
    ExternalMapping,
    GlobalConfig,
    Integration,
    LedgerEntry,
    Run,
    RunStatus,
    Secret,
    converter,
    dumps,
    loads,
    parse_account,
    parse_bill,
    utcnow,
)
from billbridge.errors import Conflict, NotFound, StaleVersion
from billbridge.secrets import SecretBox
from billbridge.settings import DestinationSettings
from billbridge.store.tables import (
    GLOBAL_SCOPE,
    Base,
    BillRow,
    CredentialRow,
    EventRow,
    ExternalMappingRow,
    IntegrationRow,
    LedgerRow,
    OAuthAppRow,
    RunRow,
)

__all__ = [
    "BillRepository",
    "CredentialRepository",
    "EventRepository",
    "IntegrationRepository",
    "LedgerRepository",
    "MappingRepository",
    "RunRepository",
]

_R = TypeVar("_R", bound=Base)


# --- shared helpers -----------------------------------------------------------------------------


def _get_row(session: Session, row_class: type[_R], key: Any) -> _R | None:
    return session.get(row_class, key, populate_existing=True)


def _require(session: Session, row_class: type[_R], key: Any, what: str) -> _R:
    row = _get_row(session, row_class, key)
    if row is None:
        raise NotFound(f"{what} {key} not found")
    return row


def _rowcount(result: Any) -> int:
    # Session.execute is typed as returning Result; DML statements return a CursorResult.
    return cast(CursorResult[Any], result).rowcount


def _insert(session: Session, row: Base, conflict: str) -> None:
    """Insert ``row`` in a savepoint; an integrity error becomes ``Conflict(conflict)``."""
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError as exc:
        raise Conflict(conflict) from exc


_Paged = TypeVar("_Paged", bound=GenerativeSelect)


def _page(statement: _Paged, limit: int | None, offset: int) -> _Paged:
    if limit is not None:
        if limit < 0:
            raise ValueError(f"limit must not be negative, got {limit}")
        statement = statement.limit(limit)
    if offset:
        if offset < 0:
            raise ValueError(f"offset must not be negative, got {offset}")
        statement = statement.offset(offset)
    return statement


def _plain(value: Mapping[str, Any]) -> dict[str, Any]:
    # Domain objects hold read-only MappingProxyType; JSON columns want a dict.
    return dict(value)


# --- integrations -------------------------------------------------------------------------------


class IntegrationRepository:
    """Integrations, with optimistic locking on :attr:`Integration.version`."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, integration: Integration) -> Integration:
        """Save a new integration. Raises ``NotFound`` if its credential does not exist."""
        if integration.credential_id is not None:
            _require(self.session, CredentialRow, integration.credential_id, "credential")
        row = IntegrationRow(
            id=integration.id,
            version=integration.version,
            created_at=integration.created_at,
            **self._values(integration),
        )
        _insert(self.session, row, f"integration {integration.id} already exists")
        return self.get(integration.id)

    def get(self, integration_id: str) -> Integration:
        """The integration with this id, or ``NotFound``."""
        return self._to_domain(
            _require(self.session, IntegrationRow, integration_id, "integration")
        )

    def list(
        self,
        *,
        destination: str | None = None,
        enabled: bool | None = None,
        entity_type: str | None = None,
    ) -> builtins.list[Integration]:
        """Integrations matching every given filter, oldest first."""
        statement = select(IntegrationRow)
        if destination is not None:
            statement = statement.where(IntegrationRow.destination == destination)
        if enabled is not None:
            statement = statement.where(IntegrationRow.enabled == enabled)
        if entity_type is not None:
            statement = statement.where(IntegrationRow.entity_type == entity_type)
        statement = statement.order_by(IntegrationRow.created_at, IntegrationRow.id)
        rows = self.session.scalars(statement.execution_options(populate_existing=True))
        return [self._to_domain(row) for row in rows]

    def update(self, integration: Integration, expected_version: int | None = None) -> Integration:
        """Save changes; returns the integration with its new version (``expected + 1``).

        ``expected_version`` (default: ``integration.version``) is the version the caller read.
        If someone saved the integration since, nothing is written and ``StaleVersion`` is
        raised. The check and the write are one ``UPDATE ... WHERE version = :expected``, so
        two concurrent writers cannot both succeed.
        """
        expected = integration.version if expected_version is None else expected_version
        if integration.credential_id is not None:
            _require(self.session, CredentialRow, integration.credential_id, "credential")
        result = self.session.execute(
            update(IntegrationRow)
            .where(IntegrationRow.id == integration.id, IntegrationRow.version == expected)
            .values(version=expected + 1, **self._values(integration)),
            execution_options={"synchronize_session": False},
        )
        if _rowcount(result) != 1:
            current = self.session.scalar(
                select(IntegrationRow.version).where(IntegrationRow.id == integration.id)
            )
            if current is None:
                raise NotFound(f"integration {integration.id} not found")
            raise StaleVersion(
                f"integration {integration.id} was changed by someone else "
                f"(version {current}, you had {expected}): reload and retry"
            )
        return self.get(integration.id)

    def set_consecutive_errors(self, integration_id: str, count: int) -> None:
        """Record the successive-error count (operational state: the version is not bumped,
        so a person editing the configuration meanwhile is not refused)."""
        self.session.execute(
            update(IntegrationRow)
            .where(IntegrationRow.id == integration_id)
            .values(consecutive_errors=count),
            execution_options={"synchronize_session": False},
        )

    def delete(self, integration_id: str) -> None:
        """Delete an integration with its runs, events, linked mappings and ledger entries."""
        result = self.session.execute(
            delete(IntegrationRow).where(IntegrationRow.id == integration_id),
            execution_options={"synchronize_session": False},
        )
        if _rowcount(result) == 0:
            raise NotFound(f"integration {integration_id} not found")

    @staticmethod
    def _values(integration: Integration) -> dict[str, Any]:
        # Everything but id, version and created_at, which never change through update().
        return {
            "destination": integration.destination,
            "entity_type": integration.entity_type,
            "name": integration.config.name,
            "global_config": converter.unstructure(integration.config),
            "entity_config": converter.unstructure(integration.entity_config),
            "destination_config": _plain(integration.destination_config),
            "credential_id": integration.credential_id,
            "enabled": integration.enabled,
            "consecutive_errors": integration.consecutive_errors,
            "updated_at": integration.updated_at,
        }

    @staticmethod
    def _to_domain(row: IntegrationRow) -> Integration:
        return Integration(
            id=row.id,
            destination=row.destination,
            entity_type=row.entity_type,
            config=converter.structure(row.global_config, GlobalConfig),
            entity_config=converter.structure(row.entity_config, BillEntityConfig),
            destination_config=row.destination_config,
            credential_id=row.credential_id,
            enabled=row.enabled,
            version=row.version,
            consecutive_errors=row.consecutive_errors,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


# --- external mappings --------------------------------------------------------------------------


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
            _require(self.session, IntegrationRow, integration_id, "integration")
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
            _require(self.session, ExternalMappingRow, mapping_id, "external mapping")
        )

    def delete(self, mapping_id: str) -> None:
        """Delete one mapping, or raise ``NotFound``."""
        result = self.session.execute(
            delete(ExternalMappingRow).where(ExternalMappingRow.id == mapping_id),
            execution_options={"synchronize_session": False},
        )
        if _rowcount(result) == 0:
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
    ) -> builtins.list[ExternalMapping]:
        """Mappings matching every given filter, oldest first.

        ``linked=True`` keeps mappings that belong to an integration, ``False`` global ones.
        """
        m = ExternalMappingRow
        conditions: builtins.list[ColumnElement[bool]] = []
        for column, value in (
            (m.m3ter_entity, m3ter_entity),
            (m.m3ter_id, m3ter_id),
            (m.external_system, external_system),
            (m.external_table, external_table),
            (m.integration_id, integration_id),
        ):
            if value is not None:
                conditions.append(column == value)
        if linked is not None:
            conditions.append(m.scope != GLOBAL_SCOPE if linked else m.scope == GLOBAL_SCOPE)
        return self._select(select(m).where(*conditions), limit, offset)

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
        return [self._to_domain(row) for row in self.session.execute(_page(columns, limit, offset))]

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


# --- credentials --------------------------------------------------------------------------------


class CredentialRepository:
    """Credentials. Tokens are encrypted with ``secret_box`` before they reach the database."""

    def __init__(self, session: Session, secret_box: SecretBox) -> None:
        self.session = session
        self._box = secret_box

    def add(self, credential: Credential) -> Credential:
        """Save a new credential."""
        row = CredentialRow(
            id=credential.id,
            created_at=credential.created_at,
            oauth_state_used=False,
            version=1,
            **self._values(credential),
        )
        _insert(self.session, row, f"credential {credential.id} already exists")
        return self.get(credential.id)

    def get(self, credential_id: str, *, for_update: bool = False) -> Credential:
        """The credential with this id, or ``NotFound``.

        ``for_update=True`` locks the row until the unit of work ends (``SELECT ... FOR
        UPDATE``) on PostgreSQL, so that one worker refreshes a token while the others wait and
        then read the new one. On SQLite every write transaction already holds the database's
        write lock, which serialises the same way.
        """
        statement = select(CredentialRow).where(CredentialRow.id == credential_id)
        if for_update:
            statement = statement.with_for_update()
        row = self.session.scalar(statement.execution_options(populate_existing=True))
        if row is None:
            raise NotFound(f"credential {credential_id} not found")
        return self._to_domain(row)

    def list(self, *, destination: str | None = None) -> builtins.list[Credential]:
        """Credentials, optionally of one destination, oldest first."""
        statement = select(CredentialRow)
        if destination is not None:
            statement = statement.where(CredentialRow.destination == destination)
        statement = statement.order_by(CredentialRow.created_at, CredentialRow.id)
        rows = self.session.scalars(statement.execution_options(populate_existing=True))
        return [self._to_domain(row) for row in rows]

    def update(self, credential: Credential) -> Credential:
        """Save changes (tokens re-encrypted with the newest key). Raises ``NotFound``."""
        result = self.session.execute(
            update(CredentialRow)
            .where(CredentialRow.id == credential.id)
            .values(version=CredentialRow.version + 1, **self._values(credential)),
            execution_options={"synchronize_session": False},
        )
        if _rowcount(result) == 0:
            raise NotFound(f"credential {credential.id} not found")
        return self.get(credential.id)

    def delete(self, credential_id: str) -> None:
        """Delete a credential; integrations using it become unconnected."""
        result = self.session.execute(
            delete(CredentialRow).where(CredentialRow.id == credential_id),
            execution_options={"synchronize_session": False},
        )
        if _rowcount(result) == 0:
            raise NotFound(f"credential {credential_id} not found")

    def set_state_hash(self, credential_id: str, state_hash: str) -> None:
        """Remember the hash of a new OAuth ``state`` for this credential (unused)."""
        result = self.session.execute(
            update(CredentialRow)
            .where(CredentialRow.id == credential_id)
            .values(oauth_state_hash=state_hash, oauth_state_used=False),
            execution_options={"synchronize_session": False},
        )
        if _rowcount(result) == 0:
            raise NotFound(f"credential {credential_id} not found")

    def find_by_state_hash(self, state_hash: str) -> Credential | None:
        """The credential whose OAuth ``state`` hashes to ``state_hash`` (used or not)."""
        row = self.session.scalar(
            select(CredentialRow)
            .where(CredentialRow.oauth_state_hash == state_hash)
            .execution_options(populate_existing=True)
        )
        return None if row is None else self._to_domain(row)

    def consume_state_hash(self, state_hash: str) -> Credential | None:
        """Mark an OAuth ``state`` used and return its credential; ``None`` if unknown or used.

        Atomic (``UPDATE ... WHERE used = false``): of two callbacks carrying the same state,
        exactly one gets the credential. Expiry is for the caller to check.
        """
        result = self.session.execute(
            update(CredentialRow)
            .where(
                CredentialRow.oauth_state_hash == state_hash,
                CredentialRow.oauth_state_used.is_(False),
            )
            .values(oauth_state_used=True),
            execution_options={"synchronize_session": False},
        )
        if _rowcount(result) == 0:
            return None
        return self.find_by_state_hash(state_hash)

    def delete_expired(self, now: datetime) -> builtins.list[str]:
        """Delete INCOMPLETE credentials whose consent window ended; returns their ids."""
        expired = (
            CredentialRow.status == CredentialStatus.INCOMPLETE.value,
            CredentialRow.expires_at.is_not(None),
            CredentialRow.expires_at <= now,
        )
        ids = builtins.list(self.session.scalars(select(CredentialRow.id).where(*expired)))
        if ids:
            self.session.execute(
                delete(CredentialRow).where(CredentialRow.id.in_(ids), *expired),
                execution_options={"synchronize_session": False},
            )
        return ids

    def _values(self, credential: Credential) -> dict[str, Any]:
        box = self._box
        return {
            "name": credential.name,
            "destination": credential.destination,
            "entity_type": credential.entity_type,
            "status": credential.status.value,
            "expires_at": credential.expires_at,
            "tenant_id": credential.tenant_id,
            "tenant_name": credential.tenant_name,
            "access_token_enc": (
                None if credential.access_token is None else box.encrypt(credential.access_token)
            ),
            "refresh_token_enc": (
                None if credential.refresh_token is None else box.encrypt(credential.refresh_token)
            ),
            "access_token_expires_at": credential.access_token_expires_at,
            "refresh_token_expires_at": credential.refresh_token_expires_at,
            "scopes": builtins.list(credential.scopes),
            "data": _plain(credential.data),
        }

    def _to_domain(self, row: CredentialRow) -> Credential:
        box = self._box
        return Credential(
            id=row.id,
            name=row.name,
            destination=row.destination,
            entity_type=row.entity_type,
            status=CredentialStatus(row.status),
            created_at=row.created_at,
            expires_at=row.expires_at,
            tenant_id=row.tenant_id,
            tenant_name=row.tenant_name,
            access_token=None
            if row.access_token_enc is None
            else box.decrypt(row.access_token_enc),
            refresh_token=(
                None if row.refresh_token_enc is None else box.decrypt(row.refresh_token_enc)
            ),
            access_token_expires_at=row.access_token_expires_at,
            refresh_token_expires_at=row.refresh_token_expires_at,
            scopes=tuple(row.scopes),
            data=row.data,
        )


# --- runs ---------------------------------------------------------------------------------------


def _one_or_many(value: str | Iterable[str]) -> builtins.list[str]:
    # StrEnum members are strings: a single status must not be iterated character by character.
    if isinstance(value, str):
        return [str(value)]
    return [str(v) for v in value]


class RunRepository:
    """Delivery runs."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, run: Run) -> Run:
        """Save a new run. Raises ``NotFound`` if its integration does not exist."""
        _require(self.session, IntegrationRow, run.integration_id, "integration")
        row = RunRow(id=run.id, created_at=run.created_at, **self._values(run))
        _insert(self.session, row, f"run {run.id} already exists")
        return self.get(run.id)

    def get(self, run_id: str) -> Run:
        """The run with this id, or ``NotFound``."""
        return self._to_domain(_require(self.session, RunRow, run_id, "run"))

    def update(self, run: Run) -> Run:
        """Save the run's current state (status, attempts, result...). Raises ``NotFound``."""
        result = self.session.execute(
            update(RunRow).where(RunRow.id == run.id).values(**self._values(run)),
            execution_options={"synchronize_session": False},
        )
        if _rowcount(result) == 0:
            raise NotFound(f"run {run.id} not found")
        return self.get(run.id)

    def list(
        self,
        *,
        integration_id: str | None = None,
        bill_id: str | None = None,
        status: RunStatus | Iterable[RunStatus] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> builtins.list[Run]:
        """Runs matching every filter, newest first. ``since`` is inclusive, ``until`` not."""
        statement = select(RunRow)
        if integration_id is not None:
            statement = statement.where(RunRow.integration_id == integration_id)
        if bill_id is not None:
            statement = statement.where(RunRow.bill_id == bill_id)
        if status is not None:
            statement = statement.where(RunRow.status.in_(_one_or_many(status)))
        if since is not None:
            statement = statement.where(RunRow.created_at >= since)
        if until is not None:
            statement = statement.where(RunRow.created_at < until)
        statement = statement.order_by(RunRow.created_at.desc(), RunRow.id.desc())
        statement = _page(statement, limit, offset).execution_options(populate_existing=True)
        return [self._to_domain(row) for row in self.session.scalars(statement)]

    @staticmethod
    def _values(run: Run) -> dict[str, Any]:
        # The worker lease (claimed_by/claimed_until) is not part of Run and is left alone.
        return {
            "integration_id": run.integration_id,
            "bill_id": run.bill_id,
            "bill_version": run.bill_version,
            "account_id": run.account_id,
            "status": run.status.value,
            "attempts": run.attempts,
            "external_id": run.external_id,
            "external_url": run.external_url,
            "error": run.error,
            "replayed_from": run.replayed_from,
            "next_attempt_at": run.next_attempt_at,
            "updated_at": run.updated_at,
        }

    @staticmethod
    def _to_domain(row: RunRow) -> Run:
        return Run(
            id=row.id,
            integration_id=row.integration_id,
            bill_id=row.bill_id,
            bill_version=row.bill_version,
            account_id=row.account_id,
            status=RunStatus(row.status),
            attempts=row.attempts,
            external_id=row.external_id,
            external_url=row.external_url,
            error=row.error,
            replayed_from=row.replayed_from,
            next_attempt_at=row.next_attempt_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


# --- events -------------------------------------------------------------------------------------


class EventRepository:
    """Events people must act on."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, event: Event) -> Event:
        """Save a new event. Raises ``NotFound`` if its integration does not exist."""
        if event.integration_id is not None:
            _require(self.session, IntegrationRow, event.integration_id, "integration")
        row = EventRow(
            id=event.id,
            type=event.type.value,
            message=event.message,
            integration_id=event.integration_id,
            run_id=event.run_id,
            details=_plain(event.details),
            created_at=event.created_at,
            actioned_at=event.actioned_at,
            actioned_by=event.actioned_by,
        )
        _insert(self.session, row, f"event {event.id} already exists")
        return self.get(event.id)

    def get(self, event_id: str) -> Event:
        """The event with this id, or ``NotFound``."""
        return self._to_domain(_require(self.session, EventRow, event_id, "event"))

    def list(
        self,
        *,
        integration_id: str | None = None,
        type: EventType | Iterable[EventType] | None = None,  # the domain's word for it
        actioned: bool | None = None,
        since: datetime | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> builtins.list[Event]:
        """Events matching every filter, newest first. ``since`` is inclusive."""
        statement = select(EventRow)
        if integration_id is not None:
            statement = statement.where(EventRow.integration_id == integration_id)
        if type is not None:
            statement = statement.where(EventRow.type.in_(_one_or_many(type)))
        if actioned is not None:
            statement = statement.where(
                EventRow.actioned_at.is_not(None) if actioned else EventRow.actioned_at.is_(None)
            )
        if since is not None:
            statement = statement.where(EventRow.created_at >= since)
        statement = statement.order_by(EventRow.created_at.desc(), EventRow.id.desc())
        statement = _page(statement, limit, offset).execution_options(populate_existing=True)
        return [self._to_domain(row) for row in self.session.scalars(statement)]

    def mark_actioned(self, event_id: str, by: str, at: datetime) -> Event:
        """Record that ``by`` dealt with the event at ``at``; returns the event.

        Marking an event that is already actioned keeps the first record (who dealt with it
        first is what a person reading the history wants).
        """
        self.session.execute(
            update(EventRow)
            .where(EventRow.id == event_id, EventRow.actioned_at.is_(None))
            .values(actioned_at=at, actioned_by=by),
            execution_options={"synchronize_session": False},
        )
        return self.get(event_id)

    @staticmethod
    def _to_domain(row: EventRow) -> Event:
        return Event(
            id=row.id,
            type=EventType(row.type),
            message=row.message,
            integration_id=row.integration_id,
            run_id=row.run_id,
            details=row.details,
            created_at=row.created_at,
            actioned_at=row.actioned_at,
            actioned_by=row.actioned_by,
        )


# --- delivery ledger ----------------------------------------------------------------------------


class LedgerRepository:
    """The delivery ledger: which external invoice each bill became, per integration."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, integration_id: str, bill_id: str) -> LedgerEntry | None:
        """The entry for this bill through this integration, or ``None`` if never delivered."""
        row = _get_row(self.session, LedgerRow, (integration_id, bill_id))
        if row is None:
            return None
        return LedgerEntry(
            integration_id=row.integration_id,
            bill_id=row.bill_id,
            bill_version=row.bill_version,
            external_id=row.external_id,
            external_number=row.external_number,
            external_url=row.external_url,
            state=loads(row.state),
            updated_at=row.updated_at,
        )

    def upsert(self, entry: LedgerEntry) -> LedgerEntry:
        """Insert or replace the entry for ``(integration_id, bill_id)`` in one statement.

        ``INSERT ... ON CONFLICT DO UPDATE`` (both databases): two workers recording the same
        bill cannot fail on the primary key; the last write wins.
        """
        _require(self.session, IntegrationRow, entry.integration_id, "integration")
        values = {
            "integration_id": entry.integration_id,
            "bill_id": entry.bill_id,
            "bill_version": entry.bill_version,
            "external_id": entry.external_id,
            "external_number": entry.external_number,
            "external_url": entry.external_url,
            "state": dumps(_plain(entry.state)),
            "updated_at": entry.updated_at,
        }
        changing = [k for k in values if k not in ("integration_id", "bill_id")]
        keys = [LedgerRow.integration_id, LedgerRow.bill_id]
        if self.session.get_bind().dialect.name == "postgresql":
            pg_insert = postgresql.insert(LedgerRow).values(values)
            statement: Any = pg_insert.on_conflict_do_update(
                index_elements=keys, set_={k: pg_insert.excluded[k] for k in changing}
            )
        else:
            lite_insert = sqlite.insert(LedgerRow).values(values)
            statement = lite_insert.on_conflict_do_update(
                index_elements=keys, set_={k: lite_insert.excluded[k] for k in changing}
            )
        self.session.execute(statement)
        result = self.get(entry.integration_id, entry.bill_id)
        assert result is not None  # written just above, in this transaction
        return result


# --- bills --------------------------------------------------------------------------------------


class BillRepository:
    """Every bill version received, kept exactly, with the account it was billed to."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def save(self, bill: Bill, account: Account, *, received_at: datetime | None = None) -> bool:
        """Keep this bill version; returns ``True`` when something was written.

        Idempotent per ``(bill id, version)``: the same bill again is a no-op. A *different*
        bill under a stored id and version raises ``Conflict`` (m3ter gives every change a new
        version, so this is a mistake upstream, and deliveries of that version must keep reading
        what they read). The account document is replaced when it changed, so that a retry
        after fixing the customer's details in m3ter uses them.
        """
        document = dumps(bill)
        account_document = dumps(account)
        stored = _get_row(self.session, BillRow, (bill.id, bill.version))
        if stored is None:
            row = BillRow(
                bill_id=bill.id,
                version=bill.version,
                account_id=bill.account_id,
                document=document,
                account_document=account_document,
                received_at=received_at or utcnow(),
            )
            try:
                with self.session.begin_nested():
                    self.session.add(row)
                return True
            except IntegrityError:
                # Saved by a concurrent submission of the same version: compare with that.
                stored = _require(self.session, BillRow, (bill.id, bill.version), "bill")
        if parse_bill(stored.document) != bill:
            raise Conflict(
                f"bill {bill.id} version {bill.version} was already received with different "
                "content; m3ter gives every change to a bill a new version"
            )
        if parse_account(stored.account_document) == account:
            return False
        stored.account_document = account_document
        self.session.flush()
        return True

    def get(self, bill_id: str, version: int) -> tuple[Bill, Account]:
        """The bill version exactly as received, and its account; or ``NotFound``."""
        row = _get_row(self.session, BillRow, (bill_id, version))
        if row is None:
            raise NotFound(f"bill {bill_id} version {version} not found")
        return parse_bill(row.document), parse_account(row.account_document)


# --- OAuth apps ---------------------------------------------------------------------------------


class OAuthAppRepository:
    """The OAuth app (client id, encrypted client secret, redirect URI) per destination."""

    def __init__(self, session: Session, secret_box: SecretBox) -> None:
        self.session = session
        self._box = secret_box

    def get(self, destination: str) -> DestinationSettings | None:
        """The stored app for ``destination`` as settings, or ``None``."""
        row = _get_row(self.session, OAuthAppRow, destination)
        if row is None:
            return None
        return DestinationSettings(
            client_id=row.client_id,
            client_secret=self._box.decrypt(row.client_secret_enc),
            redirect_uri=row.redirect_uri,
        )

    def put(
        self,
        destination: str,
        *,
        client_id: str,
        client_secret: Secret,
        redirect_uri: str | None,
        at: datetime,
    ) -> None:
        """Create or replace the app of ``destination`` (the secret re-encrypted)."""
        row = _get_row(self.session, OAuthAppRow, destination)
        if row is None:
            row = OAuthAppRow(destination=destination)
            self.session.add(row)
        row.client_id = client_id
        row.client_secret_enc = self._box.encrypt(client_secret)
        row.redirect_uri = redirect_uri
        row.updated_at = at
        self.session.flush()

    def destinations(self) -> builtins.list[str]:
        """Every destination with a stored app."""
        return builtins.list(
            self.session.scalars(select(OAuthAppRow.destination).order_by(OAuthAppRow.destination))
        )

    def delete(self, destination: str) -> None:
        """Forget the app of ``destination`` (``NotFound`` if none)."""
        result = self.session.execute(
            delete(OAuthAppRow).where(OAuthAppRow.destination == destination),
            execution_options={"synchronize_session": False},
        )
        if _rowcount(result) == 0:
            raise NotFound(f"no OAuth app stored for {destination}")
