"""Integrations, with optimistic locking on :attr:`Integration.version`."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from billbridge.domain.models import BillEntityConfig, GlobalConfig, Integration, converter
from billbridge.domain.schemas import SEALED
from billbridge.errors import NotFound, StaleVersion
from billbridge.store.common import insert_or_conflict, plain, require_row, rowcount
from billbridge.store.tables import CredentialRow, IntegrationRow

__all__ = ["IntegrationRepository"]


class IntegrationRepository:
    """Integrations, with optimistic locking on :attr:`Integration.version`."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, integration: Integration) -> Integration:
        """Save a new integration. Raises ``NotFound`` if its credential does not exist."""
        if integration.credential_id is not None:
            require_row(self.session, CredentialRow, integration.credential_id, "credential")
        row = IntegrationRow(
            id=integration.id,
            version=integration.version,
            created_at=integration.created_at,
            **self._values(integration),
        )
        insert_or_conflict(self.session, row, f"integration {integration.id} already exists")
        return self.get(integration.id)

    def get(self, integration_id: str) -> Integration:
        """The integration with this id, or ``NotFound``."""
        return self._to_domain(
            require_row(self.session, IntegrationRow, integration_id, "integration")
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
            require_row(self.session, CredentialRow, integration.credential_id, "credential")
        result = self.session.execute(
            update(IntegrationRow)
            .where(IntegrationRow.id == integration.id, IntegrationRow.version == expected)
            .values(version=expected + 1, **self._values(integration)),
            execution_options={"synchronize_session": False},
        )
        if rowcount(result) != 1:
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

    def rotate_sealed(self, rotate: Callable[[str], str]) -> int:
        """Re-encrypt the sealed secrets of every destination configuration with ``rotate``
        (the key ring's); returns how many secrets. The version is not bumped: the
        configuration means the same, and a person editing it meanwhile is not refused."""
        count = 0
        for row in self.session.scalars(select(IntegrationRow)):
            config = dict(row.destination_config or {})
            changed = False
            for name, value in config.items():
                if isinstance(value, dict) and set(value) == {SEALED}:
                    config[name] = {SEALED: rotate(value[SEALED])}
                    changed = True
                    count += 1
            if changed:
                row.destination_config = config
        self.session.flush()
        return count

    def delete(self, integration_id: str) -> None:
        """Delete an integration with its runs, events, linked mappings and ledger entries."""
        result = self.session.execute(
            delete(IntegrationRow).where(IntegrationRow.id == integration_id),
            execution_options={"synchronize_session": False},
        )
        if rowcount(result) == 0:
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
            "destination_config": plain(integration.destination_config),
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
