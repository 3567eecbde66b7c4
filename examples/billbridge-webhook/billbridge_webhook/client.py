"""Sending a webhook and turning the receiver's answer into a result or a billbridge exception.

What a receiver answers, and what billbridge makes of it:

======================  =====================================  ==============================
receiver answers        exception                              run status
======================  =====================================  ==============================
2xx ``{"id": ...}``     (a :class:`~billbridge.plugin.contract.SendResult`)  COMPLETE
429 (``Retry-After``)   :class:`~billbridge.errors.RateLimited`         RATE_LIMIT_RETRY
408, 5xx, no answer     :class:`~billbridge.errors.TransientError`      AWAITING_RETRY (backoff)
409                     :class:`~billbridge.errors.InvoiceAlreadyPaid`  INVOICE_ALREADY_PAID
423                     :class:`~billbridge.errors.AccountingPeriodClosed`  ACCOUNTING_PERIOD_CLOSED
other 3xx/4xx, no id    :class:`~billbridge.errors.DestinationValidationError`  ERROR (+ event)
======================  =====================================  ==============================

No retry happens here: the core retries transient failures with backoff and sends the same
``Idempotency-Key`` again, so a receiver that stores its first answer per key never makes a
second invoice for one delivery.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import attrs
import httpx

from billbridge.domain.models import dumps, loads
from billbridge.errors import (
    AccountingPeriodClosed,
    DestinationValidationError,
    InvoiceAlreadyPaid,
    RateLimited,
    TransientError,
)
from billbridge.plugin.contract import SendResult
from billbridge_webhook.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

__all__ = [
    "DEFAULT_TIMEOUT",
    "EVENT_HEADER",
    "IDEMPOTENCY_HEADER",
    "RESERVED_HEADERS",
    "WebhookRequest",
    "build_request",
    "send",
]

IDEMPOTENCY_HEADER = "Idempotency-Key"
EVENT_HEADER = "X-Billbridge-Event"
DEFAULT_TIMEOUT = 30.0
#: Seconds to wait after a 429 that does not say how long.
DEFAULT_RETRY_AFTER = 60.0

#: Headers the plugin sets itself; configured extra headers may not replace them.
RESERVED_HEADERS = frozenset(
    name.lower()
    for name in (
        SIGNATURE_HEADER,
        TIMESTAMP_HEADER,
        IDEMPOTENCY_HEADER,
        EVENT_HEADER,
        "Content-Type",
        "Content-Length",
        "Host",
        "Transfer-Encoding",
        "Connection",
    )
)


@attrs.frozen
class WebhookRequest:
    """One POST, ready to send: the URL, the headers (signature included) and the body bytes."""

    url: str
    headers: Mapping[str, str]
    body: bytes


def build_request(
    config: Mapping[str, Any],
    body: Mapping[str, Any],
    idempotency_key: str,
    *,
    clock: Callable[[], float] = time.time,
) -> WebhookRequest:
    """Serialise ``body`` once and sign exactly those bytes (re-serialising could differ)."""
    raw = dumps(body).encode("utf-8")
    timestamp = int(clock())
    # Configured headers first, never in place of the ones that make the delivery verifiable
    # (validate_config refuses them; this keeps an unvalidated config from forging them).
    headers = {
        str(k): str(v)
        for k, v in (config.get("headers") or {}).items()
        if str(k).lower() not in RESERVED_HEADERS
    }
    headers.update(
        {
            "Content-Type": "application/json",
            IDEMPOTENCY_HEADER: idempotency_key,
            EVENT_HEADER: str(body.get("event", "")),
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(str(config["secret"]), timestamp, raw),
        }
    )
    return WebhookRequest(url=str(config["url"]), headers=headers, body=raw)


def send(
    http: httpx.Client, request: WebhookRequest, *, timeout: float, created: bool
) -> SendResult:
    """POST ``request`` and read the receiver's ``{"id", "number", "url"}`` answer.

    :param created: whether this delivery creates the invoice (for the result).
    :raises billbridge.errors.DestinationError: the subclass the answer calls for (above).
    """
    try:
        response = http.post(
            request.url, content=request.body, headers=dict(request.headers), timeout=timeout
        )
    except httpx.TimeoutException:
        raise TransientError(f"the receiver did not answer within {timeout:g} s") from None
    except httpx.TransportError as exc:
        # Connection refused, reset, or an answer cut off: the receiver may have stored the
        # invoice, so only a retry with the same Idempotency-Key is safe.
        raise TransientError(f"the receiver could not be reached: {type(exc).__name__}") from None
    _raise_for_status(response)
    return _result(response, created=created)


def _raise_for_status(response: httpx.Response) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    detail = _error_text(response)
    if status == 429:
        raise RateLimited(
            "the receiver asked to slow down (HTTP 429)",
            retry_after=_retry_after(response.headers.get("Retry-After")),
            detail=detail,
        )
    if status == 408 or status >= 500:
        raise TransientError(f"the receiver failed (HTTP {status})", detail=detail)
    if status == 409:
        raise InvoiceAlreadyPaid(
            "the receiver says the invoice can no longer be changed (HTTP 409)", detail=detail
        )
    if status == 423:
        raise AccountingPeriodClosed(
            "the receiver says the invoice's period is closed (HTTP 423)", detail=detail
        )
    if status in (401, 403):
        raise DestinationValidationError(
            f"the receiver refused the delivery (HTTP {status}): check that it verifies with "
            "the same signing secret as the integration",
            detail=detail,
        )
    if 300 <= status < 400:
        where = response.headers.get("Location", "elsewhere")
        raise DestinationValidationError(
            f"the receiver redirects (HTTP {status}) to {where}: configure that URL instead"
        )
    raise DestinationValidationError(
        f"the receiver refused the invoice (HTTP {status})", detail=detail
    )


def _result(response: httpx.Response, *, created: bool) -> SendResult:
    try:
        answer = loads(response.content)
    except ValueError:
        answer = None
    if not isinstance(answer, Mapping) or not str(answer.get("id") or "").strip():
        raise DestinationValidationError(
            f"the receiver answered HTTP {response.status_code} without an invoice id: it must "
            'answer {"id": "..."} so that later versions can update the invoice',
            detail=response.text[:300] or None,
        )
    url = answer.get("url")
    return SendResult(
        external_id=str(answer["id"]).strip(),
        number=str(answer["number"]) if answer.get("number") is not None else None,
        url=url if isinstance(url, str) and url.startswith(("https://", "http://")) else None,
        created=created,
    )


def _error_text(response: httpx.Response) -> str | None:
    """The receiver's own words: ``{"error": ...}`` / ``{"message": ...}``, or the text."""
    try:
        answer = loads(response.content)
    except ValueError:
        return response.text[:300] or None
    if isinstance(answer, Mapping):
        for key in ("error", "message", "detail"):
            if answer.get(key):
                return str(answer[key])[:300]
    return response.text[:300] or None


def _retry_after(value: str | None) -> float:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date."""
    if not value:
        return DEFAULT_RETRY_AFTER
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)
