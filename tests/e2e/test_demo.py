"""``billbridge demo``: the README's main job runs end to end on a fresh home."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from billbridge.cli.demo.scenario import run_demo


def test_the_demo_delivers_updates_and_reports(tmp_path: Path) -> None:
    output = io.StringIO()
    summary = run_demo(tmp_path, console=Console(file=output, width=200))
    text = output.getvalue()
    assert summary["credentials"] == 3
    assert summary["runs_first"] == 6  # QuickBooks x3, Xero UK x1 (Acme), Xero US x2
    assert summary["runs_second"] == 2  # Acme's new version: QuickBooks and Xero UK
    assert summary["invoices_before"] == summary["invoices_after"] == 4
    assert summary["events"] == ["integration.missingaccountmapping.error"] * 2
    assert summary["seconds"] < 60
    assert "updated in place, not duplicated: yes" in text
    assert "updated 1370.00 → 1420.00" in text  # QuickBooks, without the excluded commitment
    assert "updated 1270.00 → 1320.00" in text  # Xero UK, the bill's own total
    assert "Initech" in text


@pytest.mark.slow
def test_the_demo_command_runs_from_the_installed_script(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("billbridge")
    env = {**os.environ, "BILLBRIDGE_HOME": str(tmp_path), "COLUMNS": "200"}
    result = subprocess.run(
        [str(script), "demo"], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "Acme's invoices were updated in place, not duplicated: yes" in result.stdout
