"""One error shape for every response that is not a success.

.. code-block:: json

    {"code": "validation_failed", "message": "integration configuration refused",
     "errors": [{"path": "/destinationConfig/invoiceStatus", "message": "must be one of: ..."}]}

``code`` is stable (clients switch on it), ``message`` is one sentence for people, ``errors``
lists the fields refused (``path`` as a JSON Pointer into the request body, or ``?name`` for a
query parameter) and is empty otherwise. A few codes carry more (``choices`` for
``tenant_choice_required``). Messages never hold a secret: billbridge's errors are written that
way, and unexpected errors are reported by a reference, not their text.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from billbridge.domain.redaction import redact
from billbridge.errors import (
    AuthenticationFailed,
    BillbridgeError,
    Conflict,
    CredentialError,
    DestinationError,
    FieldError,
    MissingMapping,
    MissingOAuthApp,
    NotFound,
    RateLimited,
    StaleVersion,
    TenantChoiceRequired,
    UnknownDestination,
    ValidationFailed,
)
from billbridge.logs import get_logger

__all__ = ["ApiError", "error_body", "from_exception"]

log = get_logger(__name__)


class ApiError(Exception):
    """An HTTP error answer: status, stable code, message, field errors, extra fields."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        errors: Sequence[FieldError] = (),
        *,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = tuple(errors)
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def body(self) -> dict[str, Any]:
        """The JSON body of the answer."""
        return error_body(self.code, self.message, self.errors, **self.extra)


def error_body(
    code: str, message: str, errors: Sequence[FieldError] = (), **extra: Any
) -> dict[str, Any]:
    """The error shape: ``{code, message, errors: [{path, message}], ...extra}``.

    Messages are redacted: an error may quote a destination that echoed a secret back.
    """
    return {
        "code": code,
        "message": redact(message),
        "errors": [{"path": e.path, "message": redact(e.message)} for e in errors],
        **extra,
    }


def from_exception(exc: Exception) -> ApiError:
    """The answer for an exception a handler let through."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, BillbridgeError):
        return _billbridge(exc)
    reference = uuid.uuid4().hex[:12]
    # The type only: an unexpected exception's text may quote data it was handed.
    log.error("unexpected %s (reference %s)", type(exc).__name__, reference, exc_info=exc)
    return ApiError(
        500, "internal_error", f"internal error; the server log has it under reference {reference}"
    )


def _billbridge(exc: BillbridgeError) -> ApiError:
    message = str(exc)
    if isinstance(exc, ValidationFailed):
        summary = message.split(":", 1)[0]
        return ApiError(422, "validation_failed", summary, exc.errors)
    if isinstance(exc, StaleVersion):
        return ApiError(409, "stale_version", message)
    if isinstance(exc, Conflict):
        return ApiError(409, "conflict", message)
    if isinstance(exc, NotFound | UnknownDestination):
        return ApiError(404, "not_found", message)
    if isinstance(exc, TenantChoiceRequired):
        choices = [{"tenantId": c.tenant_id, "name": c.name} for c in exc.choices]
        return ApiError(
            409,
            "tenant_choice_required",
            message,
            extra={"credentialId": exc.credential_id, "choices": choices},
        )
    if isinstance(exc, MissingOAuthApp):
        return ApiError(409, "oauth_app_missing", message)
    if isinstance(exc, CredentialError):
        return ApiError(400, "credential_error", message)
    if isinstance(exc, MissingMapping):
        return ApiError(409, "missing_mapping", message)
    if isinstance(exc, RateLimited):
        retry = str(max(1, round(exc.retry_after)))
        return ApiError(503, "destination_rate_limited", message, headers={"Retry-After": retry})
    if isinstance(exc, AuthenticationFailed):
        # The credential's state (incomplete, or refused: reconnect needed), not a failure of
        # the destination right now.
        return ApiError(409, "authentication_failed", message)
    if isinstance(exc, DestinationError):
        detail = f" ({exc.detail})" if exc.detail else ""
        return ApiError(502, "destination_error", message + detail)
    return ApiError(400, "refused", message)
