"""The author guide (docs/writing-a-destination.md) keeps up with the contract.

Walks the hook specifications: every hook has a section that names each of its arguments and
shows an implementation. Every Limits field and every exception a plugin may raise is in the
guide, and the guide's Python examples run (so their imports and calls match the real API).
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import attrs
import pytest

from billbridge import errors
from billbridge.plugin import hookspecs
from billbridge.plugin.contract import Limits
from support import ROOT

GUIDE_PATH = ROOT / "docs" / "writing-a-destination.md"
GUIDE = GUIDE_PATH.read_text(encoding="utf-8")

SPECS = [
    (name, function)
    for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
    if hasattr(function, f"{hookspecs.PROJECT}_spec")
]


def section(heading: str) -> str:
    """The guide's text under ``### heading`` up to the next heading of that level or above."""
    match = re.search(rf"^### {re.escape(heading)}\n(.*?)(?=^#{{1,3}} )", GUIDE, re.M | re.S)
    assert match, f"the guide has no section '### {heading}'"
    return match.group(1)


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, re.M | re.S)


def test_the_hooks_are_the_ones_the_guide_walks_through() -> None:
    assert len(SPECS) == 9
    headings = re.findall(r"^### `([a-z_]+)`$", GUIDE, re.M)
    assert headings == [
        "register_destinations",
        "authenticate",
        "list_external_entities",
        "validate_config",
        "send_bill",
        "send_bills",
        "preview_bill",
        "fetch_invoice_status",
        "integration_disabled",
    ]
    assert set(headings) == {name for name, _ in SPECS}


@pytest.mark.parametrize(("name", "spec"), SPECS, ids=[name for name, _ in SPECS])
def test_every_hook_is_documented_with_its_arguments_and_an_example(name: str, spec: Any) -> None:
    text = section(f"`{name}`")
    for argument in inspect.signature(spec).parameters:
        assert f"* `{argument}`:" in text, f"{name}: argument {argument} is not documented"
    examples = python_blocks(text)
    assert any(f"def {name}(" in block for block in examples), f"{name} has no example"
    assert "@hookimpl" in "".join(examples)
    if inspect.signature(spec).return_annotation not in ("None", None):
        assert "Returns" in text or "returns" in text, f"{name}: what it returns is not said"


def test_every_limit_is_explained() -> None:
    for field in attrs.fields(Limits):
        assert f"| `{field.name}` |" in GUIDE, f"Limits.{field.name} is not in the guide"


def test_every_exception_a_plugin_raises_is_in_the_status_table() -> None:
    table = GUIDE.split("## 5. Exceptions and run statuses", 1)[1].split("\n## ", 1)[0]
    raised = [
        name
        for name in errors.__all__
        if isinstance(getattr(errors, name), type)
        and issubclass(getattr(errors, name), errors.DestinationError)
    ]
    assert len(raised) >= 9
    for name in raised:
        assert f"`{name}" in table, f"{name} is missing from the exceptions table"


def test_the_examples_run_against_the_real_api(monkeypatch: pytest.MonkeyPatch) -> None:
    # The guide's running example is the webhook plugin: its panel is loaded from its package.
    monkeypatch.syspath_prepend(str(ROOT / "examples" / "billbridge-webhook"))
    # In order, in one namespace: later examples use what earlier ones defined (invoice_body,
    # FakeDestination), as a reader would.
    namespace: dict[str, Any] = {"__name__": "writing_a_destination_examples"}
    blocks = python_blocks(GUIDE)
    assert len(blocks) >= 12
    for number, block in enumerate(blocks, 1):
        try:
            exec(compile(block, f"{GUIDE_PATH.name} example {number}", "exec"), namespace)
        except Exception as exc:
            pytest.fail(f"example {number} does not run: {exc!r}\n{block}")
    assert namespace["register_destinations"]()[0].key == "webhook"


def test_the_kit_section_names_every_harness_field() -> None:
    from billbridge.testing.conformance import Harness

    kit = GUIDE.split("## 9. The conformance kit", 1)[1]
    for field in attrs.fields(Harness):
        assert f"`{field.name}`" in kit, f"Harness.{field.name} is not explained"


def test_the_readme_links_the_guide() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/writing-a-destination.md" in readme
