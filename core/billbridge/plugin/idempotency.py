"""Idempotency keys: the same bill version through the same integration always gets the same key.

The core computes them and hands them to plugins (``send_bill(idempotency_key=…)``,
``send_bills(idempotency_key=…)``); plugins send them as the destination's idempotency key
(QuickBooks ``requestid``, Xero ``Idempotency-Key``), so a request retried after a lost answer
returns the original document instead of making a second one. A plugin does not send the core's
key as it is: it binds it to the exact body of each request with :func:`derived_key`.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable

__all__ = ["batch_idempotency_key", "derived_key", "idempotency_key"]

_NAMESPACE = uuid.UUID("6f1d5c2e-2b8a-4f7e-9a51-b111b81d9e00")

#: Hex characters of the body's digest in a derived key (48 bits: a key's base only ever sees a
#: handful of bodies, so collisions between them are out of reach).
_BODY_DIGEST = 12
#: The fewest characters of the base a derived key keeps (hashed when the base is longer).
_MIN_BASE = 8


def idempotency_key(integration_id: str, bill_id: str, version: int) -> str:
    """The deterministic key of one bill version through one integration (36 characters)."""
    return str(uuid.uuid5(_NAMESPACE, f"{integration_id}/{bill_id}/{version}"))


def batch_idempotency_key(member_keys: Iterable[str]) -> str:
    """The key of a batch: the same members, in any order, give the same key (36 characters)."""
    members = "\n".join(sorted(member_keys))
    return str(uuid.uuid5(_NAMESPACE, f"batch\n{members}"))


def derived_key(base: str, body: bytes, *, limit: int = 36) -> str:
    """The idempotency key of one request: ``base`` bound to the exact ``body`` sent.

    ``base`` is the key the core passed (a delivery's or a batch's), optionally with a prefix
    saying what the request does; the result is ``"{base}-{digest of body}"``, at most ``limit``
    characters. A base too long for ``limit`` is replaced by a digest of itself, so two long
    bases still give two keys.

    The same base with the same body always gives the same key, so a request retried after a
    lost answer is answered with what the destination did the first time. The same base with
    another body (mappings fixed after a refusal, a fresh sync token, a batch split otherwise)
    gives another key. A bill version that once failed must be deliverable once the cause is
    fixed, and destinations rarely document whether they replay a remembered *error* for a
    reused key (QuickBooks' emulator does) or refuse a reused key sent with a different request
    (Xero's emulator does).

    :raises ValueError: ``limit`` leaves no room for a useful key (under 21 characters).
    """
    digest = hashlib.sha256(body).hexdigest()[:_BODY_DIGEST]
    room = limit - len(digest) - 1
    if room < _MIN_BASE:
        raise ValueError(f"an idempotency key of {limit} characters is too short to derive from")
    if len(base) > room:
        base = hashlib.sha256(base.encode("utf-8")).hexdigest()[:room]
    return f"{base}-{digest}"
