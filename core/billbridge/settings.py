"""Engine settings: where the database and key file live, TTLs, overrides for hosts.

Everything has a default that works on a laptop; environment variables override it, and an
embedding service can pass :class:`Settings` explicitly.

========================================  =====================================================
``BILLBRIDGE_HOME``                       directory for the embedded default (``~/.billbridge``)
``BILLBRIDGE_DATABASE_URL``               database URL (default: SQLite file in the home)
``BILLBRIDGE_SECRET_KEY``                 Fernet key(s), comma-separated, newest first
``BILLBRIDGE_DISABLED_PLUGINS``           plugin names not to load
========================================  =====================================================
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import attrs

__all__ = ["DATABASE_URL_ENV", "HOME_ENV", "Settings"]

HOME_ENV = "BILLBRIDGE_HOME"
DATABASE_URL_ENV = "BILLBRIDGE_DATABASE_URL"


def _default_home() -> Path:
    configured = os.environ.get(HOME_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".billbridge"


@attrs.frozen
class Settings:
    """How an :class:`~billbridge.engine.Engine` is set up."""

    home: Path = attrs.field(factory=_default_home, converter=Path)
    database_url: str | None = None
    #: How long an INCOMPLETE credential waits for its consent callback.
    credential_ttl: timedelta = timedelta(minutes=10)

    @property
    def resolved_database_url(self) -> str:
        """The database URL: explicit, else ``BILLBRIDGE_DATABASE_URL``, else SQLite in home."""
        if self.database_url:
            return self.database_url
        configured = os.environ.get(DATABASE_URL_ENV, "").strip()
        if configured:
            return configured
        return f"sqlite:///{self.home / 'billbridge.db'}"

    @property
    def key_file(self) -> Path:
        """Where the embedded default keeps its secret key when none is configured."""
        return self.home / "secret.key"
