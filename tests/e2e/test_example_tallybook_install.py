"""The OAuth example plugin, installed for real, connected from the command line.

A fresh virtual environment gets billbridge (from this checkout) and the Tallybook example
(built and installed as a wheel, as ``pip install billbridge-tallybook`` would). Then, with that
environment's ``billbridge`` and its own home: ``billbridge plugins`` lists the OAuth
destination; the example's own tests pass against the installed plugin; and ``billbridge
credentials create`` connects to a fake Tallybook served by this test, reached only through the
``BILLBRIDGE_TALLYBOOK_*`` variables the README documents, after which ``billbridge external
list`` lists its clients.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from support import ROOT

EXAMPLE = ROOT / "examples" / "billbridge-tallybook"
if str(EXAMPLE) not in sys.path:
    sys.path.insert(0, str(EXAMPLE))

from billbridge_tallybook.fake import FakeTallybook  # noqa: E402

from billbridge.testing.emulation.server import serve  # noqa: E402

#: Installs packages into a fresh virtual environment: slow, run by ``.ci/run``.
pytestmark = pytest.mark.slow

CLIENT_ID = "install-test-app"
CLIENT_SECRET = "install-test-app-secret"


@attrs.frozen
class Venv:
    path: Path
    home: Path

    def env(self, **extra: str) -> dict[str, str]:
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
            "COLUMNS": "200",
            **extra,
        }

    def run(self, program: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(self.path / "bin" / program), *args],
            capture_output=True,
            text=True,
            env=self.env(**env),
            cwd=self.home,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(
                f"{program} {' '.join(args)} exited {done.returncode}\n"
                f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}",
                pytrace=False,
            )
        return done


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    base = tmp_path_factory.mktemp("tallybook-install")
    path = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=120)
    (base / "home").mkdir()
    venv = Venv(path, base / "home")
    venv.run("pip", "install", "--quiet", "-e", str(ROOT))
    venv.run("pip", "install", "--quiet", f"{EXAMPLE}[test]")
    return venv


@pytest.fixture
def tallybook() -> Iterator[tuple[FakeTallybook, dict[str, str]]]:
    fake = FakeTallybook()
    fake.oauth.add_client(CLIENT_ID, CLIENT_SECRET)
    with serve(fake.app) as server:
        urls = fake.endpoints(server.url)
        yield (
            fake,
            {
                "BILLBRIDGE_TALLYBOOK_AUTHORIZE_URL": urls["authorize_url"],
                "BILLBRIDGE_TALLYBOOK_TOKEN_URL": urls["token_url"],
                "BILLBRIDGE_TALLYBOOK_REVOKE_URL": urls["revoke_url"],
                "BILLBRIDGE_TALLYBOOK_API_BASE_URL": urls["api_base_url"],
                "BILLBRIDGE_TALLYBOOK_CLIENT_ID": CLIENT_ID,
                "BILLBRIDGE_TALLYBOOK_CLIENT_SECRET": CLIENT_SECRET,
            },
        )


def test_billbridge_plugins_lists_the_oauth_destination(venv: Venv) -> None:
    listed: Any = json.loads(venv.run("billbridge", "plugins", "--json").stdout)
    assert listed["failures"] == []
    [tallybook] = [p for p in listed["plugins"] if p["name"] == "tallybook"]
    assert tallybook["version"] == "0.1.0"
    [destination] = tallybook["destinations"]
    assert (destination["auth"], destination["externalTables"]) == ("oauth2", ["Client", "Item"])
    panel = json.loads(venv.run("billbridge", "schema", "tallybook").stdout)
    assert panel["properties"]["defaultItem"]["x-external-table"] == "Item"


def test_the_example_passes_its_own_suites_when_installed(venv: Venv) -> None:
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
        "python", "-c", "import billbridge_tallybook; print(billbridge_tallybook.__file__)"
    )
    assert str(venv.path) in located.stdout


def test_connect_from_the_command_line_through_the_documented_variables(
    venv: Venv, tallybook: tuple[FakeTallybook, dict[str, str]]
) -> None:
    fake, env = tallybook
    process = subprocess.Popen(
        [
            str(venv.path / "bin" / "billbridge"),
            "credentials",
            "create",
            "tallybook",
            "--name",
            "Tallybook",
            "--no-browser",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=venv.env(**env),
        cwd=venv.home,
    )
    try:
        assert process.stderr is not None
        consent = ""
        for line in process.stderr:
            if line.startswith("http://"):
                consent = line.strip()
                break
        assert consent.startswith(env["BILLBRIDGE_TALLYBOOK_AUTHORIZE_URL"]), consent
        # The user approves; the fake redirects to the command's loopback listener.
        threading.Thread(
            target=lambda: httpx.get(consent, follow_redirects=True, timeout=10), daemon=True
        ).start()
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    credential = json.loads(out)
    assert (credential["status"], credential["tenantId"]) == ("COMPLETE", "acct-1")
    assert fake.oauth.stats["codes"] == 1  # exchanged with the client in the form body

    integration = json.loads(
        venv.run(
            "billbridge",
            "integrations",
            "create",
            "--name",
            "Tallybook",
            "--destination",
            "tallybook",
            "--json",
            **env,
        ).stdout
    )
    venv.run("billbridge", "integrations", "connect", integration["id"], credential["id"], **env)
    listed = json.loads(
        venv.run(
            "billbridge",
            "external",
            "list",
            integration["id"],
            "Client",
            "--search",
            "Acme",
            "--json",
            **env,
        ).stdout
    )
    assert [c["name"] for c in listed["items"]] == ["Acme Ltd"]
