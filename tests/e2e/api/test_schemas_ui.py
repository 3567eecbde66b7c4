"""Panels for UIs: uiSchemas for react-jsonschema-form, published schemas with unique ``$id``s
that Ajv takes in strict mode, and the secret sentinel round trip over HTTP."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_harness import Api, serve_api
from jsonschema import Draft7Validator

from billbridge import Engine, hookimpl
from billbridge.domain.schemas import CUSTOM_KEYWORDS, REDACTED, core_schema, published_panel
from billbridge.domain.uischema import FILTER_WIDGET, PICKER_WIDGET, ui_schema
from billbridge.plugin.contract import Destination
from billbridge.plugin.manager import load_plugins
from billbridge.secrets import SecretBox, generate_key
from billbridge.settings import Settings

SECRET = "s3cret-value-of-thirty-two-chars!"

VAULT_PANEL = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "$id": "https://example.com/schemas/vault.schema.json",
    "title": "Vault",
    "description": "A destination with a secret, for tests.",
    "type": "object",
    "required": ["apiToken"],
    "properties": {
        "apiToken": {
            "title": "API token",
            "description": "The token; never shown again.",
            "type": "string",
            "minLength": 16,
            "writeOnly": True,
        },
        "ledger": {
            "title": "Ledger",
            "description": "Where invoices go.",
            "type": "string",
            "x-external-table": "Ledger",
            "examples": ["Sales"],
        },
        "kinds": {
            "title": "Kinds",
            "description": "Which kinds.",
            "type": "array",
            "uniqueItems": True,
            "items": {"type": "string", "oneOf": [{"const": "A", "title": "Ay"}]},
        },
    },
    "additionalProperties": False,
}


class VaultPlugin:
    """A destination whose panel has a writeOnly secret."""

    @hookimpl
    def register_destinations(self) -> list[Destination]:
        return [
            Destination(key="vault", title="Vault", schema=VAULT_PANEL, external_tables=("Ledger",))
        ]


def test_the_ui_schema_of_a_panel() -> None:
    ui = ui_schema(
        VAULT_PANEL, entity_endpoint="/api/x/{table}", filter_endpoint="/api/filters:check"
    )
    assert ui["ui:order"] == ["apiToken", "ledger", "kinds", "*"]
    assert ui["apiToken"]["ui:widget"] == "password"
    assert REDACTED in ui["apiToken"]["ui:help"]
    assert ui["ledger"] == {
        "ui:widget": PICKER_WIDGET,
        "ui:options": {"table": "Ledger", "endpoint": "/api/x/Ledger"},
        "ui:placeholder": "Sales",
        "ui:help": "Pick one of the destination's Ledger records (its id is saved).",
    }
    assert ui["kinds"]["ui:widget"] == "checkboxes"
    config = ui_schema(core_schema("global-config"), filter_endpoint="/api/filters:check")
    assert config["accountFilter"]["ui:widget"] == FILTER_WIDGET
    assert config["accountFilter"]["ui:options"] == {"checkEndpoint": "/api/filters:check"}
    assert config["accountIds"]["ui:options"] == {"m3terEntity": "Account"}


def test_tracking_categories_get_a_nested_ui_schema(tmp_path: Path) -> None:
    with Engine(f"sqlite:///{tmp_path / 'bb.db'}") as engine:
        forms = engine.forms("xero", entity_endpoint="/e/{table}")
    nested = forms["destinationConfig"]["uiSchema"]["trackingCategories"]["items"]
    assert nested["ui:order"] == ["name", "option", "*"]
    assert nested["name"]["ui:options"] == {
        "table": "TrackingCategory",
        "endpoint": "/e/TrackingCategory",
    }


def test_published_schemas_have_unique_ids_and_declare_the_keywords(tmp_path: Path) -> None:
    with Engine(f"sqlite:///{tmp_path / 'bb.db'}") as engine:
        schemas = engine.published_schemas()
    ids = [s["$id"] for s in schemas.values()]
    assert len(ids) == len(set(ids))
    assert schemas["destinations/quickbooks_sandbox"]["$id"].endswith(
        "/destinations/quickbooks_sandbox.schema.json"
    )
    node = core_schema("destination-panel.meta")["definitions"]["node"]["properties"]
    assert set(CUSTOM_KEYWORDS) <= set(node)


def test_a_published_secret_accepts_the_sentinel_and_still_checks_new_values() -> None:
    validator = Draft7Validator(published_panel("vault", VAULT_PANEL))
    assert validator.is_valid({"apiToken": REDACTED})
    assert validator.is_valid({"apiToken": SECRET})
    assert not validator.is_valid({"apiToken": "short"})
    assert not validator.is_valid({})


@pytest.fixture
def vault(tmp_path: Path, sqlite_url: str) -> Iterator[tuple[Engine, Api]]:
    engine = Engine(
        sqlite_url,
        settings=Settings(home=tmp_path),
        plugins=load_plugins(entry_points=True, extra=[("vault", VaultPlugin())], blocked=()),
        secret_box=SecretBox([generate_key()]),
    )
    api, server = serve_api(engine)
    try:
        yield engine, api
    finally:
        server.stop()
        api.http.close()
        engine.close()


def test_a_secret_round_trips_as_the_sentinel(vault: tuple[Engine, Api]) -> None:
    engine, api = vault
    created = api.post(
        "/api/integrations",
        {"name": "Vault", "destination": "vault", "destinationConfig": {"apiToken": SECRET}},
        expect=201,
    )
    assert created["destinationConfig"] == {"apiToken": REDACTED}
    read = api.get(f"/api/integrations/{created['id']}", key=api.read_key)
    panel = api.get("/api/destinations/vault/schema")
    assert list(Draft7Validator(panel).iter_errors(read["destinationConfig"])) == []
    again = api.put(
        f"/api/integrations/{read['id']}",
        {"version": read["version"], "destinationConfig": read["destinationConfig"]},
    )
    assert again["destinationConfig"] == {"apiToken": REDACTED}
    stored = engine.integrations.get(read["id"]).destination_config
    assert engine.config_secrets.unseal(stored) == {"apiToken": SECRET}
    forms = api.get("/api/destinations/vault")["forms"]
    assert forms["destinationConfig"]["uiSchema"]["apiToken"]["ui:widget"] == "password"
    everything = "\n".join(api.answers)
    assert SECRET not in everything and "$sealed" not in everything


def _ajv_modules(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    if not (shutil.which("node") and shutil.which("npm")):
        return None
    where = tmp_path_factory.mktemp("ajv")
    try:
        subprocess.run(
            ["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(where),
             "ajv@8", "ajv-formats@3"],
            check=True, capture_output=True, timeout=180,
        )  # fmt: skip
    except (subprocess.SubprocessError, OSError):
        return None
    return where / "node_modules"


def test_ajv_in_strict_mode_takes_every_schema(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    modules = _ajv_modules(tmp_path_factory)
    if modules is None:
        pytest.skip("node and the npm registry are needed to run Ajv")
    with Engine(f"sqlite:///{tmp_path / 'bb.db'}") as engine:
        schemas = engine.published_schemas()
    vault = published_panel("vault", VAULT_PANEL)
    documents: list[dict[str, Any]] = [
        {"id": vault["$id"], "data": {"apiToken": REDACTED}, "valid": True},
        {"id": vault["$id"], "data": {"apiToken": "short"}, "valid": False},
        {"id": schemas["destinations/xero"]["$id"], "data": {"invoiceStatus": "DRAFT"}, "valid": True},
        {"id": schemas["global-config"]["$id"], "data": {"name": "X", "accountFilter": "a == 1"},
         "valid": True},
    ]  # fmt: skip
    given = tmp_path / "input.json"
    given.write_text(
        json.dumps(
            {
                "keywords": CUSTOM_KEYWORDS,
                "schemas": [*schemas.values(), vault],
                "documents": documents,
            },
            default=str,
        )
    )
    done = subprocess.run(
        ["node", str(Path(__file__).with_name("ajv_check.js")), str(given)],
        env={"NODE_PATH": str(modules), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok"
