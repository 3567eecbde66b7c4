"""``billbridge mappings …``: external mappings from m3ter entities to destination records."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from billbridge.cli.guard import EXIT_USAGE, fail, guard
from billbridge.cli.inputs import read_json_file
from billbridge.cli.output import out, print_json, table
from billbridge.cli.state import State, pass_state
from billbridge.errors import FieldError

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
    """Create every mapping in PATH, all or nothing.

    PATH holds a JSON array of objects in the published external-mapping format
    (external-mapping.schema.json, written out by `billbridge schemas export`):

    \b
      [{"m3terEntity": "Account", "m3terId": "28b1be8b-...",
        "externalSystem": "xero", "externalTable": "Contact", "externalId": "5f1c...",
        "integrationConfigId": null}]

    m3terEntity, m3terId, externalTable and externalId are required. externalSystem may be
    left out when integrationConfigId (a linked mapping) or the table decides it. Other keys
    are refused, with their place in the file; id and createdAt (what `mappings list --json`
    prints) are read-only and ignored, so a listing can be imported elsewhere.
    """
    data = read_json_file(path, "mappings file")
    if not isinstance(data, list):
        fail(f"{path} must hold a JSON array of mapping objects")
    problems = mapping_file_problems(data)
    if problems:
        fail(
            f"{path} is not a mappings file: nothing was imported",
            [f"{e.path}: {e.message}" for e in problems],
        )
    created = state.engine.mappings.create_many(
        [{k: v for k, v in item.items() if k not in READ_ONLY} for item in data]
    )
    _print_mappings(created, as_json)


#: Keys of the external-mapping format the server sets; accepted in a file and ignored.
READ_ONLY = frozenset({"id", "createdAt"})

#: Names people reach for, and the format's name for each.
_MEANT = {
    "entity": "m3terEntity",
    "entityType": "m3terEntity",
    "entity_id": "m3terId",
    "entityId": "m3terId",
    "system": "externalSystem",
    "external_system": "externalSystem",
    "destination": "externalSystem",
    "table": "externalTable",
    "external_table": "externalTable",
    "external_id": "externalId",
    "integration": "integrationConfigId",
    "integration_id": "integrationConfigId",
    "integrationId": "integrationConfigId",
}


def mapping_file_problems(items: Sequence[Any]) -> list[FieldError]:
    """What the external-mapping format refuses in a file's items, each with its pointer.

    Unknown keys first (the format's ``additionalProperties: false``), with the key that was
    probably meant; the engine checks the values of known keys when it creates the mappings.
    """
    from billbridge.domain.schemas import core_schema

    known = list(core_schema("external-mapping")["properties"])
    problems = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            problems.append(FieldError(f"/{index}", "must be a mapping object"))
            continue
        for key in item:
            if key in known:
                continue
            meant = _MEANT.get(key) or next(iter(difflib.get_close_matches(key, known, n=1)), None)
            hint = f" (did you mean {meant!r}?)" if meant else ""
            problems.append(
                FieldError(
                    f"/{index}/{key}",
                    f"is not a key of the external-mapping format{hint}; the keys are "
                    + ", ".join(k for k in known if k not in READ_ONLY),
                )
            )
    return problems


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
