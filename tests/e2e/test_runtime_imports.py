"""The runtime never imports the testing kit, a plugin's emulator or an optional integration.

The engine, the services, the store, the domain, the plugin contract, the command line, the HTTP
service and the bundled plugins' hooks are imported in a fresh interpreter; none of them may load
``billbridge.testing``, ``billbridge_*.emulator``, ``billbridge.contrib`` or Celery. The commands
that run emulators import them when they run, and say what to install when they cannot; so does
``billbridge.contrib.celery`` without Celery.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

#: Imported with every module below them.
RUNTIME_PACKAGES = (
    "billbridge.api",
    "billbridge.cli",
    "billbridge.services",
    "billbridge.store",
    "billbridge.domain",
    "billbridge.plugin",
)
RUNTIME_MODULES = ("billbridge.engine", "billbridge_quickbooks.hooks", "billbridge_xero.hooks")

IMPORT_EVERYTHING = """
import importlib, json, pkgutil, sys

packages, modules = json.loads(sys.argv[1])
imported = []
for name in modules:
    importlib.import_module(name)
    imported.append(name)
for package in packages:
    module = importlib.import_module(package)
    imported.append(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        if info.name.endswith(".__main__"):  # runs the program: not a module to import
            continue
        importlib.import_module(info.name)
        imported.append(info.name)
print(json.dumps({"imported": imported, "loaded": sorted(sys.modules)}))
"""

#: The testing kit, the emulators, and the integrations with optional packages (``contrib``),
#: which the application imports when it uses them.
NOT_AT_RUN_TIME = re.compile(
    r"billbridge\.testing(\..*)?|billbridge_\w+\.emulator(\..*)?"
    r"|billbridge\.contrib(\..*)?|celery(\..*)?|kombu(\..*)?"
)


def test_runtime_modules_load_no_testing_kit_and_no_emulator() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            IMPORT_EVERYTHING,
            json.dumps([RUNTIME_PACKAGES, RUNTIME_MODULES]),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    # The walk really reached the leaves (a vacuous pass would prove nothing).
    for leaf in (
        "billbridge.cli.demo.scenario",
        "billbridge.cli.consent",
        "billbridge.cli.emulator",
        "billbridge.services.delivery.worker",
        "billbridge.store.repositories.runs",
    ):
        assert leaf in report["imported"]
    loaded = [name for name in report["loaded"] if NOT_AT_RUN_TIME.fullmatch(name)]
    assert loaded == []


# Starlette made unimportable, as if it were not installed.
WITHOUT_STARLETTE = """
import sys

sys.modules["starlette"] = None
from billbridge.cli import main

main()
"""


@pytest.mark.parametrize(
    "args", [["emulator", "xero", "--port", "8082"], ["demo"]], ids=["emulator", "demo"]
)
def test_without_the_emulators_dependencies_one_line_says_what_to_install(
    args: list[str], tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_STARLETTE, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "BILLBRIDGE_HOME": str(tmp_path), "COLUMNS": "200"},
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "error: the emulators need the 'starlette' package, which is not installed: "
        "pip install starlette uvicorn"
    ]


# Celery made unimportable, as if it were not installed.
WITHOUT_CELERY = """
import sys

sys.modules["celery"] = None
import billbridge.contrib.celery
"""


def test_the_celery_integration_without_celery_says_what_to_install() -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_CELERY],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "ImportError: billbridge.contrib.celery needs Celery, which is not installed: "
        'pip install "billbridge[celery]"'
    )
