"""The console's panel module (console/src/panels) against every installed destination's
published panels, with Ajv 8 as rjsf validates them in the browser: a refused choice reads
"must be one of: Draft, Awaiting approval, ..." (titles, never "must be equal to constant"),
and the API's ``{path, message}`` errors land on their fields. Runs ``node --test
console/tests/`` (Node, and the console's node_modules: ``npm --prefix console ci``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from billbridge import Engine
from billbridge.api.resources.common import FILTER_CHECK
from billbridge.secrets import SecretBox, generate_key
from billbridge.settings import Settings
from support import ROOT

pytestmark = pytest.mark.slow


def test_choice_and_server_errors_in_the_panel_module(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None or not (ROOT / "console" / "node_modules" / "esbuild").exists():
        reason = "needs Node and `npm --prefix console ci`"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    engine = Engine(
        f"sqlite:///{tmp_path / 'billbridge.db'}",
        settings=Settings(home=tmp_path),
        secret_box=SecretBox([generate_key()]),
    )
    forms = {
        d.key: engine.forms(d.key, entity_endpoint="/x/{table}", filter_endpoint=FILTER_CHECK)
        for d in engine.destinations()
    }
    engine.close()
    assert {"quickbooks", "xero"} <= set(forms)
    panels = tmp_path / "panels.json"
    panels.write_text(json.dumps(forms), encoding="utf-8")
    result = subprocess.run(
        [node, "--test", str(ROOT / "console" / "tests")],
        capture_output=True,
        text=True,
        env={**os.environ, "PANELS_JSON": str(panels)},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout
