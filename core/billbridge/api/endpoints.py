"""Endpoints: each route declared once, with everything the server and the OpenAPI document
need (method, path, scope, parameters, body schema, responses, examples).

A handler is a plain function ``(Call) -> Reply`` that calls the engine; the wrapper around it
checks the API key and its scope, reads and validates the query and the body, runs the handler
in the thread pool (engine calls are blocking) and writes the answer, or the one error shape.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import attrs
import simplejson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from billbridge.api.errors import ApiError, from_exception
from billbridge.api.settings import ApiSettings
from billbridge.domain.access import ApiKey, Scope
from billbridge.domain.models import dumps, loads
from billbridge.domain.schemas import validate
from billbridge.errors import FieldError

if TYPE_CHECKING:
    from billbridge.api.metrics import Metrics
    from billbridge.engine import Engine

__all__ = [
    "ADMIN",
    "PUBLIC",
    "READ",
    "Call",
    "Documented",
    "Endpoint",
    "Endpoints",
    "Param",
    "Reply",
    "error_response",
    "json_response",
    "ok",
    "starlette_route",
]

READ: Scope | None = Scope.READ
ADMIN: Scope | None = Scope.ADMIN
PUBLIC: Scope | None = None
"""Routes anyone may call: the OAuth callback and health checks."""

Location = Literal["query", "path"]


@attrs.frozen
class Param:
    """A query or path parameter: its JSON Schema (one value), description, and whether it
    repeats (``?status=ERROR&status=AUTH_FAILED``)."""

    name: str
    schema: Mapping[str, Any]
    description: str
    required: bool = False
    many: bool = False
    location: Location = "query"


@attrs.frozen
class Reply:
    """A handler's answer: a JSON body (``None``: no body) and its status."""

    body: Any = None
    status: int = 200
    headers: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class Call:
    """What a handler gets: the engine, the caller's key, the parsed request."""

    request: Request
    engine: Engine
    settings: ApiSettings
    key: ApiKey | None
    path: Mapping[str, str]
    query: Mapping[str, Any]
    body: Any

    @property
    def caller(self) -> str:
        """Who is calling, for records such as "actioned by" (the key's name)."""
        return self.key.name if self.key is not None else "anonymous"


Handler = Callable[[Call], "Reply | Response | Awaitable[Response]"]
"""A handler: sync (run in the thread pool) returning a :class:`Reply`, or, for ``raw``
endpoints (streams, HTML), async returning its own response."""


@attrs.frozen
class Documented:
    """A documented response: status, schema (a component name or an inline schema)."""

    status: int
    description: str
    schema: str | Mapping[str, Any] | None = None
    example: Any = None


@attrs.frozen
class Endpoint:
    """One route, fully described."""

    method: str
    path: str
    handler: Handler
    scope: Scope | None
    summary: str
    tag: str
    description: str = ""
    params: tuple[Param, ...] = ()
    body: Mapping[str, Any] | None = None
    body_example: Any = None
    responses: tuple[Documented, ...] = ()
    errors: tuple[int, ...] = ()
    #: The handler streams or writes its own response (SSE, HTML): no JSON wrapper.
    raw: bool = False
    #: Query parameters not declared are accepted (the OAuth callback: providers add their own).
    open_query: bool = False

    @property
    def operation_id(self) -> str:
        """The OpenAPI operationId: the handler's name."""
        return self.handler.__name__.lstrip("_")

    @property
    def path_params(self) -> list[str]:
        """Names of the ``{parameters}`` in the path."""
        return re.findall(r"{(\w+)}", self.path)


class Endpoints:
    """A resource module's endpoints, declared with decorators."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.items: list[Endpoint] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        scope: Scope | None,
        summary: str,
        responses: Sequence[Documented],
        description: str = "",
        params: Sequence[Param] = (),
        body: Mapping[str, Any] | None = None,
        body_example: Any = None,
        errors: Sequence[int] = (),
        raw: bool = False,
        open_query: bool = False,
    ) -> Callable[[Handler], Handler]:
        """Declare the decorated function as the handler of ``method path``."""

        def register(handler: Handler) -> Handler:
            self.items.append(
                Endpoint(
                    method=method,
                    path=path,
                    handler=handler,
                    scope=scope,
                    summary=summary,
                    tag=self.tag,
                    description=description or (handler.__doc__ or "").strip(),
                    params=tuple(params),
                    body=body,
                    body_example=body_example,
                    responses=tuple(responses),
                    errors=tuple(errors),
                    raw=raw,
                    open_query=open_query,
                )
            )
            return handler

        return register


def ok(schema: str | Mapping[str, Any] | None, description: str, example: Any = None,
       status: int = 200) -> Documented:  # fmt: skip
    """A success response."""
    return Documented(status, description, schema, example)


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON response written with exact decimals (money is never a float)."""
    if body is None:
        return Response(status_code=status, headers=dict(headers or {}))
    return Response(
        dumps(body), status_code=status, headers=dict(headers or {}), media_type="application/json"
    )


def error_response(error: ApiError) -> Response:
    """The error shape as a response."""
    headers = dict(error.headers)
    if error.status == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="billbridge"')
    return json_response(error.body(), error.status, headers)


# --- the wrapper ---------------------------------------------------------------------------------


