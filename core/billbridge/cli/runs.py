"""What happened to bills: ``billbridge runs …``, ``skips list`` and ``events …``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import click

from billbridge.cli.guard import EXIT_USAGE, fail, guard
from billbridge.cli.output import out, print_json, table
from billbridge.cli.state import State, pass_state
from billbridge.domain.models import DocumentStatus, EventType, InvoiceState, RunStatus, thaw

__all__ = ["events", "print_runs", "run_dict", "runs", "skips"]


def invoice_dict(status: DocumentStatus) -> dict[str, Any]:
    """What a run's invoice was last read back as, as the JSON output shows it."""
    values = {
        "state": status.state.value if status.state is not None else None,
        "total": status.total,
        "amountDue": status.amount_due,
        "amountPaid": status.amount_paid,
        "amountCredited": status.amount_credited,
        "currency": status.currency,
        "paidOn": status.paid_on,
        "payments": [thaw(p) for p in status.payments],
        "checkedAt": status.checked_at,
        "nextCheckAt": status.next_check_at,
        "error": status.error,
    }
    return {k: v for k, v in values.items() if v not in (None, [])}


def run_dict(run: Any, invoice: DocumentStatus | None = None) -> dict[str, Any]:
    """A run as the JSON output shows it (with its invoice's read-back status, if given)."""
    found = {
        "id": run.id,
        "integrationId": run.integration_id,
        "billId": run.bill_id,
        "billVersion": run.bill_version,
        "accountId": run.account_id,
        "status": run.status.value,
        "attempts": run.attempts,
        "externalId": run.external_id,
        "externalUrl": run.external_url,
        "error": run.error,
        "replayedFrom": run.replayed_from,
        "nextAttemptAt": run.next_attempt_at,
        "createdAt": run.created_at,
        "updatedAt": run.updated_at,
    }
    if invoice is not None:
        found["invoice"] = invoice_dict(invoice)
    return found


def _invoice_cell(status: DocumentStatus | None) -> str:
    if status is None or status.state is None:
        return "-"
    if status.state is InvoiceState.PARTLY_PAID and status.amount_due is not None:
        return f"partly paid ({status.amount_due} due)"
    if status.state is InvoiceState.PAID and status.paid_on is not None:
        return f"paid {status.paid_on.isoformat()}"
    return status.state.value.replace("_", " ")


def print_runs(
    items: Sequence[Any],
    as_json: bool,
    title: str = "Runs",
    invoices: dict[str, DocumentStatus] | None = None,
) -> None:
    """Runs as JSON, or as a table titled ``title`` (with their invoices' read-back states)."""
    invoices = invoices or {}
    if as_json:
        print_json([run_dict(r, invoices.get(r.id)) for r in items])
        return
    shown = table(
        title,
        ("id", "bill", "v", "integration", "status", "tries", "external", "invoice", "error"),
    )
    for r in items:
        shown.add_row(
            r.id,
            r.bill_id,
            str(r.bill_version),
            r.integration_id,
            r.status.value,
            str(r.attempts),
            r.external_id or "-",
            _invoice_cell(invoices.get(r.id)),
            (r.error or "")[:80],
        )
    out.print(shown)


@click.group()
def runs() -> None:
    """Delivery runs: list, show with attempts, replay."""


@runs.command("list")
@click.option("--integration", "integration_id", help="Only this integration.")
@click.option("--bill", "bill_id", help="Only this bill.")
@click.option("--status", "statuses", multiple=True, help="Only these statuses (repeatable).")
@click.option("--since", type=click.DateTime(), help="Created at or after (UTC).")
@click.option("--until", type=click.DateTime(), help="Created before (UTC).")
@click.option("--paid", is_flag=True, help="Only runs whose invoice was read back as paid.")
@click.option(
    "--invoice-state",
    "invoice_states",
    multiple=True,
    type=click.Choice([s.value for s in InvoiceState]),
    help="Only runs whose invoice was read back in this state (repeatable).",
)
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
@guard
def runs_list(
    state: State,
    integration_id: str | None,
    bill_id: str | None,
    statuses: Sequence[str],
    since: datetime | None,
    until: datetime | None,
    paid: bool,
    invoice_states: Sequence[str],
    limit: int,
    as_json: bool,
) -> None:
    """List runs, newest first, with what their invoices were last read back as."""
    try:
        wanted = [RunStatus(s.upper()) for s in statuses] or None
    except ValueError:
        fail(f"unknown status; known: {', '.join(s.value for s in RunStatus)}", code=EXIT_USAGE)
    states = list(dict.fromkeys([*invoice_states, *(["paid"] if paid else [])])) or None
    engine = state.engine
    items = engine.runs.list(
        integration_id=integration_id,
        bill_id=bill_id,
        status=wanted,
        since=since.replace(tzinfo=UTC) if since else None,
        until=until.replace(tzinfo=UTC) if until else None,
        limit=limit,
        invoice_state=states,
    )
    print_runs(items, as_json, invoices=engine.runs.invoices(items))


