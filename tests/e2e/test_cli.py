"""The ``billbridge`` command line: readable tables, ``--json``, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from billbridge.cli import main


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("BILLBRIDGE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("BILLBRIDGE_DATABASE_URL", raising=False)
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(main, list(args), input=input, catch_exceptions=False)

    return invoke


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output + (result.stderr or "")
    return result.output


def test_plugins_table_and_json(run: Any) -> None:
    assert "quickbooks_sandbox" in ok(run("plugins"))
    data = json.loads(ok(run("plugins", "--json")))
    by_name = {p["name"]: p for p in data["plugins"]}
    xero = by_name["xero"]["destinations"][0]
    assert xero["key"] == "xero"
    assert xero["limits"]["batch_size"] == 50
    assert xero["schema"]["title"] == "Xero"
    assert "validate_config" in by_name["quickbooks"]["hooks"]
    assert by_name["quickbooks"]["version"]
    assert data["failures"] == []


def test_schema_and_export(run: Any, tmp_path: Path) -> None:
    schema = json.loads(ok(run("schema", "quickbooks")))
    assert schema["properties"]["creditMemoItem"]["x-external-table"] == "Item"
    ok(run("schemas", "export", str(tmp_path / "out")))
    exported = sorted(
        p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.json")
    )
    assert "destinations/xero.schema.json" in exported
    assert "bill.schema.json" in exported
    assert "destination-panel.meta.schema.json" in exported
    assert len(exported) == 7 + 3


def test_integration_lifecycle(run: Any, tmp_path: Path) -> None:
    config = tmp_path / "dest.json"
    config.write_text(json.dumps({"invoiceStatus": "AUTHORISED"}))
    created = json.loads(
        ok(
            run(
                "integrations",
                "create",
                "--name",
                "Xero UK",
                "--destination",
                "xero",
                "--config",
                '{"accountFilter": "address.country == UK"}',
                "--destination-config",
                f"@{config}",
                "--json",
            )
        )
    )
    assert created["destinationConfig"] == {"invoiceStatus": "AUTHORISED"}
    assert created["config"]["accountFilter"] == "address.country == UK"
    listed = ok(run("integrations", "list"))
    assert created["id"] in listed and "Xero UK" in listed
    updated = json.loads(
        ok(
            run(
                "integrations",
                "update",
                created["id"],
                "--version",
                "1",
                "--name",
                "Xero GB",
                "--json",
            )
        )
    )
    assert updated["version"] == 2
    stale = run("integrations", "update", created["id"], "--version", "1", "--name", "again")
    assert stale.exit_code == 1
    assert "changed by someone else" in stale.stderr
    ok(run("integrations", "disable", created["id"]))
    assert json.loads(ok(run("integrations", "show", created["id"])))["enabled"] is False
    ok(run("integrations", "enable", created["id"]))
    ok(run("integrations", "delete", created["id"]))
    assert json.loads(ok(run("integrations", "list", "--json"))) == []


def test_mapping_commands(run: Any, tmp_path: Path) -> None:
    created = json.loads(
        ok(
            run(
                "mappings",
                "create",
                "--entity",
                "Account",
                "--entity-id",
                "a1",
                "--table",
                "Contact",
                "--external-id",
                "c1",
                "--json",
            )
        )
    )
    assert created[0]["externalSystem"] == "xero"
    bulk = tmp_path / "mappings.json"
    bulk.write_text(
        json.dumps(
            [
                {
                    "m3terEntity": "Product",
                    "m3terId": "p1",
                    "externalSystem": "quickbooks",
                    "externalTable": "Item",
                    "externalId": "7",
                },
                {
                    "m3terEntity": "Product",
                    "m3terId": "p2",
                    "externalSystem": "quickbooks",
                    "externalTable": "Item",
                    "externalId": "8",
                },
            ]
        )
    )
    assert len(json.loads(ok(run("mappings", "import", str(bulk), "--json")))) == 2
    found = json.loads(
        ok(
            run(
                "mappings",
                "list",
                "--system",
                "quickbooks",
                "--table",
                "Item",
                "--external-id",
                "8",
                "--json",
            )
        )
    )
    assert [m["m3terId"] for m in found] == ["p2"]
    duplicate = run(
        "mappings",
        "create",
        "--entity",
        "Account",
        "--entity-id",
        "a1",
        "--table",
        "Contact",
        "--external-id",
        "c9",
    )
    assert duplicate.exit_code == 1
    assert duplicate.stderr.startswith("error: external mapping already exists")
    ok(run("mappings", "delete", created[0]["id"]))
    assert len(json.loads(ok(run("mappings", "list", "--json")))) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["integrations", "create", "--name", "x", "--destination", "sage"],
            "unknown destination 'sage'",
        ),
        (
            ["integrations", "create", "--name", "x", "--destination", "xero", "--config", "{bad"],
            "--config is not valid JSON",
        ),
        (
            [
                "integrations",
                "create",
                "--name",
                "x",
                "--destination",
                "xero",
                "--config",
                '{"accountFilter": "a == (b"}',
            ],
            "/config/accountFilter: unexpected",
        ),
        (
            [
                "integrations",
                "create",
                "--name",
                "x",
                "--destination",
                "quickbooks",
                "--destination-config",
                '{"sendZeroQuantityLines": "yes"}',
            ],
            "/destinationConfig/sendZeroQuantityLines",
        ),
        (["integrations", "show", "nope"], "integration nope not found"),
        (["mappings", "import", "/no/such/file.json"], "cannot read mappings file"),
        (["schema", "sage"], "unknown destination 'sage'"),
    ],
)
def test_bad_input_is_one_clear_error_and_nothing_is_saved(
    run: Any, args: Sequence[str], message: str
) -> None:
    result = run(*args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert json.loads(ok(run("integrations", "list", "--json"))) == []


def test_db_upgrade(run: Any) -> None:
    first = ok(run("db", "upgrade"))
    assert "upgraded (empty) → " in first  # every migration applied
    assert "already at" in ok(run("db", "upgrade"))


def test_the_installed_command_never_shows_a_traceback(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "BILLBRIDGE_HOME": str(tmp_path),
        "BILLBRIDGE_DATABASE_URL": "nosuchdb://x",
    }
    script = Path(sys.executable).with_name("billbridge")
    result = subprocess.run(
        [str(script), "integrations", "list"], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error:")


def test_emulator_command_names_the_installed_emulators(run: Any) -> None:
    result = run("emulator", "sage", "--port", "1")
    assert result.exit_code == 1
    assert "no emulator named 'sage'; installed: quickbooks, xero" in result.stderr


@pytest.fixture
def a_broken_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed plugin whose send_bill misspells an argument (entry point ``broken``)."""
    from importlib import metadata

    from billbridge.plugin.manager import ENTRY_POINT_GROUP

    (tmp_path / "bb_cli_broken_plugin.py").write_text(
        "from billbridge import hookimpl\n\n\n"
        "@hookimpl\n"
        "def send_bill(connection, bill, previous, idempotencykey):\n"
        "    return None\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    real = metadata.entry_points

    def entry_points(**kwargs: Any) -> Any:
        found = list(real(**kwargs))
        if kwargs.get("group") == ENTRY_POINT_GROUP:
            found.append(metadata.EntryPoint("broken", "bb_cli_broken_plugin", ENTRY_POINT_GROUP))
        return found

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    monkeypatch.delitem(sys.modules, "bb_cli_broken_plugin", raising=False)


@pytest.mark.usefixtures("a_broken_plugin")
def test_plugins_exits_non_zero_and_says_why_a_plugin_did_not_load(run: Any) -> None:
    shown = run("plugins")
    assert shown.exit_code == 1
    assert "quickbooks_sandbox" in shown.output  # the others are listed, and work
    assert (
        "plugin 'broken' not loaded: its hooks do not match the contract: send_bill: argument "
        "'idempotencykey' is not in the contract (did you mean 'idempotency_key'?)"
    ) in shown.stderr
    assert "1 plugin(s) could not be loaded ('broken')" in shown.stderr
    assert "BILLBRIDGE_DISABLED_PLUGINS=broken" in shown.stderr
    for pluggy_words in ("hookimpl definition", "can not be found in the hookspec", "Plugin '"):
        assert pluggy_words not in shown.stderr
    as_json = run("plugins", "--json")
    assert as_json.exit_code == 1
    failures = json.loads(as_json.stdout)["failures"]
    assert [f["name"] for f in failures] == ["broken"]


def test_plugins_exits_zero_when_every_plugin_loads(run: Any) -> None:
    assert run("plugins").exit_code == 0


MAPPING = {
    "m3terEntity": "Product",
    "m3terId": "p1",
    "externalSystem": "quickbooks",
    "externalTable": "Item",
    "externalId": "7",
}


def test_mappings_import_refuses_keys_the_format_does_not_have(run: Any, tmp_path: Path) -> None:
    bulk = tmp_path / "mappings.json"
    wrong = {**MAPPING, "m3terId": "p2", "colour": "blue"}
    del wrong["m3terId"]
    wrong["entityId"] = "p2"
    bulk.write_text(json.dumps([MAPPING, wrong]))
    refused = run("mappings", "import", str(bulk))
    assert refused.exit_code == 1
    assert "is not a mappings file: nothing was imported" in refused.stderr
    assert "/1/entityId: is not a key of the external-mapping format (did you mean 'm3terId'?)" in (
        refused.stderr
    )
    assert "/1/colour: is not a key of the external-mapping format;" in refused.stderr
    assert "the keys are m3terEntity, m3terId, externalSystem" in refused.stderr
    assert json.loads(ok(run("mappings", "list", "--json"))) == []


def test_mappings_import_takes_what_mappings_list_prints(run: Any, tmp_path: Path) -> None:
    bulk = tmp_path / "mappings.json"
    bulk.write_text(json.dumps([MAPPING]))
    listed = json.loads(ok(run("mappings", "import", str(bulk), "--json")))
    assert set(listed[0]) == {*MAPPING, "id", "createdAt", "integrationConfigId"}
    ok(run("mappings", "delete", listed[0]["id"]))
    # A listing (with its read-only id and createdAt) is a valid file.
    bulk.write_text(json.dumps(listed))
    again = json.loads(ok(run("mappings", "import", str(bulk), "--json")))
    assert again[0]["id"] != listed[0]["id"]
    assert again[0]["externalId"] == "7"


def test_mappings_import_documents_its_format(run: Any) -> None:
    shown = ok(run("mappings", "import", "--help"))
    for text in ("external-mapping", '"m3terEntity": "Account"', "integrationConfigId", "refused"):
        assert text in shown


def test_integrations_validate_checks_the_name_the_form_gives(run: Any) -> None:
    named = run("integrations", "validate", "--destination", "xero", "--config", '{"name": "UK"}')
    assert named.exit_code == 0, named.stderr
    blank = run("integrations", "validate", "--destination", "xero", "--config", '{"name": "  "}')
    assert blank.exit_code == 1
    assert "/config/name: must not be blank" in blank.stderr
    nameless = run("integrations", "validate", "--destination", "xero")
    assert nameless.exit_code == 1
    assert "/config/name: is required" in nameless.stderr
    assert run("integrations", "validate", "--destination", "xero", "--name", "UK").exit_code == 0
    both = run(
        "integrations",
        "validate",
        "--destination",
        "xero",
        "--name",
        "A",
        "--config",
        '{"name": "B"}',
    )
    assert both.exit_code == 1
    assert "--name 'A' and the name in --config ('B') differ" in both.stderr
