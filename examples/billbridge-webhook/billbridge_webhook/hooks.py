"""billbridge hooks for the signed webhook destination (key ``webhook``).

The hooks are thin: :mod:`~billbridge_webhook.payload` turns a bill into the body (pure),
:mod:`~billbridge_webhook.client` signs, sends and maps the answer to billbridge's exceptions.
Each hook names only the arguments it uses; pluggy passes those, by name.

The destination needs no OAuth (``oauth=None``: the signing secret in the panel authenticates
the deliveries) and lists no external tables: the receiver identifies customers by m3ter's
account id and code, which the body carries, so accounts are not mapped.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from billbridge import hookimpl
from billbridge.domain.models import Account, Bill, LedgerEntry
from billbridge.errors import FieldError
from billbridge.plugin.contract import (
    Connection,
    Destination,
    Limits,
    SendResult,
    load_panel_schema,
)
from billbridge_webhook.client import (
    DEFAULT_TIMEOUT,
    IDEMPOTENCY_HEADER,
    RESERVED_HEADERS,
    build_request,
    send,
)
from billbridge_webhook.payload import envelope

__all__ = [
    "KEY",
    "LIMITS",
    "preview_bill",
    "register_destinations",
    "send_bill",
    "validate_config",
]

KEY = "webhook"

#: What one receiver is assumed to take: 4 requests at once, 300 a minute. A receiver that can
#: take more gains nothing from a higher figure here: deliveries are rarely that many at once.
LIMITS = Limits(requests_per_minute=300, concurrency=4)

#: RFC 9110 token characters: what a header name may be made of.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


@hookimpl
def register_destinations() -> Sequence[Destination]:
    """One destination: signed JSON webhooks to the configured URL."""
    return [
        Destination(
            key=KEY,
            title="Signed webhook",
            description="Invoices POSTed as signed JSON to a URL you control.",
            schema=load_panel_schema("billbridge_webhook"),
            external_tables=(),
            limits=LIMITS,
            oauth=None,
            system_name="the webhook receiver",
        )
    ]


@hookimpl
def validate_config(config: Mapping[str, Any]) -> Sequence[FieldError]:
    """What the panel schema cannot say: a safe URL, and headers that can be sent as such.

    Messages never quote the signing secret.
    """
    errors = _url_errors(str(config.get("url", "")))
    secret = config.get("secret")
    if isinstance(secret, str) and secret != secret.strip():
        errors.append(FieldError("/secret", "starts or ends with a space: was it copied with one?"))
    for name, value in (config.get("headers") or {}).items():
        path = "/headers/" + str(name).replace("~", "~0").replace("/", "~1")
        if not _HEADER_NAME.fullmatch(str(name)):
            errors.append(FieldError(path, "is not a valid header name"))
        elif str(name).lower() in RESERVED_HEADERS:
            errors.append(FieldError(path, "is set by billbridge on every request"))
        if any(ch in str(value) for ch in "\r\n\0"):
            errors.append(FieldError(path, "a header value cannot contain line breaks"))
    return errors


def _url_errors(url: str) -> list[FieldError]:
    parts = urlsplit(url)
    if parts.username or parts.password:
        # The URL is not a secret field: credentials in it would be shown to every reader.
        return [FieldError("/url", "must not contain a user name or password")]
    if parts.scheme == "https" and parts.hostname:
        return []
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return []
    return [
        FieldError(
            "/url",
            "must be an https URL (invoices are private); http only for localhost while testing",
        )
    ]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@hookimpl
def send_bill(
    connection: Connection,
    bill: Bill,
    account: Account,
    config: Mapping[str, Any],
    previous: LedgerEntry | None,
    idempotency_key: str,
) -> SendResult:
    """POST the invoice: a create, or (with ``previous``) an update of the receiver's invoice.

    ``idempotency_key`` goes out as the ``Idempotency-Key`` header: the core sends the same key
    again when it retries a delivery whose answer never arrived, and the receiver answers it
    with the invoice it already made.
    """
    previous_id = previous.external_id if previous is not None else None
    request = build_request(config, envelope(bill, account, config, previous_id), idempotency_key)
    return send(
        connection.http,
        request,
        timeout=float(config.get("timeoutSeconds", DEFAULT_TIMEOUT)),
        created=previous is None,
    )


@hookimpl
def preview_bill(
    bill: Bill,
    account: Account,
    config: Mapping[str, Any],
    previous: LedgerEntry | None,
) -> Mapping[str, Any]:
    """The request ``send_bill`` would send, without the per-request signature and timestamp."""
    previous_id = previous.external_id if previous is not None else None
    headers = {str(k): str(v) for k, v in (config.get("headers") or {}).items()}
    headers.update({"Content-Type": "application/json", IDEMPOTENCY_HEADER: "(per delivery)"})
    return {
        "method": "POST",
        "path": str(config.get("url", "")),
        "headers": headers,
        "body": envelope(bill, account, config, previous_id),
    }
