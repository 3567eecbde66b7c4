"""Idempotency keys: the same bill version through the same integration always gets the same key.

The core computes them and hands them to plugins (``send_bill(idempotency_key=…)``,
``send_bills(idempotency_key=…)``); plugins send them as the destination's idempotency key
(QuickBooks ``requestid``, Xero ``Idempotency-Key``), so a request retried after a lost answer
returns the original document instead of making a second one.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable

__all__ = ["batch_idempotency_key", "derived_key", "idempotency_key"]

_NAMESPACE = uuid.UUID("6f1d5c2e-2b8a-4f7e-9a51-b111b81d9e00")


def idempotency_key(integration_id: str, bill_id: str, version: int) -> str:
    """The deterministic key of one bill version through one integration (36 characters)."""
    return str(uuid.uuid5(_NAMESPACE, f"{integration_id}/{bill_id}/{version}"))


def batch_idempotency_key(member_keys: Iterable[str]) -> str:
    """The key of a batch: the same members, in any order, give the same key (36 characters)."""
    members = "\n".join(sorted(member_keys))
    return str(uuid.uuid5(_NAMESPACE, f"batch\n{members}"))


def derived_key(base: str, body: bytes, *, limit: int = 36) -> str:
    """A key for one request made from ``base`` and the exact body sent, at most ``limit`` long.

    The same base with the same body gives the same key (a retry replays the original answer);
    the same base with another body (an update after a change) gives another, so a destination
    that remembers keys never answers a changed request with an old response.
    """
    digest = hashlib.sha256(base.encode("utf-8") + b"\n" + body).hexdigest()
    key = str(uuid.uuid5(_NAMESPACE, digest))
    return key[:limit]
