"""The author guide (docs/writing-a-destination.md) keeps up with the contract and the kit.

Walks the hook specifications: every hook has a section that names each of its arguments and
shows an implementation. Every Limits field and every exception a plugin may raise is in the
guide; every section a conformance check names is a heading of the guide; the kit helpers'
signatures in the guide are the code's. (The guide's examples run in test_doc_examples.py.)
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from billbridge import errors
from billbridge.plugin import hookspecs
from billbridge.plugin.contract import Limits
from billbridge.testing.suite import DestinationConformance
from doc_examples import examples
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


def test_the_kit_section_names_every_harness_field() -> None:
    from billbridge.testing.conformance import Harness

    kit = GUIDE.split("## 9. The conformance kit", 1)[1]
    for field in attrs.fields(Harness):
        assert f"`{field.name}`" in kit, f"Harness.{field.name} is not explained"


def test_the_readme_links_the_guide() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/writing-a-destination.md" in readme


def _headings() -> set[str]:
    """Every heading of the guide (outside code blocks), without its ``#``s."""
    found = set()
    inside = False
    for line in GUIDE.splitlines():
        if line.startswith("```"):
            inside = not inside
        elif not inside and (match := re.match(r"^#{1,6} (.+)$", line)):
            found.add(match.group(1).strip())
    return found


def test_every_check_names_a_section_of_the_guide() -> None:
    headings = _headings()
    checks = [
        (name, member)
        for name, member in inspect.getmembers(DestinationConformance)
        if name.startswith("test_")
    ]
    assert len(checks) >= 24
    for name, member in checks:
        section = getattr(member, "guide_section", None)
        assert section, f"{name} names no guide section (explained_in)"
        assert section in headings, f"{name}: the guide has no heading {section!r}"


def _stubs() -> Iterator[tuple[str, ast.FunctionDef, str | None]]:
    """``(module, function stub, class name or None)`` from the guide's kit helpers block; a
    stub's module is the last ``# billbridge.x.y`` comment above it."""
    [block] = [
        e
        for e in examples(GUIDE_PATH)
        if e.language == "python" and "# billbridge.testing." in e.code and e.marker
    ]
    lines = block.code.splitlines()
    for node in ast.parse(block.code).body:
        modules = [m.group(1) for line in lines[: node.lineno - 1] if (m := MODULE.match(line))]
        if isinstance(node, ast.FunctionDef):
            yield modules[-1], node, None
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    yield modules[-1], item, node.name


MODULE = re.compile(r"^# (billbridge\.[a-z_.]+)")


def _documented(stub: ast.FunctionDef) -> list[tuple[str, str, Any]]:
    args = stub.args
    found: list[tuple[str, str, Any]] = []
    positional = [*args.posonlyargs, *args.args]
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    for arg, default in zip(positional, defaults, strict=True):
        found.append((arg.arg, "POSITIONAL_OR_KEYWORD", default))
    if args.vararg:
        found.append((args.vararg.arg, "VAR_POSITIONAL", None))
    for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        found.append((arg.arg, "KEYWORD_ONLY", default))
    if args.kwarg:
        found.append((args.kwarg.arg, "VAR_KEYWORD", None))
    return found


#: Constructor arguments of attrs classes that are state, not options.
INTERNAL = {("FaultPlan", "injected"), ("FaultPlan", "scripted"), ("FaultPlan", "lock")}


def test_the_kit_helpers_signatures_are_the_codes() -> None:
    checked = 0
    for module_name, stub, owner in _stubs():
        module = importlib.import_module(module_name)
        target = getattr(getattr(module, owner), stub.name) if owner else getattr(module, stub.name)
        where = f"{module_name}.{owner + '.' if owner else ''}{stub.name}"
        actual = [
            p
            for p in inspect.signature(target).parameters.values()
            if (owner, p.name) not in INTERNAL
        ]
        documented = _documented(stub)
        assert [name for name, _kind, _default in documented] == [p.name for p in actual], where
        for (name, kind, default), parameter in zip(documented, actual, strict=True):
            assert kind == parameter.kind.name, f"{where}({name}): {kind}"
            if parameter.default is inspect.Parameter.empty:
                assert default is None, f"{where}({name}) has no default in the code"
                continue
            assert default is not None, f"{where}({name}) has a default in the code"
            if isinstance(default, ast.Name):
                assert default.id == parameter.default.__name__, f"{where}({name})"
            else:
                assert ast.literal_eval(default) == parameter.default, f"{where}({name})"
        checked += 1
    assert checked >= 20


NUMBERS = {6: "six", 7: "seven", 8: "eight", 9: "nine", 10: "ten"}


def test_the_readme_lists_the_hooks_with_their_real_signatures() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Plugins\n", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `([a-z_]+)\(([^)]*)\)` \|", section, re.M))
    assert rows == {name: ", ".join(inspect.signature(spec).parameters) for name, spec in SPECS}
    assert f"the {NUMBERS[len(SPECS)]} hooks" in section


def test_tenant_choice_required_is_imported_from_billbridge_errors_only() -> None:
    importers = []
    for directory in ("core", "plugins", "tests", "examples"):
        for path in (ROOT / directory).rglob("*.py"):
            if ".venv" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and any(
                    alias.name == "TenantChoiceRequired" for alias in node.names
                ):
                    importers.append((str(path.relative_to(ROOT)), node.module))
    assert importers, "nothing imports it: the test would prove nothing"
    assert {module for _path, module in importers} == {"billbridge.errors"}, importers
    assert "TenantChoiceRequired" in errors.__all__
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "billbridge.errors.TenantChoiceRequired" in readme
