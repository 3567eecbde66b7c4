"""The ASGI application: ``create_app(engine, settings)``.

Routes live under ``/api`` (the web console is served at ``/``), plus ``/healthz``,
``/readyz``, ``/metrics`` and ``/openapi.json``. Middleware: CORS (off unless origins are
configured) and a request body size limit. Engine calls run in the thread pool: the engine is
thread-safe, and its calls block on the database and the destinations.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from billbridge.api.endpoints import Endpoint, error_response, starlette_route
from billbridge.api.errors import ApiError, error_body
from billbridge.api.metrics import Metrics
from billbridge.api.openapi import openapi_document
from billbridge.api.resources import (
    admin,
    bills,
    credentials,
    destinations,
    events,
    integrations,
    mappings,
    runs,
    service,
)
from billbridge.api.settings import ApiSettings
from billbridge.api.stream import ROUTES as STREAM_ROUTES
from billbridge.api.webconsole import ConsoleFallback
from billbridge.api.worker import BackgroundWorker
from billbridge.domain.models import dumps
from billbridge.engine import Engine

__all__ = ["BodyLimit", "create_app", "endpoints"]


def endpoints() -> list[Endpoint]:
    """Every endpoint of the API, in the order the OpenAPI document lists them."""
    groups = (
        destinations, credentials, integrations, mappings, bills, runs, events, admin, service,
    )  # fmt: skip
    found = [e for group in groups for e in group.ROUTES.items]
    return found + STREAM_ROUTES.items


def create_app(
    engine: Engine,
    settings: ApiSettings | None = None,
    *,
    worker: BackgroundWorker | None = None,
) -> Starlette:
    """The HTTP API over ``engine``.

    :param settings: CORS, body size, public URL, paging (default: from the environment).
    :param worker: started with the app and stopped with it (``billbridge serve`` passes one);
        it counts its delivery outcomes in this app's metrics.
    """
    settings = settings or ApiSettings.from_env()
    metrics = Metrics(engine)
    if worker is not None and worker.metrics is None:
        worker.metrics = metrics
    declared = endpoints()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if worker is not None:
            worker.start()
        try:
            yield
        finally:
            if worker is not None:
                await run_in_threadpool(worker.stop)

    middleware = [Middleware(BodyLimit, max_bytes=settings.max_body_bytes)]
    if settings.cors_origins:
        middleware.insert(0, _cors(settings))
    app = Starlette(
        routes=[starlette_route(e, metrics) for e in declared],
        middleware=middleware,
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    # The console answers what no route took (an unknown /api route stays a JSON 404).
    app.router.default = ConsoleFallback(app.router.not_found)
    app.state.engine = engine
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.openapi = openapi_document(declared)
    return app


def _cors(settings: ApiSettings) -> Middleware:
    return Middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "X-API-Key", "Last-Event-ID"],
        expose_headers=["Retry-After"],
        max_age=600,
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    """Routing errors (no such route, wrong method) in the one error shape."""
    assert isinstance(exc, HTTPException)
    metrics: Metrics = request.app.state.metrics
    metrics.observe_unrouted(request.method, exc.status_code)
    if exc.status_code == 404:
        error = ApiError(404, "not_found", f"no such route: {request.method} {request.url.path}")
    elif exc.status_code == 405:
        error = ApiError(
            405, "method_not_allowed", f"{request.method} is not allowed on {request.url.path}"
        )
    else:
        error = ApiError(exc.status_code, "http_error", str(exc.detail))
    response = error_response(error)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


class BodyLimit:
    """Refuses request bodies over ``max_bytes`` with 413, before they are read whole.

    A declared ``Content-Length`` over the limit is answered at once; a body sent without one
    (chunked) is counted as it arrives and refused when it passes the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _send_error(send, self._too_large())
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._too_large()
            return message

        await self.app(scope, counted, send)

    def _too_large(self) -> ApiError:
        return ApiError(
            413,
            "payload_too_large",
            f"the request body is larger than {self.max_bytes} bytes, the most this service "
            "accepts (BILLBRIDGE_API_MAX_BODY_BYTES)",
        )


async def _send_error(send: Send, error: ApiError) -> None:
    body = dumps(error_body(error.code, error.message, error.errors)).encode()
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
