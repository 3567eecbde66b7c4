"""Webhooks (``engine.webhooks``): signed notifications of events and delivery outcomes.

An endpoint is a URL and the feed types it wants (every type when none is given). The feed
(:mod:`billbridge.services.activity`) is read with a shared cursor; each item an endpoint wants
is queued once (a unique key per endpoint and item) and POSTed as JSON::

    {"id": "<delivery id>", "type": "run.complete", "createdAt": "...", "data": {...}}

with ``X-Billbridge-Timestamp`` (seconds since the epoch, at sending) and
``X-Billbridge-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`` keyed with the
endpoint's secret, the scheme of the signed webhook destination example. A 2xx answer delivers;
anything else is retried with exponential backoff (10 s doubling, at most an hour apart) and
given up after :data:`MAX_ATTEMPTS`. Every try is in the delivery log.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

import attrs
import httpx

from billbridge.domain.activity import (
    FEED_TYPES,
    FeedItem,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookStatus,
)
from billbridge.domain.clock import Clock
from billbridge.domain.models import Secret, dumps
from billbridge.errors import CredentialError, FieldError, ValidationFailed
from billbridge.plugin.http import transport_problem
from billbridge.services.activity import OVERLAP, feed_since
from billbridge.services.oauth import require_safe_url
from billbridge.store import UnitOfWork, UnitOfWorkFactory, atomically, new_id

__all__ = [
    "MAX_ATTEMPTS",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Webhooks",
    "sign",
]

SIGNATURE_HEADER = "X-Billbridge-Signature"
TIMESTAMP_HEADER = "X-Billbridge-Timestamp"
MAX_ATTEMPTS = 10
"""Tries before a delivery is given up (about 1.5 hours of backoff in all)."""

_CURSOR = "webhooks"
_SEND_TIMEOUT = 10.0
_CLAIM = timedelta(minutes=2)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``."""
    message = str(timestamp).encode("ascii") + b"." + body
    return "sha256=" + hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(10 * 2 ** max(attempts - 1, 0), 3600))


