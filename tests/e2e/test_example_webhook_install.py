"""A third party's plugin, installed for real: found, delivering, and uninstalled cleanly.

A fresh virtual environment gets billbridge (from this checkout) and the example webhook
destination (built and installed as a wheel, as ``pip install billbridge-webhook`` would) and
nothing else. Then, with the ``billbridge`` command of that environment and its own database:
``billbridge plugins`` lists the webhook; the example's own test suite (the conformance kit)
passes against the installed plugin; a bill goes through ``bills submit`` and ``worker --once``
to a fake receiver; and after ``pip uninstall`` the integration is still listed, marked
"plugin not installed", its runs wait, and a QuickBooks integration is untouched.

The environment takes about 15-30 s to build (pip, with its cache or a local index).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from billbridge.domain.models import dumps
from billbridge.testing.emulation.server import serve
from billbridge.testing.samples import sample_account_document, sample_bill_document
from support import ROOT

EXAMPLE = ROOT / "examples" / "billbridge-webhook"
if str(EXAMPLE) not in sys.path:
    sys.path.insert(0, str(EXAMPLE))

from billbridge_webhook.receiver import FakeReceiver  # noqa: E402

#: Installs packages into a fresh virtual environment: slow, run by ``.ci/run``.
pytestmark = pytest.mark.slow

SECRET = "install-test-signing-secret-0123"


@attrs.frozen
class Venv:
    """A virtual environment with its own billbridge home (database and key file)."""

    path: Path
    home: Path
    work: Path

    @property
    def env(self) -> dict[str, str]:
        keep = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("BILLBRIDGE_", "PYTHON")) and k != "VIRTUAL_ENV"
        }
        return keep | {
            "PATH": f"{self.path / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            "VIRTUAL_ENV": str(self.path),
            "BILLBRIDGE_HOME": str(self.home),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "COLUMNS": "200",  # rich tables: no wrapping inside cells
        }

    def run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run one of the environment's programs (``pip``, ``billbridge``, ``python``)."""
        done = subprocess.run(
            [str(self.path / "bin" / program), *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.work,
            timeout=300,
            check=False,
        )
        if check and done.returncode != 0:
            pytest.fail(
                f"{program} {' '.join(args)} exited {done.returncode}\n"
                f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}",
                pytrace=False,
            )
        return done

    def json(self, *args: str) -> Any:
        """``billbridge ARGS`` (with ``--json`` in ``args``), parsed."""
        return json.loads(self.run("billbridge", *args).stdout)

    def install_example(self) -> None:
        """Build the example's wheel and install it, with its test extra (pytest)."""
        self.run("pip", "install", "--quiet", f"{EXAMPLE}[test]")


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    base = tmp_path_factory.mktemp("fresh-install")
    path = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=120)
    (base / "home").mkdir()
    (base / "work").mkdir()
    venv = Venv(path, base / "home", base / "work")
    # billbridge from this checkout (editable: the code under test), then the example as a
    # third party ships it; pip resolves both from its cache or index, nothing else is shared.
    venv.run("pip", "install", "--quiet", "-e", str(ROOT))
    venv.install_example()
    return venv


@pytest.fixture
def receiver() -> Iterator[tuple[FakeReceiver, str]]:
    fake = FakeReceiver(SECRET)
    with serve(fake.app) as server:
        yield fake, f"{server.url}/bills"


def test_billbridge_plugins_lists_the_installed_webhook(venv: Venv) -> None:
    listed = venv.json("plugins", "--json")
    assert listed["failures"] == []
    plugins = {p["name"]: p for p in listed["plugins"]}
    assert set(plugins) == {"quickbooks", "xero", "webhook"}
    webhook = plugins["webhook"]
    assert webhook["version"] == "0.1.0"
    assert webhook["hooks"] == [
        "preview_bill",
        "register_destinations",
        "send_bill",
        "validate_config",
    ]
    [destination] = webhook["destinations"]
    assert destination["key"] == "webhook"
    assert destination["auth"] == "none"
    assert destination["schema"]["properties"]["secret"]["writeOnly"] is True
    panel = json.loads(venv.run("billbridge", "schema", "webhook").stdout)
    assert panel == destination["schema"]


