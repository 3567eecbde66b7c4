"""Webhook endpoints (secrets encrypted), their delivery queue and log, and feed cursors."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from billbridge.domain.activity import WebhookDelivery, WebhookEndpoint, WebhookStatus
from billbridge.domain.models import Secret
from billbridge.errors import NotFound
from billbridge.secrets import SecretBox
from billbridge.store.common import (
    before,
    count_of,
    insert_or_conflict,
    is_postgres,
    page,
    require_row,
    rowcount,
    stored_secret_sample,
)
from billbridge.store.tables import FeedCursorRow, WebhookDeliveryRow, WebhookEndpointRow

__all__ = ["WebhookRepository"]


def _endpoint(row: WebhookEndpointRow) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=row.id,
        url=row.url,
        description=row.description,
        event_types=tuple(row.event_types),
        enabled=row.enabled,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _delivery(row: WebhookDeliveryRow) -> WebhookDelivery:
    return WebhookDelivery(
        id=row.id,
        endpoint_id=row.endpoint_id,
        dedupe_key=row.dedupe_key,
        event_type=row.event_type,
        payload=row.payload,
        status=WebhookStatus(row.status),
        attempts=row.attempts,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        response_status=row.response_status,
        error=row.error,
        delivered_at=row.delivered_at,
    )


class WebhookRepository:
    """Endpoints, the queue of deliveries to them, and how far the feed has been read."""

    def __init__(self, session: Session, secret_box: SecretBox) -> None:
        self.session = session
        self._box = secret_box
        self._postgres = is_postgres(session)

    # -- endpoints ---------------------------------------------------------------------------

    def add_endpoint(self, endpoint: WebhookEndpoint, secret: Secret) -> WebhookEndpoint:
        """Save a new endpoint with its signing secret (encrypted)."""
        self._box.require_readable(stored_secret_sample(self.session))
        row = WebhookEndpointRow(
            id=endpoint.id,
            url=endpoint.url,
            description=endpoint.description,
            event_types=list(endpoint.event_types),
            secret_enc=self._box.encrypt(secret),
            enabled=endpoint.enabled,
            created_at=endpoint.created_at,
            updated_at=endpoint.updated_at,
        )
        insert_or_conflict(self.session, row, f"webhook {endpoint.id} already exists")
        return self.endpoint(endpoint.id)

    def endpoint(self, endpoint_id: str) -> WebhookEndpoint:
        """One endpoint, or ``NotFound``."""
        return _endpoint(require_row(self.session, WebhookEndpointRow, endpoint_id, "webhook"))

    def endpoints(self, *, enabled: bool | None = None) -> builtins.list[WebhookEndpoint]:
        """Endpoints, oldest first."""
        statement = select(WebhookEndpointRow).order_by(
            WebhookEndpointRow.created_at, WebhookEndpointRow.id
        )
        if enabled is not None:
            statement = statement.where(WebhookEndpointRow.enabled == enabled)
        rows = self.session.scalars(statement.execution_options(populate_existing=True))
        return [_endpoint(row) for row in rows]

    def update_endpoint(self, endpoint: WebhookEndpoint) -> WebhookEndpoint:
        """Save an endpoint's URL, description, types and enabled flag."""
        result = self.session.execute(
            update(WebhookEndpointRow)
            .where(WebhookEndpointRow.id == endpoint.id)
            .values(
                url=endpoint.url,
                description=endpoint.description,
                event_types=list(endpoint.event_types),
                enabled=endpoint.enabled,
                updated_at=endpoint.updated_at,
            ),
            execution_options={"synchronize_session": False},
        )
        if rowcount(result) == 0:
            raise NotFound(f"webhook {endpoint.id} not found")
        return self.endpoint(endpoint.id)

    def secret(self, endpoint_id: str) -> Secret:
        """The endpoint's signing secret (to sign with; never to show)."""
        row = require_row(self.session, WebhookEndpointRow, endpoint_id, "webhook")
        return self._box.decrypt(row.secret_enc)

    def rotate_secrets(self) -> int:
        """Re-encrypt every endpoint's secret with the newest key; returns how many."""
        rows = builtins.list(self.session.scalars(select(WebhookEndpointRow)))
        for row in rows:
            row.secret_enc = self._box.rotate(row.secret_enc)
        self.session.flush()
        return len(rows)

    def delete_endpoint(self, endpoint_id: str) -> None:
        """Delete an endpoint with its delivery log."""
        result = self.session.execute(
            delete(WebhookEndpointRow).where(WebhookEndpointRow.id == endpoint_id),
            execution_options={"synchronize_session": False},
        )
        if rowcount(result) == 0:
            raise NotFound(f"webhook {endpoint_id} not found")

    # -- the queue ---------------------------------------------------------------------------

    def enqueue(self, deliveries: Sequence[WebhookDelivery]) -> int:
        """Queue deliveries; one already queued (same endpoint and key) is left alone.

        Returns how many the database reports inserted (0 when the driver does not say).
        """
        if not deliveries:
            return 0
        dialect_insert = postgresql.insert if self._postgres else sqlite.insert
        statement = dialect_insert(WebhookDeliveryRow).on_conflict_do_nothing(
            index_elements=[WebhookDeliveryRow.endpoint_id, WebhookDeliveryRow.dedupe_key]
        )
        result = self.session.connection().execute(statement, [_values(d) for d in deliveries])
        # Drivers report an executemany's count differently (-1 when unknown): a hint only.
        return max(rowcount(result), 0)

    def claim_due(
        self, *, now: datetime, until: datetime, limit: int
    ) -> builtins.list[WebhookDelivery]:
        """Claim up to ``limit`` pending deliveries that are due (oldest first) until ``until``.

        A claim keeps other processes off a delivery while it is being sent; one whose sender
        died becomes due again when its claim lapses.
        """
        d = WebhookDeliveryRow
        candidates = (
            select(d.id)
            .where(
                d.status == WebhookStatus.PENDING.value,
                or_(d.next_attempt_at.is_(None), d.next_attempt_at <= now),
                or_(d.claimed_until.is_(None), d.claimed_until <= now),
            )
            .order_by(d.created_at, d.id)
            .limit(limit)
        )
        if self._postgres:
            candidates = candidates.with_for_update(skip_locked=True)
        ids = builtins.list(self.session.scalars(candidates))
        if not ids:
            return []
        self.session.execute(
            update(d).where(d.id.in_(ids)).values(claimed_until=until),
            execution_options={"synchronize_session": False},
        )
        rows = self.session.scalars(
            select(d)
            .where(d.id.in_(ids))
            .order_by(d.created_at, d.id)
            .execution_options(populate_existing=True)
        )
        return [_delivery(row) for row in rows]

    def finish(self, delivery: WebhookDelivery) -> None:
        """Write how a claimed delivery went (and release the claim)."""
        values = _values(delivery)
        for key in ("id", "endpoint_id", "dedupe_key", "event_type", "payload", "created_at"):
            values.pop(key)
        self.session.execute(
            update(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.id == delivery.id)
            .values(claimed_until=None, **values),
            execution_options={"synchronize_session": False},
        )

    def delivery(self, delivery_id: str) -> WebhookDelivery:
        """One delivery, or ``NotFound``."""
        return _delivery(
            require_row(self.session, WebhookDeliveryRow, delivery_id, "webhook delivery")
        )

    def deliveries(
        self,
        endpoint_id: str,
        *,
        status: WebhookStatus | None = None,
        limit: int | None = 100,
        before_key: tuple[datetime, str] | None = None,
    ) -> builtins.list[WebhookDelivery]:
        """An endpoint's delivery log, newest first (``before_key``: keyset paging)."""
        d = WebhookDeliveryRow
        statement = select(d).where(d.endpoint_id == endpoint_id)
        if status is not None:
            statement = statement.where(d.status == status.value)
        older = before(d.created_at, d.id, before_key)
        if older is not None:
            statement = statement.where(older)
        statement = page(statement.order_by(d.created_at.desc(), d.id.desc()), limit, 0)
        return [_delivery(row) for row in self.session.scalars(statement)]

    def count_deliveries(self, endpoint_id: str, *, status: WebhookStatus | None = None) -> int:
        """How many deliveries :meth:`deliveries` would list without paging."""
        d = WebhookDeliveryRow
        statement = select(d.id).where(d.endpoint_id == endpoint_id)
        if status is not None:
            statement = statement.where(d.status == status.value)
        return count_of(self.session, statement)

    # -- feed cursors ------------------------------------------------------------------------

    def cursor(self, name: str, *, start: datetime, at: datetime) -> datetime:
        """How far the reader ``name`` has read the feed (``start`` for a new reader).

        The row is locked until the unit of work ends (``FOR UPDATE`` on PostgreSQL; SQLite's
        write lock), so two processes never read the same stretch of the feed at once.
        """
        dialect_insert = postgresql.insert if self._postgres else sqlite.insert
        self.session.execute(
            dialect_insert(FeedCursorRow)
            .values(name=name, position=start, updated_at=at)
            .on_conflict_do_nothing(index_elements=[FeedCursorRow.name])
        )
        position = self.session.scalar(
            select(FeedCursorRow.position).where(FeedCursorRow.name == name).with_for_update()
        )
        assert position is not None  # inserted just above, or by a racing process
        return position

    def set_cursor(self, name: str, position: datetime, at: datetime) -> None:
        """Record how far the reader ``name`` has read (its row exists: see :meth:`cursor`)."""
        self.session.execute(
            update(FeedCursorRow)
            .where(FeedCursorRow.name == name)
            .values(position=position, updated_at=at),
            execution_options={"synchronize_session": False},
        )


def _values(delivery: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "endpoint_id": delivery.endpoint_id,
        "dedupe_key": delivery.dedupe_key,
        "event_type": delivery.event_type,
        "payload": delivery.payload,
        "status": delivery.status.value,
        "attempts": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at,
        "response_status": delivery.response_status,
        "error": delivery.error,
        "created_at": delivery.created_at,
        "delivered_at": delivery.delivered_at,
    }
