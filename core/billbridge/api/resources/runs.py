"""Runs (filter by bill, integration, status, time), their attempts, replay; routing skips."""

from __future__ import annotations

from typing import Any

from billbridge.api import serializers
from billbridge.api.endpoints import ADMIN, READ, Call, Endpoints, Param, Reply, ok
from billbridge.api.pagination import PAGE_PARAMS, keyset_page, page_body
from billbridge.domain.models import InvoiceState, RunStatus

__all__ = ["ROUTES"]

ROUTES = Endpoints("runs")

_TEXT = {"type": "string"}
_TIME = {"type": "string", "format": "date-time"}


def _run_filters(call: Call) -> dict[str, Any]:
    q = call.query
    return {
        "bill_id": q.get("billId"),
        "integration_id": q.get("integrationId"),
        "status": q.get("status"),
        "since": q.get("since"),
        "until": q.get("until"),
        "invoice_state": q.get("invoiceState"),
    }


@ROUTES.route(
    "GET",
    "/api/runs",
    scope=READ,
    summary="List runs",
    params=[
        Param("billId", _TEXT, "Only this bill's runs."),
        Param("integrationId", _TEXT, "Only this integration's runs."),
        Param(
            "status",
            {"type": "string", "enum": [s.value for s in RunStatus]},
            "Only these statuses (repeat it).",
            many=True,
        ),
        Param("since", _TIME, "Created at or after (ISO 8601)."),
        Param("until", _TIME, "Created before (ISO 8601)."),
        Param(
            "invoiceState",
            {"type": "string", "enum": [s.value for s in InvoiceState]},
            "Only runs whose invoice was last read back in this state (repeat it): paid, "
            "partly_paid, unpaid, voided, deleted.",
            many=True,
        ),
        *PAGE_PARAMS,
    ],
    responses=[ok("RunPage", "Runs, newest first, with the total")],
)
def list_runs(call: Call) -> Reply:
    """Runs matching every filter, newest first, each with what its invoice was last read back
    as (``invoice``)."""
    runs, filters = call.engine.runs, _run_filters(call)
    items, cursor = keyset_page(
        call,
        lambda before, limit: runs.list(**filters, limit=limit, before=before),
        lambda run: (run.created_at, run.id),
    )
    invoices = runs.invoices(items)
    body = [serializers.run(r, invoices.get(r.id)) for r in items]
    return Reply(page_body(body, runs.count(**filters), cursor))


@ROUTES.route(
    "GET",
    "/api/runs/{runId}",
    scope=READ,
    summary="One run",
    responses=[ok("Run", "The run")],
    errors=[404],
)
def get_run(call: Call) -> Reply:
    """One run: status, external id and URL, error, replayed-from, and what its invoice was
    last read back as."""
    run = call.engine.runs.get(call.path["runId"])
    return Reply(serializers.run(run, call.engine.runs.invoices([run]).get(run.id)))


@ROUTES.route(
    "GET",
    "/api/runs/{runId}/attempts",
    scope=READ,
    summary="A run's attempts",
    responses=[ok("RunAttemptList", "Every attempt, first first")],
    errors=[404],
)
def list_attempts(call: Call) -> Reply:
    """Each try: when, which worker, how it ended."""
    attempts = call.engine.runs.attempts(call.path["runId"])
    return Reply({"items": [serializers.attempt(a) for a in attempts]})


@ROUTES.route(
    "POST",
    "/api/runs/{runId}/replay",
    scope=ADMIN,
    summary="Replay a finished run",
    responses=[ok("Run", "The new WAITING run, pointing back to this one", status=201)],
    errors=[404, 409],
)
def replay_run(call: Call) -> Reply:
    """Queues the same bill version through the same integration again (after fixing a
    mapping, reconnecting...). Refused (409) while it or another run of it is still open."""
    return Reply(serializers.run(call.engine.runs.replay(call.path["runId"])), 201)


@ROUTES.route(
    "GET",
    "/api/skips",
    scope=READ,
    summary="List routing skips",
    params=[
        Param("billId", _TEXT, "Only this bill's skips."),
        Param("integrationId", _TEXT, "Only this integration's skips."),
        *PAGE_PARAMS,
    ],
    responses=[ok("SkipPage", "Decisions not to send, newest first, each with its reason")],
)
def list_skips(call: Call) -> Reply:
    """Why a bill was not sent through an integration, as submission recorded it."""
    skips = call.engine.skips
    filters: dict[str, Any] = {
        "bill_id": call.query.get("billId"),
        "integration_id": call.query.get("integrationId"),
    }
    items, cursor = keyset_page(
        call,
        lambda before, limit: skips.list(**filters, limit=limit, before=before),
        lambda skip: (skip.created_at, skip.id),
    )
    return Reply(page_body([serializers.skip(s) for s in items], skips.count(**filters), cursor))
