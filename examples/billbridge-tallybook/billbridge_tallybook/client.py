"""Tallybook's API over HTTP, and its answers as billbridge results or exceptions.

=========================  =========================================  ========================
Tallybook answers          billbridge exception                       run status
=========================  =========================================  ========================
200 ``{"invoice": ...}``   (a ``SendResult``)                         COMPLETE
401                        ``TokenExpired``                           refreshed, retried once
403                        ``AuthenticationFailed``                   AUTH_FAILED
409 (a paid invoice)       ``InvoiceAlreadyPaid``                     INVOICE_ALREADY_PAID
429 (``Retry-After``)      ``RateLimited``                            RATE_LIMIT_RETRY
5xx, no answer             ``TransientError``                         AWAITING_RETRY
other 4xx                  ``DestinationValidationError``             ERROR
=========================  =========================================  ========================

The ``detail`` of every exception is Tallybook's own words (``{"errors": [{"message": ...}]}``,
e.g. ``Invoice number already exists``), which billbridge shows people as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from billbridge.domain.models import Secret, dumps
from billbridge.errors import (
    AuthenticationFailed,
    DestinationValidationError,
    InvoiceAlreadyPaid,
    RateLimited,
    TokenExpired,
    TransientError,
)

__all__ = ["PAGE_SIZE", "TIMEOUT", "TallybookClient", "raise_for"]

#: Records per page when listing clients and items.
PAGE_SIZE = 25
#: Seconds to wait for an answer.
TIMEOUT = 30.0


class TallybookClient:
    """One Tallybook account, reached with an access token over the core's HTTP client.

    :param http: the core's client (never closed here).
    :param base_url: the API root, e.g. ``https://api.tallybook.example/v1``.
    :param access_token: the connection's token.
    :param account_id: the Tallybook account (the credential's tenant).
    """

    def __init__(
        self, http: httpx.Client, base_url: str, access_token: Secret, account_id: str | None
    ) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._token = access_token
        self._account = account_id

    def me(self) -> dict[str, Any]:
        """``GET /me``: the user and the accounts the token reaches."""
        return self._request("GET", "/me")

    def list(self, table: str, search: str | None, page: int) -> dict[str, Any]:
        """``GET /accounts/{account}/clients`` or ``/items``: one page, by name."""
        params: dict[str, Any] = {"page": page, "per_page": PAGE_SIZE}
        if search:
            params["search"] = search
        return self._request("GET", f"{self._account_path()}/{table.lower()}s", params=params)

    def create_invoice(self, body: Mapping[str, Any], idempotency_key: str) -> dict[str, Any]:
        """``POST /accounts/{account}/invoices``; the answer's ``invoice``."""
        answer = self._request(
            "POST", f"{self._account_path()}/invoices", body=body, key=idempotency_key
        )
        return _invoice(answer)

    def update_invoice(
        self, invoice_id: str, body: Mapping[str, Any], idempotency_key: str
    ) -> dict[str, Any]:
        """``PUT /accounts/{account}/invoices/{id}``; the answer's ``invoice``."""
        answer = self._request(
            "PUT", f"{self._account_path()}/invoices/{invoice_id}", body=body, key=idempotency_key
        )
        return _invoice(answer)

    def _account_path(self) -> str:
        if not self._account:
            raise AuthenticationFailed("the connection names no Tallybook account")
        return f"/accounts/{self._account}"

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        key: str | None = None,
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self._token.reveal()}", "Accept": "application/json"}
        content = None
        if body is not None:
            # billbridge's dumps writes Decimal amounts exactly (no float in between).
            content = dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if key is not None:
            headers["Idempotency-Key"] = key
        try:
            response = self._http.request(
                method,
                self._base + path,
                params=params,
                content=content,
                headers=headers,
                timeout=TIMEOUT,
            )
        except httpx.TransportError as exc:
            # Sent but unanswered: Tallybook may have made the invoice, so only a retry with
            # the same Idempotency-Key is safe; billbridge retries TransientError.
            raise TransientError(f"Tallybook could not be reached: {type(exc).__name__}") from None
        raise_for(response)
        try:
            answer: dict[str, Any] = response.json()
        except ValueError:
            raise TransientError(
                f"Tallybook answered HTTP {response.status_code} without JSON"
            ) from None
        return answer


def raise_for(response: httpx.Response) -> None:
    """Map a Tallybook answer that is not a success to billbridge's exception for it."""
    status = response.status_code
    if status < 400:
        return
    detail = _words(response)
    if status == 401:
        raise TokenExpired("Tallybook refused the access token (HTTP 401)", detail=detail)
    if status == 403:
        raise AuthenticationFailed(
            "Tallybook refused access to the account (HTTP 403): reconnect", detail=detail
        )
    if status == 409:
        raise InvoiceAlreadyPaid(
            "the Tallybook invoice is paid and cannot change (HTTP 409)", detail=detail
        )
    if status == 429:
        retry_after = float(response.headers.get("Retry-After", "60"))
        raise RateLimited(
            "Tallybook asked to slow down (HTTP 429)", retry_after=retry_after, detail=detail
        )
    if status >= 500:
        raise TransientError(f"Tallybook failed (HTTP {status})", detail=detail)
    raise DestinationValidationError(
        f"Tallybook refused the request (HTTP {status})", detail=detail
    )


def _words(response: httpx.Response) -> str | None:
    """Tallybook's own words: ``{"errors": [{"message": ...}]}``, else the text."""
    try:
        answer = response.json()
    except ValueError:
        return response.text[:300] or None
    errors = answer.get("errors") if isinstance(answer, dict) else None
    if isinstance(errors, list) and errors:
        return "; ".join(str(e.get("message", e)) for e in errors if isinstance(e, dict))[:300]
    return response.text[:300] or None


def _invoice(answer: Mapping[str, Any]) -> dict[str, Any]:
    invoice = answer.get("invoice")
    if not isinstance(invoice, dict) or not str(invoice.get("id") or "").strip():
        raise DestinationValidationError(
            "Tallybook answered without an invoice id", detail=dumps(answer)[:300]
        )
    return invoice
