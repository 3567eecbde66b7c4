"""Engine settings: where the database and key file live, TTLs, OAuth apps, host overrides.

Everything has a default that works on a laptop; environment variables override it, and an
embedding service can pass :class:`Settings` explicitly.

* ``BILLBRIDGE_HOME``: directory of the embedded default (``~/.billbridge``)
* ``BILLBRIDGE_DATABASE_URL``: database URL (default: SQLite file in the home)
* ``BILLBRIDGE_SECRET_KEY``: Fernet key(s), comma-separated, newest first
* ``BILLBRIDGE_DISABLED_PLUGINS``: plugin names not to load
* ``BILLBRIDGE_<KEY>_CLIENT_ID`` / ``_CLIENT_SECRET``: the OAuth app for destination KEY
* ``BILLBRIDGE_<KEY>_REDIRECT_URI``: its registered redirect URI
* ``BILLBRIDGE_<KEY>_API_BASE_URL``: API root override (emulators, proxies); the older name
  ``BILLBRIDGE_<KEY>_API_URL`` is still read when the new one is not set
* ``BILLBRIDGE_<KEY>_AUTHORIZE_URL`` / ``_TOKEN_URL`` / ``_REVOKE_URL``: OAuth endpoint overrides
* ``BILLBRIDGE_<KEY>_PLUGIN_TIMEOUT``: seconds a call into the plugin may take (default 300)

``<KEY>`` is the destination key in upper case (``QUICKBOOKS``, ``QUICKBOOKS_SANDBOX``, ``XERO``);
each variable is the :class:`DestinationSettings` field of the same name in upper case.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import attrs

from billbridge.domain.models import Secret, frozen_map

__all__ = ["DATABASE_URL_ENV", "HOME_ENV", "DestinationSettings", "Settings"]

HOME_ENV = "BILLBRIDGE_HOME"
DATABASE_URL_ENV = "BILLBRIDGE_DATABASE_URL"


def _default_home() -> Path:
    configured = os.environ.get(HOME_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".billbridge"


@attrs.frozen
class DestinationSettings:
    """Per-destination configuration: the OAuth app and any host overrides.

    Unset fields fall back to the environment (``BILLBRIDGE_<KEY>_<FIELD>``, the field's name
    in upper case), then (for the OAuth app) to what ``engine.credentials.configure_app``
    stored (client secret encrypted), then to the plugin's declared real hosts. Point a
    destination at a local fake (an emulator) by overriding its four URLs.
    """

    client_id: str | None = None
    """The OAuth app's client id (``BILLBRIDGE_<KEY>_CLIENT_ID``)."""
    client_secret: Secret | None = None
    """The OAuth app's client secret (``BILLBRIDGE_<KEY>_CLIENT_SECRET``)."""
    redirect_uri: str | None = None
    """The redirect URI registered with the app (``BILLBRIDGE_<KEY>_REDIRECT_URI``)."""
    api_base_url: str | None = None
    """The API root instead of the plugin's ``Destination.api_base_url``
    (``BILLBRIDGE_<KEY>_API_BASE_URL``; ``BILLBRIDGE_<KEY>_API_URL`` is the older name)."""
    authorize_url: str | None = None
    """The consent page instead of ``OAuthSpec.authorize_url``
    (``BILLBRIDGE_<KEY>_AUTHORIZE_URL``)."""
    token_url: str | None = None
    """The token endpoint instead of ``OAuthSpec.token_url`` (``BILLBRIDGE_<KEY>_TOKEN_URL``)."""
    revoke_url: str | None = None
    """The revocation endpoint instead of ``OAuthSpec.revoke_url``
    (``BILLBRIDGE_<KEY>_REVOKE_URL``)."""
    plugin_timeout: float | None = None
    """Seconds any call into the destination's plugin may take before it is given up (a hung
    ``send_bill`` then counts as a transient failure); ``None``: the engine's default
    (``BILLBRIDGE_<KEY>_PLUGIN_TIMEOUT``)."""

    @classmethod
    def from_env(cls, key: str) -> DestinationSettings:
        """The ``BILLBRIDGE_<KEY>_…`` variables for destination ``key``."""
        prefix = f"BILLBRIDGE_{key.upper()}_"

        def env(name: str) -> str | None:
            value = os.environ.get(prefix + name, "").strip()
            return value or None

        secret = env("CLIENT_SECRET")
        return cls(
            client_id=env("CLIENT_ID"),
            client_secret=Secret(secret) if secret else None,
            redirect_uri=env("REDIRECT_URI"),
            # API_BASE_URL matches the field; API_URL is the name documented before it.
            api_base_url=env("API_BASE_URL") or env("API_URL"),
            authorize_url=env("AUTHORIZE_URL"),
            token_url=env("TOKEN_URL"),
            revoke_url=env("REVOKE_URL"),
            plugin_timeout=_seconds(prefix + "PLUGIN_TIMEOUT", env("PLUGIN_TIMEOUT")),
        )

    def over(self, fallback: DestinationSettings) -> DestinationSettings:
        """These settings, with unset fields taken from ``fallback``."""
        return DestinationSettings(
            **{
                field.name: getattr(self, field.name)
                if getattr(self, field.name) is not None
                else getattr(fallback, field.name)
                for field in attrs.fields(DestinationSettings)
            }
        )


