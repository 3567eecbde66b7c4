"""API keys: who may call the HTTP service, and what they may do.

A key is shown once when it is made; only its SHA-256 is stored. Two scopes: ``read`` may read
everything (``GET``), ``admin`` may also change things.
"""

from __future__ import annotations

import enum
import hashlib
from datetime import datetime

import attrs

__all__ = ["KEY_PREFIX", "ApiKey", "Scope", "key_hash"]

KEY_PREFIX = "bbk_"
"""Every key starts with this, so a leaked key is easy to recognise (secret scanners)."""


class Scope(enum.StrEnum):
    """What a key may do."""

    READ = "read"
    ADMIN = "admin"

    def allows(self, needed: Scope) -> bool:
        """True when a key of this scope may call a route that needs ``needed``."""
        return self is Scope.ADMIN or needed is Scope.READ


@attrs.frozen
class ApiKey:
    """A key for the HTTP API, as stored (never the key itself)."""

    id: str
    name: str
    prefix: str
    scope: Scope
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        """True until the key is revoked."""
        return self.revoked_at is None


def key_hash(key: str) -> str:
    """The SHA-256 hex of a key: what is stored and looked up."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
