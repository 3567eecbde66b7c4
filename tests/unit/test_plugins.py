"""The plugin manager: entry points, blocking, failures by name, routing by destination key."""

from __future__ import annotations

import inspect
import sys
import textwrap
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from billbridge import hookimpl
from billbridge.errors import FieldError, PluginConflict, UnknownDestination
from billbridge.plugin import hookspecs
from billbridge.plugin.contract import Destination
from billbridge.plugin.manager import ENTRY_POINT_GROUP, load_plugins

PANEL = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Test",
    "description": "A test panel.",
    "type": "object",
    "properties": {},
    "additionalProperties": False,
}


def make_plugin(name: str, keys: Sequence[str], answer: str = "") -> ModuleType:
    """A plugin module serving ``keys`` whose validate_config answers with ``answer``."""
    module = ModuleType(name)

    @hookimpl
    def register_destinations() -> list[Destination]:
        return [
            Destination(key=k, title=k.title(), schema=PANEL, external_tables=("Thing",))
            for k in keys
        ]

    @hookimpl
    def validate_config(destination: str, config: Any) -> list[FieldError]:
        return [FieldError("/", f"{answer or name}:{destination}")]

    module.register_destinations = register_destinations  # type: ignore[attr-defined]
    module.validate_config = validate_config  # type: ignore[attr-defined]
    return module


def test_bundled_plugins_load_through_entry_points() -> None:
    registry = load_plugins(blocked=())
    assert registry.failures == []
    assert set(registry.destinations) == {"quickbooks", "quickbooks_sandbox", "xero"}
    assert registry.owner("quickbooks") == "quickbooks"
    assert registry.owner("quickbooks_sandbox") == "quickbooks"
    assert registry.owner("xero") == "xero"
    names = {info.name: info for info in registry.plugins()}
    assert names["quickbooks"].version == metadata.version("billbridge")
    assert "register_destinations" in names["xero"].hooks
    assert names["quickbooks"].destinations == ("quickbooks", "quickbooks_sandbox")