@attrs.frozen
class Settings:
    """How an :class:`~billbridge.engine.Engine` is set up."""

    home: Path = attrs.field(factory=_default_home, converter=Path)
    database_url: str | None = None
    #: How long an INCOMPLETE credential waits for its consent callback.
    credential_ttl: timedelta = timedelta(minutes=10)
    #: Refresh an access token that expires within this margin before using it.
    token_refresh_margin: timedelta = timedelta(minutes=5)
    #: Timeout of every HTTP call to a destination or token endpoint, in seconds.
    http_timeout: float = 60.0
    #: SQLite: seconds a statement waits for another writer before "database is locked".
    sqlite_busy_timeout: float = 30.0
    #: Seconds any plugin call may take unless a destination sets its own ``plugin_timeout``.
    plugin_timeout: float = 300.0
    #: Seconds a worker's tenant lease and run claims last without renewal (a worker that
    #: dies is replaced after this long).
    worker_lease_seconds: float = 120.0
    #: Tenants delivered in parallel by one worker.
    worker_threads: int = 4
    #: The longest a worker waits inline for a tenant's rate limit; longer blocks (a spent
    #: daily allowance) park the tenant's runs until the block ends.
    max_inline_wait: float = 90.0
    #: Parsed bill versions kept in memory between submission and delivery (0: none); a bill
    #: leaves as soon as all its runs have ended. A parsed 20-line bill takes about 45 KB, so a
    #: full cache holds about 90 MB; bills delivered after they left it are read back from the
    #: database and parsed again.
    bill_cache_size: int = 2_000
    #: Seconds a page listed from a destination (customers, items... for pickers) is reused.
    external_entities_ttl: float = 60.0
    #: Per-destination OAuth apps and host overrides, by destination key.
    destinations: Mapping[str, DestinationSettings] = attrs.field(
        factory=dict, converter=frozen_map
    )

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

    def plugin_timeout_for(self, key: str) -> float:
        """How long a call into destination ``key``'s plugin may take."""
        configured = self.destination(key).plugin_timeout
        return configured if configured is not None else self.plugin_timeout

    def destination(self, key: str) -> DestinationSettings:
        """Settings for ``key``: explicit ones first, then the environment."""
        explicit = self.destinations.get(key, DestinationSettings())
        return explicit.over(DestinationSettings.from_env(key))


def _seconds(name: str, value: str | None) -> float | None:
    """A positive number of seconds from the environment (``None`` when unset)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return seconds