def test_the_example_passes_its_own_suite_when_installed(venv: Venv) -> None:
    # Run from elsewhere, so that billbridge_webhook is the installed wheel, not the source.
    done = venv.run(
        "python",
        "-m",
        "pytest",
        str(EXAMPLE / "tests"),
        "--rootdir",
        str(EXAMPLE),
        "-p",
        "no:cacheprovider",
        "-q",
    )
    assert "failed" not in done.stdout
    assert "passed" in done.stdout
    located = venv.run(
        "python", "-c", "import billbridge_webhook; print(billbridge_webhook.__file__)"
    )
    assert str(venv.path) in located.stdout


def test_deliver_through_the_cli_then_uninstall(
    venv: Venv, receiver: tuple[FakeReceiver, str], tmp_path: Path
) -> None:
    fake, url = receiver
    webhook = venv.json(
        "integrations",
        "create",
        "--name",
        "Billing hooks",
        "--destination",
        "webhook",
        "--destination-config",
        json.dumps({"url": url, "secret": SECRET}),
        "--json",
    )
    # Another destination's integration, for bills of another account only.
    quickbooks = venv.json(
        "integrations",
        "create",
        "--name",
        "QuickBooks US",
        "--destination",
        "quickbooks",
        "--config",
        json.dumps({"accountIds": ["another-account"]}),
        "--json",
    )
    bill = tmp_path / "bill.json"
    account = tmp_path / "account.json"
    bill.write_text(dumps(sample_bill_document()))
    account.write_text(dumps(sample_account_document()))
    submitted = venv.json("bills", "submit", str(bill), "--account", str(account), "--json")
    assert [r["integrationId"] for r in submitted["runs"]] == [webhook["id"]]
    assert [s["integrationId"] for s in submitted["skips"]] == [quickbooks["id"]]

    worker = venv.run("billbridge", "worker", "--once", "--quiet")
    assert "1 COMPLETE" in worker.stderr, venv.json("runs", "list", "--json")
    [run] = venv.json("runs", "list", "--json")
    assert run["status"] == "COMPLETE"
    assert run["externalId"] == "inv_1"
    [received] = fake.received
    assert received.refused is None
    assert received.json()["invoice"]["billId"] == sample_bill_document()["id"]

    try:
        venv.run("pip", "uninstall", "--yes", "billbridge-webhook")
        listed = venv.json("plugins", "--json")
        assert {p["name"] for p in listed["plugins"]} == {"quickbooks", "xero"}
        assert listed["failures"] == []

        integrations = {i["id"]: i for i in venv.json("integrations", "list", "--json")}
        assert integrations[webhook["id"]]["pluginInstalled"] is False
        assert integrations[quickbooks["id"]]["pluginInstalled"] is True
        table = venv.run("billbridge", "integrations", "list").stdout
        assert "webhook (plugin not installed)" in table
        assert "QuickBooks US" in table
        shown = venv.json("integrations", "show", webhook["id"], "--json")
        assert shown["destination"] == "webhook"

        # A new version waits for the plugin instead of failing; nothing else is disturbed.
        bill.write_text(dumps(sample_bill_document(version=2)))
        venv.json("bills", "submit", str(bill), "--account", str(account), "--json")
        venv.run("billbridge", "worker", "--once", "--quiet")
        waiting = [r for r in venv.json("runs", "list", "--json") if r["billVersion"] == 2]
        assert [r["status"] for r in waiting] == ["AWAITING_RETRY"]
        assert "not installed" in waiting[0]["error"]
        assert len(fake.received) == 1
    finally:
        # Leave the module's environment as the other tests expect it, whatever happened.
        venv.install_example()
