"""``billbridge worker``: deliver waiting runs, once or continuously."""

from __future__ import annotations

import sys
from typing import Any

import click

from billbridge.cli.guard import guard
from billbridge.cli.output import err
from billbridge.cli.state import State, pass_state

__all__ = ["worker"]


def _deliver_with_progress(engine: Any, quiet: bool) -> Any:
    if quiet:
        return engine.deliver_pending()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
    ) as bar:
        task = bar.add_task("delivering", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=max(total, done))

        return engine.deliver_pending(progress=update)


def _report_line(report: Any) -> str:
    parts = ", ".join(f"{count} {status}" for status, count in sorted(report.statuses.items()))
    return (
        f"delivered {report.attempted} run(s) in {report.seconds:.1f}s"
        f"{': ' + parts if parts else ''} ({report.requests} request(s), "
        f"{report.throttled} throttled)"
    )


def _status_line(report: Any) -> str:
    return (
        f"read back {report.read} invoice status(es): {report.changed} changed, "
        f"{report.events} event(s), {report.failed} failed, {report.deferred} deferred"
    )


@click.command()
@click.option("--once", is_flag=True, help="Deliver what is due now, then stop.")
@click.option("--poll", type=float, default=5.0, show_default=True, help="Seconds between checks.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@pass_state
@guard
def worker(state: State, once: bool, poll: float, quiet: bool) -> None:
    """Deliver waiting runs, and read delivered invoices' statuses back when due: once, or
    continuously (Ctrl-C stops after the current batch).

    Each pass also sends the webhook deliveries that are due.

    The database going away (a restart, a cut connection, SQLite busy) does not stop it: it
    waits, with a growing backoff, and carries on; only a configuration error stops it.
    """
    from billbridge.services.delivery.loop import LoopSettings, WorkerLoop

    engine = state.engine

    def read_back() -> None:
        statuses = engine.poll_invoice_statuses()
        if statuses.read or statuses.failed:
            err.print(_status_line(statuses), markup=False)

    if once:
        quiet = quiet or not sys.stderr.isatty()
        err.print(_report_line(_deliver_with_progress(engine, quiet)), markup=False)
        read_back()
        engine.webhooks.dispatch()
        return

    def report(done: Any) -> None:
        if done.attempted:
            err.print(_report_line(done), markup=False)

    # Statuses, then webhooks, ride on the same loop: a payment read back and the events a
    # delivery raised reach their subscribers without a second process.
    loop = WorkerLoop(
        engine.deliverer,
        engine.clock,
        settings=LoopSettings(poll=poll),
        passes=[read_back, engine.webhooks.dispatch],
        due=[engine.next_status_check_at],
        report=report,
    )
    try:
        loop.run()
    except KeyboardInterrupt:
        err.print("worker stopped", markup=False)
