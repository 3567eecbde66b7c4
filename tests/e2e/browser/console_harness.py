"""Fixtures of the browser tests: Debian's Chromium driven by Playwright (Python) against
``billbridge demo --serve`` (the API, the console and the QuickBooks and Xero emulators in one
process), screenshots, and axe-core for accessibility.

Browser builds cannot be downloaded here, so Playwright launches the system's Chromium
(``BILLBRIDGE_CHROMIUM``, default ``/usr/bin/chromium``: ``apt-get install chromium``). axe-core
comes from the console's devDependencies (``npm --prefix console ci``). Without either, the
tests are skipped locally and fail under CI, where ``.ci/run`` installs both.

Screenshots go to ``build/screenshots/`` (``BILLBRIDGE_SCREENSHOTS`` to change it), one file per
page per test; the README's are copies of some of them in ``docs/screenshots/``.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from support import ROOT

CHROMIUM = Path(os.environ.get("BILLBRIDGE_CHROMIUM", "/usr/bin/chromium"))
AXE = ROOT / "console" / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = Path(os.environ.get("BILLBRIDGE_SCREENSHOTS", ROOT / "build" / "screenshots"))
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} (.ci/run installs it)")
    pytest.skip(what)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One Chromium for the session."""
    if not CHROMIUM.exists():
        _missing(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the Python package playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield launched
        launched.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@attrs.define
class Console:
    """A running ``billbridge demo --serve``: where it is and the URL that signs in."""

    process: subprocess.Popen[str]
    url: str
    login_url: str
    log: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_console(
    home: Path, *args: str, env: dict[str, str] | None = None, command: list[str] | None = None
) -> Console:
    """Starts ``billbridge demo --serve ARGS`` (or ``command``) and waits for its login URL."""
    port = free_port()
    script = Path(sys.executable).with_name("billbridge")
    argv = command or [str(script), "demo", "--serve", "--home", str(home), *args]
    argv = [*argv, "--port", str(port)]
    log = home / "console.log"
    home.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, "BILLBRIDGE_HOME": str(home), "COLUMNS": "200", **(env or {})}
    with log.open("w") as sink:
        process = subprocess.Popen(  # the log file stays open in the child
            argv, stdout=sink, stderr=subprocess.STDOUT, text=True, env=environment
        )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        found = re.search(r"console: (http://\S+/#key=\S+)", log.read_text())
        if found:
            login = found.group(1)
            return Console(process, login.split("#", 1)[0].rstrip("/"), login, log)
        if process.poll() is not None:
            break
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"the console did not start:\n{log.read_text()}")


@pytest.fixture
def empty_console(tmp_path: Path) -> Iterator[Console]:
    """The console on an empty database, with both emulators running."""
    console = start_console(tmp_path / "home", "--empty")
    yield console
    console.stop()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh tab (its own sessionStorage) that fails the test on a script error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.set_default_timeout(20_000)
    yield tab
    # The page as the test left it (on a failure, where it stopped).
    folder = SHOTS / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(folder / "last.png"), full_page=True)
    context.close()
    assert not errors, f"script errors in the page: {errors}"


@attrs.define
class Shots:
    """Saves a full-page screenshot per step under SHOTS/<test>/."""

    folder: Path
    taken: list[Path] = attrs.field(factory=list)

    def __call__(self, page: Any, name: str, *, full: bool = True) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{len(self.taken) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=full)
        self.taken.append(path)
        return path


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Shots:
    return Shots(SHOTS / request.node.name)


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations of the page as it is now (WCAG 2 A/AA)."""
    if not AXE.exists():
        _missing(f"no axe-core at {AXE}: npm --prefix console ci")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        """async () => {
            const r = await axe.run(document, {
                runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},
            });
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
        }"""
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


def assert_accessible(page: Any, where: str) -> None:
    violations = axe_violations(page)
    assert not violations, f"{where}: accessibility violations: {violations}"