class Webhooks:
    """``engine.webhooks``: endpoints, the delivery queue and its log."""

    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock, http: httpx.Client) -> None:
        self._uow = uow
        self._clock = clock
        self._http = http

    # -- endpoints ---------------------------------------------------------------------------

    def create(
        self, url: str, *, event_types: Sequence[str] = (), description: str = ""
    ) -> tuple[WebhookEndpoint, str]:
        """Add an endpoint; returns it and its signing secret (shown this once).

        :raises ValidationFailed: the URL is not https (or loopback), or a type is unknown.
        """
        _check(url, event_types)
        now = self._clock.now()
        endpoint = WebhookEndpoint(
            id=new_id(),
            url=url,
            description=description.strip(),
            event_types=tuple(dict.fromkeys(event_types)),
            created_at=now,
            updated_at=now,
        )
        secret = "whsec_" + secrets.token_urlsafe(32)
        saved = atomically(
            self._uow, lambda uow: uow.webhooks.add_endpoint(endpoint, Secret(secret))
        )
        return saved, secret

    def list(self) -> builtins.list[WebhookEndpoint]:
        """Every endpoint, oldest first."""
        return atomically(self._uow, lambda uow: uow.webhooks.endpoints())

    def get(self, endpoint_id: str) -> WebhookEndpoint:
        """One endpoint; raises :class:`~billbridge.errors.NotFound`."""
        return atomically(self._uow, lambda uow: uow.webhooks.endpoint(endpoint_id))

    def update(
        self,
        endpoint_id: str,
        *,
        url: str | None = None,
        event_types: Sequence[str] | None = None,
        description: str | None = None,
        enabled: bool | None = None,
    ) -> WebhookEndpoint:
        """Change an endpoint (its secret stays)."""
        current = self.get(endpoint_id)
        changed = attrs.evolve(
            current,
            url=url if url is not None else current.url,
            event_types=(
                tuple(dict.fromkeys(event_types)) if event_types is not None
                else current.event_types
            ),
            description=description.strip() if description is not None else current.description,
            enabled=enabled if enabled is not None else current.enabled,
            updated_at=self._clock.now(),
        )  # fmt: skip
        _check(changed.url, changed.event_types)
        return atomically(self._uow, lambda uow: uow.webhooks.update_endpoint(changed))

    def delete(self, endpoint_id: str) -> None:
        """Delete an endpoint and its delivery log."""
        atomically(self._uow, lambda uow: uow.webhooks.delete_endpoint(endpoint_id))

    # -- the log -----------------------------------------------------------------------------

    def deliveries(
        self,
        endpoint_id: str,
        *,
        status: WebhookStatus | str | None = None,
        limit: int | None = 100,
        before: tuple[datetime, str] | None = None,
    ) -> builtins.list[WebhookDelivery]:
        """An endpoint's deliveries, newest first."""
        wanted = WebhookStatus(status) if status is not None else None
        self.get(endpoint_id)
        return atomically(
            self._uow,
            lambda uow: uow.webhooks.deliveries(
                endpoint_id, status=wanted, limit=limit, before_key=before
            ),
        )

    def count_deliveries(
        self, endpoint_id: str, *, status: WebhookStatus | str | None = None
    ) -> int:
        """How many deliveries an endpoint has (of one status)."""
        wanted = WebhookStatus(status) if status is not None else None
        return atomically(
            self._uow, lambda uow: uow.webhooks.count_deliveries(endpoint_id, status=wanted)
        )

    def redeliver(self, delivery_id: str) -> WebhookDelivery:
        """Send a delivery again (a failed one, or one delivered that the receiver lost), with
        its retries starting over."""

        def work(uow: UnitOfWork) -> WebhookDelivery:
            current = uow.webhooks.delivery(delivery_id)
            again = attrs.evolve(
                current, status=WebhookStatus.PENDING, attempts=0, next_attempt_at=None
            )
            uow.webhooks.finish(again)
            return uow.webhooks.delivery(delivery_id)

        return atomically(self._uow, work)

    # -- dispatching -------------------------------------------------------------------------

    def dispatch(self) -> int:
        """Queue what the feed has new, then send what is due; returns deliveries attempted."""
        self.enqueue_new()
        return self.send_due()

    def enqueue_new(self) -> int:
        """Queue every new feed item for the endpoints that want it; returns how many."""
        now = self._clock.now()

        def work(uow: UnitOfWork) -> int:
            repo = uow.webhooks
            position = repo.cursor(_CURSOR, start=now, at=now)
            endpoints = repo.endpoints(enabled=True)
            # In this unit of work: on SQLite a second one would wait for the lock it holds.
            items = feed_since(uow, position - OVERLAP, limit=1000)
            queued = repo.enqueue(
                [
                    _delivery(endpoint, item, now)
                    for item in items
                    for endpoint in endpoints
                    if endpoint.wants(item.type) and item.at >= endpoint.created_at
                ]
            )
            if items:
                repo.set_cursor(_CURSOR, max(position, items[-1].at), now)
            return queued

        return atomically(self._uow, work)

    def send_due(self, limit: int = 100) -> int:
        """Send up to ``limit`` due deliveries; returns how many were tried."""
        now = self._clock.now()
        claimed = atomically(
            self._uow,
            lambda uow: uow.webhooks.claim_due(now=now, until=now + _CLAIM, limit=limit),
        )
        for delivery in claimed:
            self._send(delivery)
        return len(claimed)

    def _send(self, delivery: WebhookDelivery) -> None:
        endpoint, secret = atomically(
            self._uow,
            lambda uow: (
                uow.webhooks.endpoint(delivery.endpoint_id),
                uow.webhooks.secret(delivery.endpoint_id),
            ),
        )
        body = delivery.payload.encode("utf-8")
        timestamp = int(self._clock.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "billbridge-webhooks",
            "X-Billbridge-Event": delivery.event_type,
            "X-Billbridge-Delivery": delivery.id,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(secret.reveal(), timestamp, body),
        }
        status: int | None = None
        try:
            response = self._http.post(
                endpoint.url, content=body, headers=headers, timeout=_SEND_TIMEOUT
            )
            status = response.status_code
            error = None if 200 <= status < 300 else f"the endpoint answered HTTP {status}"
        except httpx.HTTPError as exc:
            error = f"could not reach the endpoint: {transport_problem(exc)}"
        atomically(
            self._uow, lambda uow: uow.webhooks.finish(self._outcome(delivery, status, error))
        )

    def _outcome(
        self, delivery: WebhookDelivery, status: int | None, error: str | None
    ) -> WebhookDelivery:
        now = self._clock.now()
        attempts = delivery.attempts + 1
        if error is None:
            return attrs.evolve(
                delivery, status=WebhookStatus.DELIVERED, attempts=attempts, response_status=status,
                error=None, delivered_at=now, next_attempt_at=None,
            )  # fmt: skip
        gave_up = attempts >= MAX_ATTEMPTS
        return attrs.evolve(
            delivery,
            status=WebhookStatus.FAILED if gave_up else WebhookStatus.PENDING,
            attempts=attempts,
            response_status=status,
            error=error,
            next_attempt_at=None if gave_up else now + _backoff(attempts),
        )


def _check(url: str, event_types: Sequence[str]) -> None:
    errors = []
    try:
        require_safe_url(url, "webhook URL")
    except CredentialError:
        errors.append(FieldError("/url", "must be an https URL (plain http only on this machine)"))
    for index, kind in enumerate(event_types):
        if kind not in FEED_TYPES:
            errors.append(
                FieldError(f"/eventTypes/{index}", "must be one of: " + ", ".join(FEED_TYPES))
            )
    if errors:
        raise ValidationFailed(errors, summary="webhook refused")


def _delivery(endpoint: WebhookEndpoint, item: FeedItem, now: datetime) -> WebhookDelivery:
    delivery_id = new_id()
    payload = {"id": delivery_id, "type": item.type, "createdAt": item.at, "data": item.data}
    return WebhookDelivery(
        id=delivery_id,
        endpoint_id=endpoint.id,
        dedupe_key=item.key,
        event_type=item.type,
        payload=dumps(payload),
        status=WebhookStatus.PENDING,
        attempts=0,
        created_at=now,
    )
