"""The documentation keeps up with the code: every option and command is documented."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from support import ROOT

PANELS = [
    ROOT / "schemas" / "global-config.schema.json",
    ROOT / "schemas" / "bill-entity-config.schema.json",
    ROOT / "plugins" / "quickbooks" / "billbridge_quickbooks" / "schema.json",
    ROOT / "plugins" / "xero" / "billbridge_xero" / "schema.json",
]


@pytest.mark.parametrize("panel", PANELS, ids=lambda p: p.parent.name + "/" + p.name)
def test_every_option_is_in_the_configuration_guide(panel: Path) -> None:
    guide = (ROOT / "docs" / "configuration.md").read_text()
    for option, spec in json.loads(panel.read_text())["properties"].items():
        row = re.search(rf"^\| `{re.escape(option)}` \| ([^|]*) \|", guide, re.MULTILINE)
        assert row, f"{option} ({panel.name}) is missing from docs/configuration.md"
        assert row.group(1).strip() == spec["title"], f"{option}: title differs from the schema"


def test_readme_quick_start_has_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash", 1)[1].split("```", 1)[0].strip().splitlines()
    assert len(block) == 2
    assert 'pip install -e ".[dev]"' in block[0] and "billbridge" in block[0]
    assert block[1].endswith("pytest")
    assert "docs/configuration.md" in readme


def test_ci_installs_and_tests_as_the_readme_says() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install --quiet -e ".[dev]"' in ci
    assert "python3 -m venv .venv" in ci
    assert re.search(r"^pytest\b", ci, re.MULTILINE)
    assert "BILLBRIDGE_TEST_DATABASE_URL" in ci
    # The doc examples run there: the Python ones with the default run, the shell ones (slow)
    # with the slow run.
    assert re.search(r"^pytest -p no:cacheprovider$", ci, re.MULTILINE)
    assert re.search(r"^pytest -p no:cacheprovider -m slow$", ci, re.MULTILINE)
    assert (ROOT / "tests" / "e2e" / "test_doc_examples.py").exists()