def test_bundled_plugins_are_declared_only_as_entry_points() -> None:
    declared = {ep.name: ep.value for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    assert declared["quickbooks"] == "billbridge_quickbooks.hooks"
    assert declared["xero"] == "billbridge_xero.hooks"
    core = Path(inspect.getfile(hookspecs)).parent
    for source in core.rglob("*.py"):
        text = source.read_text()
        assert "billbridge_quickbooks" not in text, f"{source} imports a plugin"
        assert "billbridge_xero" not in text, f"{source} imports a plugin"


def test_blocking_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BILLBRIDGE_DISABLED_PLUGINS", "xero, somethingelse")
    registry = load_plugins()
    assert "xero" not in registry.destinations
    assert "quickbooks" in registry.destinations
    with pytest.raises(UnknownDestination, match=r"unknown destination 'xero'.*quickbooks"):
        registry.destination("xero")


@pytest.fixture
def broken_entry_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Entry points for a plugin that raises on import and one with a misspelt hook."""
    (tmp_path / "bb_broken_plugin.py").write_text("raise RuntimeError('no config file found')\n")
    (tmp_path / "bb_misspelt_plugin.py").write_text(
        textwrap.dedent(
            """
            from billbridge import hookimpl

            @hookimpl
            def send_bil(destination, bill):
                return None
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    real = metadata.entry_points

    def fake_entry_points(**kwargs: Any) -> Any:
        found = list(real(**kwargs))
        if kwargs.get("group") == ENTRY_POINT_GROUP:
            found += [
                metadata.EntryPoint("broken", "bb_broken_plugin", ENTRY_POINT_GROUP),
                metadata.EntryPoint("misspelt", "bb_misspelt_plugin", ENTRY_POINT_GROUP),
            ]
        return found

    monkeypatch.setattr(metadata, "entry_points", fake_entry_points)
    yield
    for name in ("bb_broken_plugin", "bb_misspelt_plugin"):
        sys.modules.pop(name, None)


@pytest.mark.usefixtures("broken_entry_points")
def test_a_plugin_that_fails_is_reported_by_name_and_others_work() -> None:
    registry = load_plugins(blocked=())
    failures = {f.name: f.error for f in registry.failures}
    assert failures["broken"].startswith("its module 'bb_broken_plugin' could not be imported")
    assert "no config file found" in failures["broken"]
    assert failures["misspelt"] == (
        "its hooks do not match the contract: "
        "send_bil: 'send_bil' is not a billbridge hook (did you mean send_bill?)"
    )
    assert set(registry.destinations) == {"quickbooks", "quickbooks_sandbox", "xero"}
    assert {p.name for p in registry.plugins()} == {"quickbooks", "xero"}


def test_two_plugins_claiming_one_key_is_a_clear_error() -> None:
    with pytest.raises(PluginConflict, match="'alpha' and 'beta'"):
        load_plugins(
            entry_points=False,
            extra=[
                ("alpha", make_plugin("alpha", ["shared"])),
                ("beta", make_plugin("beta", ["shared"])),
            ],
        )


def test_calls_go_only_to_the_plugin_that_owns_the_key() -> None:
    registry = load_plugins(
        entry_points=False,
        extra=[("alpha", make_plugin("alpha", ["a1", "a2"])), ("beta", make_plugin("beta", ["b"]))],
    )
    assert registry.call("validate_config", "a2", config={}) == [FieldError("/", "alpha:a2")]
    assert registry.call("validate_config", "b", config={}) == [FieldError("/", "beta:b")]
    with pytest.raises(UnknownDestination):
        registry.call("validate_config", "nope", config={})


def test_register_destinations_must_return_destinations() -> None:
    module = ModuleType("wrong")

    @hookimpl
    def register_destinations() -> list[str]:
        return ["not a destination"]

    module.register_destinations = register_destinations  # type: ignore[attr-defined]
    registry = load_plugins(entry_points=False, extra=[("wrong", module)])
    assert registry.failures[0].name == "wrong"
    assert "not billbridge.plugin.contract.Destination" in registry.failures[0].error


def test_registries_do_not_leak_plugins_between_each_other() -> None:
    first = load_plugins(entry_points=False, extra=[("alpha", make_plugin("alpha", ["a"]))])
    second = load_plugins(entry_points=False)
    assert "a" in first.destinations
    assert "a" not in second.destinations


def test_optional_hooks_are_detected() -> None:
    registry = load_plugins(entry_points=False, extra=[("alpha", make_plugin("alpha", ["a"]))])
    assert registry.has_hook("a", "validate_config")
    assert not registry.has_hook("a", "send_bills")


def test_broadcast_survives_a_failing_plugin() -> None:
    calls: list[str] = []
    good = ModuleType("good")
    bad = ModuleType("bad")

    @hookimpl
    def integration_disabled(integration: Any, users_to_notify: Any, reason: str) -> None:
        calls.append(reason)

    @hookimpl(specname="integration_disabled")
    def explode(integration: Any) -> None:
        raise RuntimeError("smtp down")

    good.integration_disabled = integration_disabled  # type: ignore[attr-defined]
    bad.explode = explode  # type: ignore[attr-defined]
    registry = load_plugins(entry_points=False, extra=[("good", good), ("bad", bad)])
    registry.broadcast("integration_disabled", integration=None, users_to_notify=[], reason="r")
    assert calls == ["r"]


# --- the contract documents itself -----------------------------------------------------------

SPECS = [
    (name, fn)
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
    if hasattr(fn, "billbridge_spec")
]


def test_there_are_the_nine_hooks() -> None:
    assert {name for name, _ in SPECS} == {
        "register_destinations",
        "authenticate",
        "list_external_entities",
        "validate_config",
        "send_bill",
        "send_bills",
        "preview_bill",
        "fetch_invoice_status",
        "integration_disabled",
    }


@pytest.mark.parametrize(("name", "spec"), SPECS, ids=[n for n, _ in SPECS])
def test_every_hook_documents_every_argument_and_its_return(name: str, spec: Any) -> None:
    doc = inspect.getdoc(spec) or ""
    assert len(doc.splitlines()[0]) > 10, f"{name} has no summary line"
    for parameter in inspect.signature(spec).parameters:
        assert f":param {parameter}:" in doc, f"{name} does not document {parameter}"
    if inspect.signature(spec).return_annotation not in ("None", None):
        assert ":returns:" in doc, f"{name} does not document its return value"


@pytest.mark.parametrize(("name", "spec"), SPECS, ids=[n for n, _ in SPECS])
def test_routed_hooks_are_firstresult(name: str, spec: Any) -> None:
    options = spec.billbridge_spec
    broadcast = {"register_destinations", "integration_disabled"}
    assert options.get("firstresult", False) is (name not in broadcast)


def test_a_third_party_plugin_claiming_a_bundled_key_is_the_one_to_block() -> None:
    with pytest.raises(PluginConflict) as conflict:
        load_plugins(entry_points=True, extra=[("imposter", make_plugin("imposter", ["xero"]))])
    message = str(conflict.value)
    assert "block 'imposter' with BILLBRIDGE_DISABLED_PLUGINS=imposter" in message
    assert "BILLBRIDGE_DISABLED_PLUGINS=xero" not in message


def test_two_plugins_claiming_one_key_do_not_name_one_to_block() -> None:
    with pytest.raises(PluginConflict, match="BILLBRIDGE_DISABLED_PLUGINS=NAME"):
        load_plugins(
            entry_points=False,
            extra=[("alpha", make_plugin("alpha", ["k"])), ("beta", make_plugin("beta", ["k"]))],
        )


@pytest.mark.parametrize("raised", [SystemExit(2), KeyboardInterrupt()])
def test_a_plugin_ending_the_program_while_loading_is_left_out(raised: BaseException) -> None:
    module = ModuleType("leaving")

    @hookimpl
    def register_destinations() -> list[Destination]:
        raise raised

    module.register_destinations = register_destinations  # type: ignore[attr-defined]
    registry = load_plugins(
        entry_points=False, extra=[("leaving", module), ("fine", make_plugin("fine", ["ok"]))]
    )
    assert list(registry.destinations) == ["ok"]
    (failure,) = registry.failures
    assert failure.name == "leaving"
    assert "register_destinations failed: the plugin" in failure.error


@pytest.mark.parametrize(
    ("destination", "complaint"),
    [
        (Destination(key="", title="Empty", schema=PANEL, external_tables=()), "key '' is not"),
        (Destination(key="Bad Key", title="Bad", schema=PANEL, external_tables=()), "not valid"),
        (
            Destination(
                key="noisy",
                title="Noisy",
                schema={**PANEL, "properties": {"x": {"type": "text"}}},
                external_tables=(),
            ),
            "noisy: panel schema",
        ),
    ],
    ids=["empty-key", "bad-key", "panel"],
)
def test_a_destination_that_cannot_be_served_is_refused_by_name(
    destination: Destination, complaint: str
) -> None:
    module = ModuleType("broken")

    @hookimpl
    def register_destinations() -> list[Destination]:
        return [destination]

    module.register_destinations = register_destinations  # type: ignore[attr-defined]
    registry = load_plugins(entry_points=False, extra=[("broken", module)])
    assert registry.destinations == {}
    (failure,) = registry.failures
    assert failure.name == "broken" and complaint in failure.error, failure.error
