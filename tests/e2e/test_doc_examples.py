"""Every code example in the README, docs/ and the examples' READMEs runs (or says why not).

* Python blocks run in order, in one namespace per document, as a reader would paste them,
  in a scratch directory holding the files examples name (``bill.json``...) and with a
  temporary ``BILLBRIDGE_HOME``.
* A block marked ``<!-- doc-test: pytest -->`` is, with the document's Python blocks before it,
  a test module: pytest runs it against the example plugins as installed (their entry points
  made visible as an installed distribution's would be), and it must pass.
* Shell blocks run in order in one ``bash -euo pipefail`` per document, with this environment's
  ``billbridge`` first on ``PATH``; they start emulators and processes, so that test is
  ``slow`` (``.ci/run`` runs it). Here every shell block is at least parsed by ``bash -n``.
* JSON and TOML blocks parse; every fence names its language.

Markers (``skip``, ``elsewhere``, with a reason) are documented in the README's Development
section and parsed by ``tests/doc_examples.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from doc_examples import DATA, DOCUMENTS, MARKERS, PYTHON, SHELL, Example, examples, runnable
from support import ROOT, SAMPLES

pytest_plugins = ["pytester"]

ALL = [example for document in DOCUMENTS for example in examples(document)]
EXAMPLE_PLUGINS = {
    "billbridge-webhook": ("webhook", "billbridge_webhook.hooks"),
    "billbridge-tallybook": ("tallybook", "billbridge_tallybook.hooks"),
}
#: Files the examples name, as a reader would have them: m3ter's documents.
WORKSPACE_FILES = {
    "bill.json": "bill-acme-uk-2025-09.json",
    "account.json": "account-acme-uk.json",
    "us-bill.json": "bill-globex-us-2026-09.json",
    "us-account.json": "account-globex-us.json",
}
#: The most examples that may be skipped outright: keep it few.
MAX_SKIPPED = 3


def _id(document: Path) -> str:
    return str(document.relative_to(ROOT))


def _with(languages: frozenset[str]) -> list[Path]:
    return [d for d in DOCUMENTS if any(True for _ in runnable(d, languages))]


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch directory with the files the examples name, and a fresh billbridge home."""
    work = tmp_path / "work"
    work.mkdir()
    for name, sample in WORKSPACE_FILES.items():
        shutil.copy(SAMPLES / sample, work / name)
    monkeypatch.chdir(work)
    monkeypatch.setenv("BILLBRIDGE_HOME", str(tmp_path / "home"))
    for name in [n for n in os.environ if n.startswith("BILLBRIDGE_") and n != "BILLBRIDGE_HOME"]:
        monkeypatch.delenv(name)
    for example in EXAMPLE_PLUGINS:
        monkeypatch.syspath_prepend(str(ROOT / "examples" / example))
    return work


# --- every fence ------------------------------------------------------------------------------------


def test_every_fence_names_its_language_and_every_marker_its_reason() -> None:
    assert len(ALL) >= 35  # guards against a parser that finds nothing
    problems = []
    for example in ALL:
        if not example.language:
            problems.append(f"{example.where}: name the fence's language (text, python, bash...)")
        if example.marker is not None and example.marker not in MARKERS:
            problems.append(f"{example.where}: unknown doc-test marker {example.marker!r}")
        if example.marker in ("skip", "elsewhere") and not example.reason:
            problems.append(f"{example.where}: say why, in parentheses, after {example.marker}")
        if example.marker == "pytest" and example.language not in PYTHON:
            problems.append(f"{example.where}: only Python blocks run as test modules")
    assert problems == []


def test_few_examples_are_skipped() -> None:
    skipped = [e.where for e in ALL if e.marker == "skip"]
    assert len(skipped) <= MAX_SKIPPED, skipped


@pytest.mark.parametrize("example", [e for e in ALL if e.language in DATA], ids=lambda e: e.where)
def test_data_examples_parse(example: Example) -> None:
    if example.language == "json":
        json.loads(example.code)
    else:
        tomllib.loads(example.code)


