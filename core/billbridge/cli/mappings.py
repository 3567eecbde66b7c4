"""``billbridge mappings …``: external mappings from m3ter entities to destination records."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from billbridge.cli.guard import EXIT_USAGE, fail, guard
from billbridge.cli.inputs import read_json_file
from billbridge.cli.output import out, print_json, table
from billbridge.cli.state import State, pass_state

__all__ = ["mappings"]


def _mapping_dict(mapping: Any) -> dict[str, Any]:
    return {
        "id": mapping.id,
        "m3terEntity": mapping.m3ter_entity,
        "m3terId": mapping.m3ter_id,
        "externalSystem": mapping.external_system,
        "externalTable": mapping.external_table,
        "externalId": mapping.external_id,
        "integrationConfigId": mapping.integration_id,
        "createdAt": mapping.created_at,
    }


def _print_mappings(items: Sequence[Any], as_json: bool) -> None:
    if as_json:
        print_json([_mapping_dict(m) for m in items])
        return
    shown = table(
        "External mappings",
        ("id", "entity", "entity id", "system", "table", "external id", "integration"),
    )
    for m in items:
        shown.add_row(
            m.id,
            m.m3ter_entity,
            m.m3ter_id,
            m.external_system,
            m.external_table,
            m.external_id,
            m.integration_id or "(global)",
        )
    out.print(shown)


@click.group()
def mappings() -> None:
    """Map m3ter entities (accounts, products...) to records in a destination."""


@mappings.command("create")
@click.option("--entity", required=True, help="m3ter entity: Account, Product, Aggregation...")
@click.option("--entity-id", required=True, help="The m3ter id.")
@click.option("--table", "external_table", required=True, help="External table: Customer...")
@click.option("--external-id", required=True, help="The record's id in the destination.")
@click.option("--system", "external_system", help="Destination key (often inferred).")
@click.option("--integration", "integration_id", help="Link to one integration.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
@guard
def mappings_create(
    state: State,
    entity: str,
    entity_id: str,
    external_table: str,
    external_id: str,
    external_system: str | None,
    integration_id: str | None,
    as_json: bool,
) -> None:
    """Create one external mapping."""
    mapping = state.engine.mappings.create(
        entity=entity,
        entity_id=entity_id,
        external_table=external_table,
        external_id=external_id,
        external_system=external_system,
        integration_id=integration_id,
    )
    _print_mappings([mapping], as_json)


@mappings.command("import")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
@guard
def mappings_import(state: State, path: Path, as_json: bool) -> None:
    """Create every mapping in a JSON array file, all or nothing."""
    data = read_json_file(path, "mappings file")
    if not isinstance(data, list) or not all(isinstance(m, Mapping) for m in data):
        fail(f"{path} must hold a JSON array of mapping objects")
    created = state.engine.mappings.create_many(data)
    _print_mappings(created, as_json)


@mappings.command("list")
@click.option("--entity", help="Only this m3ter entity type.")
@click.option("--entity-id", help="Only this m3ter id.")
@click.option("--system", "external_system", help="Only this destination.")
@click.option("--table", "external_table", help="Only this external table.")
@click.option("--external-id", help="Only mappings to this external id (needs --system, --table).")
@click.option("--integration", "integration_id", help="Only mappings linked to this integration.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
@guard
def mappings_list(
    state: State,
    entity: str | None,
    entity_id: str | None,
    external_system: str | None,
    external_table: str | None,
    external_id: str | None,
    integration_id: str | None,
    as_json: bool,
) -> None:
    """List external mappings (filters combine)."""
    if external_id is not None:
        if not (external_system and external_table):
            fail("--external-id needs --system and --table", code=EXIT_USAGE)
        items = state.engine.mappings.find_external(external_system, external_table, external_id)
    else:
        items = state.engine.mappings.list(
            entity=entity,
            entity_id=entity_id,
            external_system=external_system,
            external_table=external_table,
            integration_id=integration_id,
        )
    _print_mappings(items, as_json)


@mappings.command("delete")
@click.argument("mapping_id")
@pass_state
@guard
def mappings_delete(state: State, mapping_id: str) -> None:
    """Delete one external mapping."""
    state.engine.mappings.delete(mapping_id)
    out.print(f"deleted mapping {mapping_id}", markup=False)
