"""The wheel: one distribution with the engine, both plugins, the schemas and migrations."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from support import ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("billbridge-*.whl")
    return built


def test_the_wheel_holds_everything(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for schema in (ROOT / "schemas").glob("*.json"):
        assert f"billbridge/_schemas/{schema.name}" in names
    for expected in (
        "billbridge/py.typed",
        "billbridge/store/migrations/env.py",
        "billbridge/store/migrations/versions/0001_initial.py",
        "billbridge_quickbooks/schema.json",
        "billbridge_quickbooks/py.typed",
        "billbridge_xero/schema.json",
        "billbridge/demo_samples/bill-acme-uk-2025-09.json",
        "billbridge/api/console/index.html",
    ):
        assert expected in names
    # The console's built bundle: no Node needed to install or run it.
    assets = [n for n in names if n.startswith("billbridge/api/console/assets/")]
    assert any(n.endswith(".js") for n in assets) and any(n.endswith(".css") for n in assets)
    assert not any("node_modules" in n or n.startswith("console/") for n in names)
    entry_points = next(n for n in names if n.endswith("dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[billbridge.destinations]" in text
    assert "quickbooks = billbridge_quickbooks.hooks" in text
    assert "xero = billbridge_xero.hooks" in text


def test_schemas_load_from_the_unpacked_wheel(wheel: Path, tmp_path: Path) -> None:
    zipfile.ZipFile(wheel).extractall(tmp_path)
    probe = (
        "import json, billbridge, billbridge.domain.schemas as s, billbridge_xero.hooks as x;"
        "print(json.dumps([billbridge.__file__, str(s._schema_dir()),"
        " s.core_schema('bill')['title'], x.register_destinations()[0].schema['title']]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        check=True,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(tmp_path), "PATH": ""},
    )
    module_file, schema_dir, bill_title, xero_title = json.loads(result.stdout)
    assert module_file.startswith(str(tmp_path))
    assert schema_dir.startswith(str(tmp_path)) and schema_dir.endswith("_schemas")
    assert bill_title and xero_title == "Xero"
