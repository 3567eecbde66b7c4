"""Destination tenants: the lease that lets one worker at a time deliver to a tenant, and the
tenant's rate-limit usage carried across leases and workers."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from billbridge.store.common import is_postgres, rowcount
from billbridge.store.tables import TenantStateRow

__all__ = ["TenantRepository", "TenantState"]


@attrs.frozen
class TenantState:
    """What a worker holding a tenant's lease knows about the tenant's limits."""

    key: str
    blocked_until: datetime | None
    blocked_reason: str | None
    counters: Mapping[str, Any]


class TenantRepository:
    """Tenant leases and limit state."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._postgres = is_postgres(session)

    def _locked(self, key: str) -> TenantStateRow | None:
        return self.session.scalar(
            select(TenantStateRow)
            .where(TenantStateRow.key == key)
            .with_for_update()
            .execution_options(populate_existing=True)
        )

    def acquire(
        self, key: str, *, worker: str, now: datetime, until: datetime
    ) -> TenantState | None:
        """Lease tenant ``key`` to ``worker`` until ``until``; ``None`` if another holds it."""
        row = self._locked(key)
        if row is None:
            dialect_insert = postgresql.insert if self._postgres else sqlite.insert
            self.session.execute(
                dialect_insert(TenantStateRow)
                .values(key=key, counters={}, updated_at=now)
                .on_conflict_do_nothing(index_elements=[TenantStateRow.key])
            )
            row = self._locked(key)
            assert row is not None  # inserted just above, or by a racing worker
        if (
            row.lease_owner not in (None, worker)
            and row.lease_until is not None
            and row.lease_until > now
        ):
            return None
        row.lease_owner = worker
        row.lease_until = until
        row.updated_at = now
        self.session.flush()
        return TenantState(
            key=key,
            blocked_until=row.blocked_until,
            blocked_reason=row.blocked_reason,
            counters=dict(row.counters or {}),
        )

    def renew(self, key: str, *, worker: str, until: datetime) -> bool:
        """Extend a lease this worker holds; False if it lost it."""
        result = self.session.execute(
            update(TenantStateRow)
            .where(TenantStateRow.key == key, TenantStateRow.lease_owner == worker)
            .values(lease_until=until),
            execution_options={"synchronize_session": False},
        )
        return bool(rowcount(result))

    def release(
        self,
        key: str,
        *,
        worker: str,
        now: datetime,
        counters: Mapping[str, Any],
        blocked_until: datetime | None,
        blocked_reason: str | None,
    ) -> None:
        """Give the lease back, saving the tenant's usage and any block."""
        self.session.execute(
            update(TenantStateRow)
            .where(TenantStateRow.key == key, TenantStateRow.lease_owner == worker)
            .values(
                lease_owner=None,
                lease_until=None,
                counters=dict(counters),
                blocked_until=blocked_until,
                blocked_reason=blocked_reason,
                updated_at=now,
            ),
            execution_options={"synchronize_session": False},
        )

    def states(self) -> builtins.list[tuple[str, datetime | None, str | None]]:
        """Every tenant's ``(key, blocked until, why)``."""
        return [
            (row.key, row.blocked_until, row.blocked_reason)
            for row in self.session.execute(
                select(
                    TenantStateRow.key, TenantStateRow.blocked_until, TenantStateRow.blocked_reason
                ).order_by(TenantStateRow.key)
            )
        ]
