"""API keys of the HTTP service: stored by hash, looked up by hash, revoked, never deleted."""

from __future__ import annotations

import builtins
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from billbridge.domain.access import ApiKey, Scope
from billbridge.errors import NotFound
from billbridge.store.common import insert_or_conflict, require_row, rowcount
from billbridge.store.tables import ApiKeyRow

__all__ = ["ApiKeyRepository"]


def _to_domain(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        scope=Scope(row.scope),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


class ApiKeyRepository:
    """API keys (their hashes; the keys themselves are never stored)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, key: ApiKey, key_hash: str) -> ApiKey:
        """Save a new key under the hash of its text."""
        row = ApiKeyRow(
            id=key.id,
            name=key.name,
            prefix=key.prefix,
            key_hash=key_hash,
            scope=key.scope.value,
            created_at=key.created_at,
            revoked_at=key.revoked_at,
        )
        insert_or_conflict(self.session, row, f"API key {key.id} already exists")
        return self.get(key.id)

    def get(self, key_id: str) -> ApiKey:
        """The key with this id, or ``NotFound``."""
        return _to_domain(require_row(self.session, ApiKeyRow, key_id, "API key"))

    def find(self, key_hash: str) -> ApiKey | None:
        """The key whose text hashes to ``key_hash`` (revoked or not), or ``None``."""
        row = self.session.scalar(
            select(ApiKeyRow)
            .where(ApiKeyRow.key_hash == key_hash)
            .execution_options(populate_existing=True)
        )
        return None if row is None else _to_domain(row)

    def list(self) -> builtins.list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        statement = select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id)
        return [_to_domain(row) for row in self.session.scalars(statement)]

    def revoke(self, key_id: str, at: datetime) -> ApiKey:
        """Revoke a key (a key revoked before keeps its first revocation time)."""
        result = self.session.execute(
            update(ApiKeyRow)
            .where(ApiKeyRow.id == key_id, ApiKeyRow.revoked_at.is_(None))
            .values(revoked_at=at),
            execution_options={"synchronize_session": False},
        )
        if rowcount(result) == 0 and self.session.get(ApiKeyRow, key_id) is None:
            raise NotFound(f"API key {key_id} not found")
        return self.get(key_id)