@pytest.mark.parametrize(
    "example",
    [e for d in DOCUMENTS for e in runnable(d, SHELL)],
    ids=lambda e: e.where,
)
def test_shell_examples_are_valid_bash(example: Example) -> None:
    checked = subprocess.run(
        ["bash", "-n"], input=example.code, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stderr


# --- Python ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("document", _with(PYTHON), ids=_id)
def test_python_examples_run(document: Path, workspace: Path, tmp_path: Path) -> None:
    # An example's README is read by someone who installed that example.
    example = document.parent.name if document.parent.parent == ROOT / "examples" else None
    if example in EXAMPLE_PLUGINS:
        installed = tmp_path / "installed"
        installed.mkdir()
        _installed(installed, only=example)
        sys.path.insert(0, str(installed))
    namespace: dict[str, Any] = {"__name__": f"doc_examples_{document.stem}"}
    try:
        for example in runnable(document, PYTHON):
            try:
                exec(compile(example.code, example.where, "exec"), namespace)
            except Exception as exc:
                pytest.fail(f"{example.where} does not run: {exc!r}\n{example.code}")
    finally:
        for value in namespace.values():
            if type(value).__name__ == "Engine" and hasattr(value, "close"):
                value.close()
        if example in EXAMPLE_PLUGINS:
            sys.path.remove(str(installed))


def _installed(directory: Path, only: str | None = None) -> None:
    """Make the example plugins' entry points visible as if they were installed: a
    ``*.dist-info`` directory per example in ``directory`` (to put on ``sys.path``), as pip
    writes it."""
    for example, (key, module) in EXAMPLE_PLUGINS.items():
        if only is not None and example != only:
            continue
        info = directory / f"{example.replace('-', '_')}-0.1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {example}\nVersion: 0.1.0\n", encoding="utf-8"
        )
        (info / "entry_points.txt").write_text(
            f"[billbridge.destinations]\n{key} = {module}\n", encoding="utf-8"
        )


PYTEST_BLOCKS = [
    (document, example)
    for document in DOCUMENTS
    for example in examples(document)
    if example.marker == "pytest"
]


@pytest.mark.parametrize(
    ("document", "block"), PYTEST_BLOCKS, ids=[b.where for _d, b in PYTEST_BLOCKS]
)
@pytest.mark.usefixtures("workspace")
def test_pytest_examples_pass(document: Path, block: Example, pytester: pytest.Pytester) -> None:
    # The guide's fake (section 8) and conformance class (section 9) together, as written,
    # against the webhook example loaded through its entry point.
    before = [e for e in runnable(document, PYTHON) if e.line <= block.line]
    source = "\n\n".join(e.code for e in before)
    pytester.makepyfile(**{"test_doc_example": source})
    _installed(pytester.path)
    pytester.syspathinsert()
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q", "-rs")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0, result.stdout.str()
    assert outcomes.get("passed", 0) >= 15, result.stdout.str()


# --- shell ----------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def shell(workspace: Path, tmp_path: Path) -> dict[str, str]:
    """The environment shell examples run in: this environment's programs first on PATH."""
    bin_dir = str(Path(sys.executable).parent)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("BILLBRIDGE_") or k == "BILLBRIDGE_HOME"
    }
    env |= {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "BILLBRIDGE_HOME": str(tmp_path / "shell-home"),
        "PORT": str(_free_port()),
        "COLUMNS": "200",
        "PYTHONPATH": os.pathsep.join(str(ROOT / "examples" / e) for e in EXAMPLE_PLUGINS),
    }
    return env


@pytest.mark.slow
@pytest.mark.parametrize("document", _with(SHELL), ids=_id)
def test_shell_examples_run(document: Path, shell: dict[str, str], workspace: Path) -> None:
    script = ["set -euo pipefail"]
    for example in runnable(document, SHELL):
        script += [f"echo '>>> {example.where}' >&2", example.code]
    process = subprocess.Popen(
        ["bash", "-c", "\n".join(script)],
        cwd=workspace,
        env=shell,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the examples' background processes go with it
    )
    try:
        out, err = process.communicate(timeout=300)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        if process.poll() is None:
            process.wait(10)
    blocks = [line for line in err.splitlines() if line.startswith(">>> ")]
    failed = blocks[-1][4:] if blocks else "?"
    assert process.returncode == 0, (
        f"the example at {failed} failed (exit {process.returncode})\n"
        f"stdout:\n{out[-4000:]}\nstderr:\n{err[-4000:]}"
    )
