"""API keys for the HTTP service (``engine.api_keys``): made, listed, revoked, checked.

A key is 256 random bits behind a recognisable prefix; it is returned once, when it is made,
and only its SHA-256 is stored, so a copy of the database opens nothing.
"""

from __future__ import annotations

import builtins
import secrets

from billbridge.domain.access import KEY_PREFIX, ApiKey, Scope, key_hash
from billbridge.domain.clock import Clock
from billbridge.errors import FieldError, ValidationFailed
from billbridge.store import UnitOfWorkFactory, atomically, new_id

__all__ = ["ApiKeys"]

_SHOWN_PREFIX = len(KEY_PREFIX) + 8
"""Characters of a key kept in clear: enough to tell keys apart in a list, useless alone."""


class ApiKeys:
    """``engine.api_keys``: keys for the HTTP API, by scope (``read`` or ``admin``)."""

    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def create(self, name: str, scope: Scope | str = Scope.READ) -> tuple[ApiKey, str]:
        """Make a key; returns it and its text, which is never available again.

        :raises ValidationFailed: a blank name or an unknown scope.
        """
        errors = []
        if not name.strip():
            errors.append(FieldError("/name", "is required"))
        if scope not in {s.value for s in Scope}:
            errors.append(FieldError("/scope", 'must be one of: "read", "admin"'))
        if errors:
            raise ValidationFailed(errors, summary="API key refused")
        text = KEY_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(
            id=new_id(),
            name=name.strip(),
            prefix=text[:_SHOWN_PREFIX],
            scope=Scope(scope),
            created_at=self._clock.now(),
        )
        stored = atomically(self._uow, lambda uow: uow.api_keys.add(key, key_hash(text)))
        return stored, text

    def list(self) -> builtins.list[ApiKey]:
        """Every key (revoked ones too), oldest first."""
        return atomically(self._uow, lambda uow: uow.api_keys.list())

    def get(self, key_id: str) -> ApiKey:
        """One key; raises :class:`~billbridge.errors.NotFound`."""
        return atomically(self._uow, lambda uow: uow.api_keys.get(key_id))

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key: from now on it opens nothing. Raises ``NotFound``."""
        now = self._clock.now()
        return atomically(self._uow, lambda uow: uow.api_keys.revoke(key_id, now))

    def authenticate(self, text: str) -> ApiKey | None:
        """The active key ``text`` is, or ``None`` (unknown, revoked, or not a key at all)."""
        if not text.startswith(KEY_PREFIX) or len(text) > 200:
            return None
        found = atomically(self._uow, lambda uow: uow.api_keys.find(key_hash(text)))
        return found if found is not None and found.active else None