def starlette_route(endpoint: Endpoint, metrics: Metrics | None) -> Route:
    """The Starlette route serving ``endpoint``."""

    async def serve(request: Request) -> Response:
        started = metrics.clock() if metrics is not None else 0.0
        try:
            response = await _answer(endpoint, request)
        except Exception as exc:
            response = error_response(from_exception(exc))
        if metrics is not None:
            metrics.observe_request(endpoint, response.status_code, started)
        return response

    return Route(endpoint.path, serve, methods=[endpoint.method], name=endpoint.operation_id)


async def _answer(endpoint: Endpoint, request: Request) -> Response:
    engine: Engine = request.app.state.engine
    settings: ApiSettings = request.app.state.settings
    key = await _authenticate(endpoint, request, engine)
    call = Call(
        request=request,
        engine=engine,
        settings=settings,
        key=key,
        path=dict(request.path_params),
        query=_query(endpoint, request),
        body=await _body(endpoint, request),
    )
    if endpoint.raw:
        answer = endpoint.handler(call)
        assert inspect.isawaitable(answer), f"{endpoint.operation_id} must be async (raw)"
        return await answer
    result = await run_in_threadpool(endpoint.handler, call)
    if isinstance(result, Response):
        return result
    assert isinstance(result, Reply)
    return json_response(result.body, result.status, result.headers)


async def _authenticate(endpoint: Endpoint, request: Request, engine: Engine) -> ApiKey | None:
    if endpoint.scope is None:
        return None
    text = _presented_key(request)
    if text is None:
        raise ApiError(
            401,
            "unauthorized",
            "an API key is required: send it as 'Authorization: Bearer <key>' "
            "(keys are made with `billbridge api-keys create`)",
        )
    key = await run_in_threadpool(engine.api_keys.authenticate, text)
    if key is None:
        raise ApiError(401, "unauthorized", "the API key is not valid (unknown or revoked)")
    if not key.scope.allows(endpoint.scope):
        raise ApiError(
            403,
            "forbidden",
            f"the API key {key.name!r} may only read; this request needs an admin key",
        )
    return key


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    alternative = request.headers.get("x-api-key", "").strip()
    return alternative or None


# --- query ---------------------------------------------------------------------------------------


def _query(endpoint: Endpoint, request: Request) -> dict[str, Any]:
    declared = {p.name: p for p in endpoint.params if p.location == "query"}
    errors = [
        FieldError(f"?{name}", "is not a known parameter")
        for name in request.query_params
        if name not in declared and not endpoint.open_query
    ]
    values: dict[str, Any] = {}
    for name, param in declared.items():
        given = request.query_params.getlist(name)
        if not given:
            if param.required:
                errors.append(FieldError(f"?{name}", "is required"))
            continue
        if len(given) > 1 and not param.many:
            errors.append(FieldError(f"?{name}", "must be given once"))
            continue
        converted = []
        for text in given:
            value, problem = _convert(text, param.schema)
            if problem is not None:
                errors.append(FieldError(f"?{name}", problem))
            else:
                converted.append(value)
        if len(converted) == len(given):
            values[name] = converted if param.many else converted[0]
    if errors:
        raise ApiError(422, "validation_failed", "query parameters refused", errors)
    return values


def _convert(text: str, schema: Mapping[str, Any]) -> tuple[Any, str | None]:
    """A query value as its schema's type, or what is wrong with it."""
    kind = schema.get("type", "string")
    value: Any = text
    if kind == "integer":
        if not re.fullmatch(r"-?\d{1,18}", text.strip()):
            return None, "must be a whole number"
        value = int(text)
    elif kind == "boolean":
        if text.lower() not in ("true", "false"):
            return None, "must be true or false"
        value = text.lower() == "true"
    elif schema.get("format") == "date-time":
        try:
            parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            return None, "must be a date and time (ISO 8601, e.g. 2026-01-31T12:00:00Z)"
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)), None
    problems = validate(value, schema)
    return (None, problems[0].message) if problems else (value, None)


# --- body --------------------------------------------------------------------------------------


async def _body(endpoint: Endpoint, request: Request) -> Any:
    if endpoint.body is None:
        return None
    raw = await request.body()  # the size limit is enforced by the body limit middleware
    optional = endpoint.body.get("type") == "object" and not endpoint.body.get("required")
    if not raw.strip() and optional:
        return {}  # every field is optional: no body is an empty object
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise ApiError(
            415,
            "unsupported_media_type",
            "the request body must be JSON (Content-Type: application/json), not "
            f"{media or 'none'!r}",
        )
    if not raw.strip():
        raise ApiError(400, "malformed_json", "the request body is empty; send a JSON document")
    try:
        body = loads(raw)
    except simplejson.JSONDecodeError as exc:
        where = f" at line {exc.lineno} column {exc.colno}"
        raise ApiError(
            400, "malformed_json", f"the request body is not valid JSON{where}: {exc.msg}"
        ) from None
    except (ValueError, RecursionError):
        raise ApiError(400, "malformed_json", "the request body is not valid JSON") from None
    errors = validate(body, endpoint.body, unknown="is not a known field")
    if errors:
        raise ApiError(422, "validation_failed", "request body refused", errors)
    return body
