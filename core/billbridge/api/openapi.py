"""The OpenAPI 3.1 document, generated from the declared endpoints (``GET /openapi.json``).

Every route is in it (the routes are built from the same declarations), with its scope
(``x-billbridge-scope``), parameters, request body schema and example, responses and the error
answers it may give. Tests validate the document and every example in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from billbridge import __version__
from billbridge.api.endpoints import Documented, Endpoint, Param
from billbridge.api.schemas import COMPONENTS, REQUESTS, ref

__all__ = ["openapi_document"]

_ERRORS = {
    400: "Bad request: malformed JSON, or refused by the engine",
    401: "No API key, or a key that is unknown or revoked",
    403: "The API key's scope does not allow this request",
    404: "Not found",
    409: "Conflict: a stale version, a duplicate, or a state that does not allow it",
    413: "The request body is larger than the service accepts",
    415: "The request body is not JSON",
    422: "Refused input: every problem as {path, message}",
    500: "Unexpected error (reported by a reference to the server log)",
    502: "The destination refused or failed",
    503: "The destination asked to slow down (Retry-After)",
}

_ERROR_EXAMPLES: dict[int, dict[str, Any]] = {
    400: {"code": "malformed_json", "message": "the request body is not valid JSON at line 1 "
          "column 14: Expecting property name enclosed in double quotes", "errors": []},
    401: {"code": "unauthorized", "message": "the API key is not valid (unknown or revoked)",
          "errors": []},
    403: {"code": "forbidden", "message": "the API key 'console' may only read; this request "
          "needs an admin key", "errors": []},
    404: {"code": "not_found", "message": "integration 4f0c… not found", "errors": []},
    409: {"code": "stale_version", "message": "integration 4f0c… was changed by someone else "
          "(version 3, you had 2): reload and retry", "errors": []},
    413: {"code": "payload_too_large", "message": "the request body is larger than 5242880 "
          "bytes, the most this service accepts (BILLBRIDGE_API_MAX_BODY_BYTES)", "errors": []},
    415: {"code": "unsupported_media_type", "message": "the request body must be JSON "
          "(Content-Type: application/json), not 'text/plain'", "errors": []},
    422: {"code": "validation_failed", "message": "integration configuration refused",
          "errors": [{"path": "/destinationConfig/invoiceStatus", "message": "must be one of: "
                      'Draft ("DRAFT"), Awaiting approval ("SUBMITTED"), Awaiting payment '
                      '(authorised) ("AUTHORISED")'}]},
    500: {"code": "internal_error", "message": "internal error; the server log has it under "
          "reference 3f9a0c1d2e4b", "errors": []},
    502: {"code": "destination_error", "message": "quickbooks answered HTTP 500", "errors": []},
    503: {"code": "destination_rate_limited", "message": "throttled", "errors": []},
}  # fmt: skip

_PATH_WORDS = {
    "key": "A destination key (quickbooks, quickbooks_sandbox, xero...).",
    "name": "A core schema name (bill, account, global-config...).",
    "table": "A destination table (Customer, Item, Contact, Account, TaxCode...).",
}

_DESCRIPTION = """\
billbridge as a service: destinations and their configuration panels, credentials (OAuth),
integrations, external mappings, bills, runs, skips, events, webhooks.

Every route but the OAuth callback and the health checks needs an API key
(`Authorization: Bearer <key>`); `read` keys may call what changes nothing, `admin` keys
everything. Errors always have the shape `{code, message, errors: [{path, message}]}`. Lists are
paged: `?limit=&cursor=` in, `{items, total, nextCursor}` out. Money and quantities are JSON
numbers, written exactly.
"""


def openapi_document(endpoints: Sequence[Endpoint]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``endpoints``."""
    request_names = {id(schema): name for name, schema in REQUESTS.items()}
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        operation = _operation(endpoint, request_names)
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "billbridge",
            "version": __version__,
            "description": _DESCRIPTION,
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "tags": [{"name": tag} for tag in dict.fromkeys(e.tag for e in endpoints)],
        "paths": paths,
        "components": {
            "schemas": {**COMPONENTS, **REQUESTS},
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key made with `billbridge api-keys create`.",
                }
            },
        },
        "security": [{"apiKey": []}],
    }


def _operation(endpoint: Endpoint, request_names: dict[int, str]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": endpoint.operation_id,
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
        "responses": _responses(endpoint),
    }
    if endpoint.description:
        operation["description"] = endpoint.description
    parameters = [_path_param(name) for name in endpoint.path_params]
    parameters += [_query_param(p) for p in endpoint.params if p.location == "query"]
    if parameters:
        operation["parameters"] = parameters
    if endpoint.scope is None:
        operation["security"] = []
    else:
        operation["x-billbridge-scope"] = endpoint.scope.value
    if endpoint.body is not None:
        name = request_names.get(id(endpoint.body))
        media: dict[str, Any] = {"schema": ref(name) if name else dict(endpoint.body)}
        if endpoint.body_example is not None:
            media["example"] = endpoint.body_example
        operation["requestBody"] = {
            "required": not (
                endpoint.body.get("type") == "object" and not endpoint.body.get("required")
            ),
            "content": {"application/json": media},
        }
    return operation


def _path_param(name: str) -> dict[str, Any]:
    words = _PATH_WORDS.get(name) or f"The {name.removesuffix('Id')}'s id."
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"},
            "description": words}  # fmt: skip


def _query_param(param: Param) -> dict[str, Any]:
    schema = {"type": "array", "items": dict(param.schema)} if param.many else dict(param.schema)
    described: dict[str, Any] = {
        "name": param.name,
        "in": "query",
        "required": param.required,
        "description": param.description,
        "schema": schema,
    }
    if param.many:
        described.update(style="form", explode=True)
    return described


def _responses(endpoint: Endpoint) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for documented in endpoint.responses:
        responses[str(documented.status)] = _response(endpoint, documented)
    for status in _error_statuses(endpoint):
        responses.setdefault(
            str(status),
            {
                "description": _ERRORS[status],
                "content": {
                    "application/json": {"schema": ref("Error"), "example": _ERROR_EXAMPLES[status]}
                },
            },
        )
    return responses


def _response(endpoint: Endpoint, documented: Documented) -> dict[str, Any]:
    described: dict[str, Any] = {"description": documented.description}
    if documented.schema is None:
        return described
    schema = (
        ref(documented.schema) if isinstance(documented.schema, str) else dict(documented.schema)
    )
    media_type = "application/json"
    if endpoint.path == "/api/stream":
        media_type = "text/event-stream"
    elif endpoint.path == "/metrics":
        media_type = "text/plain"
    content: dict[str, Any] = {"schema": schema}
    if documented.example is not None:
        content["example"] = documented.example
    described["content"] = {media_type: content}
    return described


def _error_statuses(endpoint: Endpoint) -> list[int]:
    statuses = set(endpoint.errors)
    if endpoint.scope is not None:
        statuses |= {401, 403}
    if endpoint.body is not None:
        statuses |= {400, 413, 415, 422}
    if any(p.location == "query" for p in endpoint.params):
        statuses.add(422)
    if endpoint.path_params:
        statuses.add(404)
    statuses.add(500)
    return sorted(statuses)
