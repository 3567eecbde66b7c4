"""Settings of the HTTP service: CORS, body size, public URL, paging, the event stream.

Defaults suit a service behind a reverse proxy on a private network; every field can be set
through ``BILLBRIDGE_API_*`` environment variables or passed explicitly to
:func:`~billbridge.api.app.create_app`.

* ``BILLBRIDGE_API_CORS_ORIGINS``: origins allowed to call the API from a browser,
  comma-separated (default: none, CORS off)
* ``BILLBRIDGE_API_MAX_BODY_BYTES``: the largest request body accepted (default 5 MiB)
* ``BILLBRIDGE_API_PUBLIC_URL``: the URL the service is reached at from outside (OAuth
  callbacks are built on it; default: the URL each request came in on)
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import attrs

__all__ = ["ApiSettings"]


def _tuple(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


def _origins(value: str) -> tuple[str, ...]:
    return tuple(origin.strip().rstrip("/") for origin in value.split(",") if origin.strip())


@attrs.frozen
class ApiSettings:
    """How the HTTP service behaves (the engine has its own
    :class:`~billbridge.settings.Settings`)."""

    #: Browser origins allowed to call the API (CORS); empty: CORS is off.
    cors_origins: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    #: The largest request body accepted, in bytes (a 500-bill batch of 20-line bills is ~4 MB).
    max_body_bytes: int = 5 * 1024 * 1024
    #: Where the service is reached from outside, e.g. ``https://billing.example.com``; OAuth
    #: callback URLs are built on it. ``None``: the URL of the request that started the consent.
    public_url: str | None = None
    #: Items per page when a listing is not given ``limit``, and the most it may ask for.
    page_size: int = 50
    max_page_size: int = 500
    #: Seconds between two looks at the activity feed by an event stream.
    stream_interval: float = 1.0
    #: Seconds an event stream stays open before it asks the client to reconnect (proxies cut
    #: idle and very long responses; EventSource reconnects with ``Last-Event-ID``).
    stream_lifetime: float = 300.0

    @classmethod
    def from_env(cls) -> ApiSettings:
        """Settings from the ``BILLBRIDGE_API_*`` environment variables."""
        max_body = os.environ.get("BILLBRIDGE_API_MAX_BODY_BYTES", "").strip()
        public = os.environ.get("BILLBRIDGE_API_PUBLIC_URL", "").strip()
        # Unset variables keep the defaults (a slotted class's attribute is not its default).
        extra = {"max_body_bytes": int(max_body)} if max_body else {}
        return cls(
            cors_origins=_origins(os.environ.get("BILLBRIDGE_API_CORS_ORIGINS", "")),
            public_url=public.rstrip("/") or None,
            **extra,
        )
