"""The service itself: health, readiness, metrics, the OpenAPI document."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from billbridge.api.endpoints import PUBLIC, READ, Call, Endpoints, Reply, json_response, ok
from billbridge.api.metrics import CONTENT_TYPE

__all__ = ["ROUTES"]

ROUTES = Endpoints("service")


@ROUTES.route(
    "GET",
    "/healthz",
    scope=PUBLIC,
    summary="Liveness: the process answers",
    responses=[ok("Health", "The process is up", {"status": "ok"})],
)
def healthz(call: Call) -> Reply:
    """Answers while the process runs (no database access): for liveness probes."""
    return Reply({"status": "ok"})


@ROUTES.route(
    "GET",
    "/readyz",
    scope=PUBLIC,
    summary="Readiness: the database answers and its schema is current",
    responses=[
        ok("Readiness", "Ready"),
        ok("Readiness", "Not ready: the database is unreachable or not migrated", status=503),
    ],
)
def readyz(call: Call) -> Reply:
    """Ready when the database answers and is migrated to the revision this code expects."""
    state = call.engine.readiness()
    return Reply(state, 200 if state["ready"] else 503)


@ROUTES.route(
    "GET",
    "/metrics",
    scope=READ,
    summary="Prometheus metrics",
    raw=True,
    responses=[ok({"type": "string"}, "The Prometheus text exposition format")],
)
async def metrics(call: Call) -> Response:
    """Runs by status and queue depth per tenant (from the database), API requests, delivery
    outcomes, latency and 429s (from this process). Scrape with a read key
    (``authorization`` in the scrape config)."""
    body = await run_in_threadpool(call.request.app.state.metrics.render)
    return Response(body, media_type=CONTENT_TYPE)


@ROUTES.route(
    "GET",
    "/openapi.json",
    scope=READ,
    summary="This API's OpenAPI 3.1 document",
    raw=True,
    responses=[ok({"type": "object"}, "The OpenAPI document")],
)
async def openapi(call: Call) -> Response:
    """The OpenAPI 3.1 document, generated from the routes themselves."""
    return json_response(call.request.app.state.openapi)


@ROUTES.route(
    "GET",
    "/api/openapi.json",
    scope=READ,
    summary="This API's OpenAPI 3.1 document (under /api, beside the routes it describes)",
    raw=True,
    responses=[ok({"type": "object"}, "The OpenAPI document")],
)
async def openapi_under_api(call: Call) -> Response:
    """The same document as ``/openapi.json``."""
    return json_response(call.request.app.state.openapi)
