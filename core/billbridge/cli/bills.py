"""Handing bills in: ``billbridge bills submit`` and ``billbridge preview``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from billbridge.cli.guard import fail, guard
from billbridge.cli.inputs import read_json_file
from billbridge.cli.output import out, print_json, progress, table
from billbridge.cli.runs import print_runs, run_dict
from billbridge.cli.state import State, pass_state

__all__ = ["bills", "preview"]


def _load_accounts(paths: Sequence[Path]) -> dict[str, Any]:
    accounts: dict[str, Any] = {}
    for path in paths:
        document = read_json_file(path, "account")
        if not isinstance(document, dict) or "id" not in document:
            fail(f"{path} is not an m3ter account (an object with an id)")
        accounts[str(document["id"])] = document
    return accounts


@click.group()
def bills() -> None:
    """Hand bills to billbridge."""


@bills.command("submit")
@click.argument(
    "bill_files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path)
)
@click.option(
    "--account",
    "account_files",
    multiple=True,
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The bill's account (m3ter JSON); repeat for bills of several accounts.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
@guard
def bills_submit(
    state: State, bill_files: Sequence[Path], account_files: Sequence[Path], as_json: bool
) -> None:
    """Route bills (m3ter JSON files) to every matching integration."""
    accounts = _load_accounts(account_files)
    runs: list[Any] = []
    skips: list[Any] = []
    with progress(len(bill_files), "routing bills", enabled=not as_json) as advance:
        for path in bill_files:
            document = read_json_file(path, "bill")
            if not isinstance(document, dict):
                fail(f"{path} is not an m3ter bill (a JSON object)")
            account = accounts.get(str(document.get("accountId")))
            if account is None:
                fail(f"{path}: no --account given for account {document.get('accountId')}")
            result = state.engine.submit_bill(document, account)
            runs += result.runs
            skips += result.skips
            advance(1)
    _print_submitted(runs, skips, as_json)


def _print_submitted(runs: Sequence[Any], skips: Sequence[Any], as_json: bool) -> None:
    if as_json:
        print_json(
            {
                "runs": [run_dict(r) for r in runs],
                "skips": [
                    {"integrationId": s.integration_id, "billId": s.bill_id, "reason": s.reason}
                    for s in skips
                ],
            }
        )
        return
    print_runs(runs, False, title=f"Queued: {len(runs)} run(s)")
    if skips:
        shown = table(f"Skipped: {len(skips)}", ("integration", "bill", "v", "reason"))
        for skip in skips:
            shown.add_row(skip.integration_id, skip.bill_id, str(skip.bill_version), skip.reason)
        out.print(shown)


@click.command()
@click.option("--integration", "integration_id", required=True, help="The integration.")
@click.argument("bill_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--account", "account_file", required=True, type=click.Path(dir_okay=False, path_type=Path)
)
@pass_state
@guard
def preview(state: State, integration_id: str, bill_file: Path, account_file: Path) -> None:
    """Print the exact request an integration would send for a bill (nothing is sent)."""
    bill = read_json_file(bill_file, "bill")
    account = read_json_file(account_file, "account")
    print_json(state.engine.preview(bill, account, integration_id))
