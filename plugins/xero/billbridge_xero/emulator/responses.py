"""How the emulated Xero answers: JSON with exact decimals, Xero's problem bodies for refusals
and injected faults, and list records with their dates in Xero's ``/Date()/`` form."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from billbridge.domain.models import dumps
from billbridge_xero.dates import format_ms_date

__all__ = [
    "http_error",
    "json_response",
    "not_found",
    "problem_body",
    "render_record",
    "xero_fault_response",
]

_XERO_500_DETAIL = (
    "An error occurred in Xero. Check the API Status page http://status.developer.xero.com for "
    "current service status. Contact the API support team at api@xero.com for more assistance."
)


def problem_body(status: int, title: str, detail: str) -> dict[str, Any]:
    """Xero's problem body for refusals outside validation (401, 403, 404, 429, 5xx)."""
    return {
        "Type": None,
        "Title": title,
        "Status": status,
        "Detail": detail,
        "Instance": str(uuid.uuid4()),
        "Extensions": {},
    }


def xero_fault_response(status: int) -> Response:
    """An injected failure as Xero words it (for :attr:`FaultPlan.error_response`)."""
    if status == 503:
        body = problem_body(503, "Service Unavailable", "The Xero API is temporarily unavailable.")
    elif status == 504:
        body = problem_body(504, "Gateway Timeout", "The request to Xero timed out.")
    else:
        body = problem_body(status, "An error occurred", _XERO_500_DETAIL)
    return JSONResponse(body, status_code=status)


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON response with exact ``Decimal`` numbers (Xero's amounts are not floats)."""
    return Response(
        dumps(body), status_code=status, media_type="application/json", headers=dict(headers or {})
    )


def not_found() -> Response:
    """Xero's 404."""
    return json_response(
        problem_body(404, "Not Found", "The resource you're looking for cannot be found"), 404
    )


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's HTTP errors (unknown route, wrong method) as Xero words them."""
    status = getattr(exc, "status_code", 500)
    if status == 404:
        return not_found()
    return json_response(
        problem_body(status, "Error", str(getattr(exc, "detail", "error"))), status
    )


def render_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """A list record with its dates as ``/Date()/``."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, datetime | date):
            out[key] = format_ms_date(value)
        elif isinstance(value, Mapping):
            out[key] = render_record(value)
        elif isinstance(value, list):
            out[key] = [render_record(v) if isinstance(v, Mapping) else v for v in value]
        else:
            out[key] = value
    return out