@runs.command("show")
@click.argument("run_id")
@pass_state
@guard
def runs_show(state: State, run_id: str) -> None:
    """One run with its attempts and its invoice's read-back status (JSON)."""
    run = state.engine.runs.get(run_id)
    attempts = state.engine.runs.attempts(run_id)
    print_json(
        {
            **run_dict(run, state.engine.runs.invoices([run]).get(run.id)),
            "attemptLog": [
                {
                    "number": a.number,
                    "status": a.status.value,
                    "startedAt": a.started_at,
                    "finishedAt": a.finished_at,
                    "worker": a.worker,
                    "error": a.error,
                }
                for a in attempts
            ],
        }
    )


@runs.command("replay")
@click.argument("run_id")
@pass_state
@guard
def runs_replay(state: State, run_id: str) -> None:
    """Queue a run again (a new run pointing to this one)."""
    replay = state.engine.runs.replay(run_id)
    out.print(f"queued run {replay.id} (replays {run_id})", markup=False)


@click.group()
def events() -> None:
    """What people must act on."""


def _event_dict(event: Any) -> dict[str, Any]:
    return {
        "id": event.id,
        "type": event.type.value,
        "message": event.message,
        "integrationId": event.integration_id,
        "runId": event.run_id,
        "details": thaw(event.details),
        "createdAt": event.created_at,
        "actionedAt": event.actioned_at,
        "actionedBy": event.actioned_by,
    }


@events.command("list")
@click.option("--integration", "integration_id", help="Only this integration.")
@click.option("--type", "event_type", help="Only this type, e.g. integration.validation.error.")
@click.option("--open/--all", "only_open", default=False, help="Only events not actioned yet.")
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
@guard
def events_list(
    state: State,
    integration_id: str | None,
    event_type: str | None,
    only_open: bool,
    limit: int,
    as_json: bool,
) -> None:
    """List events, newest first."""
    try:
        kind = EventType(event_type) if event_type else None
    except ValueError:
        fail(f"unknown event type; known: {', '.join(t.value for t in EventType)}", code=EXIT_USAGE)
    items = state.engine.events.list(
        integration_id=integration_id, type=kind, actioned=False if only_open else None, limit=limit
    )
    if as_json:
        print_json([_event_dict(e) for e in items])
        return
    shown = table("Events", ("id", "type", "when", "actioned", "message"))
    for e in items:
        shown.add_row(
            e.id,
            e.type.value,
            e.created_at.strftime("%Y-%m-%d %H:%M"),
            "yes" if e.actioned else "no",
            e.message,
        )
    out.print(shown)


@events.command("action")
@click.argument("event_id")
@click.option("--by", default=lambda: os.environ.get("USER", ""), help="Who dealt with it.")
@pass_state
@guard
def events_action(state: State, event_id: str, by: str) -> None:
    """Mark an event as dealt with."""
    event = state.engine.events.mark_actioned(event_id, by=by)
    out.print(f"marked {event.id} as actioned", markup=False)


@click.group()
def skips() -> None:
    """Routing decisions not to send a bill, with their reasons."""


@skips.command("list")
@click.option("--integration", "integration_id", help="Only this integration.")
@click.option("--bill", "bill_id", help="Only this bill.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
@guard
def skips_list(
    state: State, integration_id: str | None, bill_id: str | None, as_json: bool
) -> None:
    """List skips, newest first."""
    items = state.engine.skips.list(integration_id=integration_id, bill_id=bill_id)
    if as_json:
        print_json(
            [
                {
                    "integrationId": s.integration_id,
                    "billId": s.bill_id,
                    "billVersion": s.bill_version,
                    "reason": s.reason,
                    "createdAt": s.created_at,
                }
                for s in items
            ]
        )
        return
    shown = table("Skips", ("integration", "bill", "v", "reason"))
    for s in items:
        shown.add_row(s.integration_id, s.bill_id, str(s.bill_version), s.reason)
    out.print(shown)
