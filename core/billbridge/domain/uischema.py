"""uiSchemas for react-jsonschema-form (rjsf), generated from the published panel schemas.

rjsf picks widgets from a uiSchema, not from custom keywords, so every panel ships with one:

* ``writeOnly`` options use the ``password`` widget, with help saying the stored value reads
  back as the secret sentinel;
* ``x-external-table`` options use the :data:`PICKER_WIDGET` widget; its ``ui:options`` name the
  table and the endpoint that lists it;
* ``x-filter-expression`` options use the :data:`FILTER_WIDGET` widget; its ``ui:options`` name
  the endpoint that checks an expression;
* ``x-m3ter-entity`` options (lists of m3ter ids) carry the entity in ``ui:options``;
* lists of labelled choices use ``checkboxes``; every object keeps its properties' order
  (``ui:order``), and examples become placeholders.

The console registers the two custom widgets by these names; any other rjsf UI can too, or map
them to a plain text input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from billbridge.domain.schemas import REDACTED

__all__ = ["FILTER_WIDGET", "PICKER_WIDGET", "ui_schema"]

PICKER_WIDGET = "externalEntityPicker"
"""The rjsf widget name for options filled from a destination table (``x-external-table``)."""

FILTER_WIDGET = "filterExpression"
"""The rjsf widget name for account filter expressions (``x-filter-expression``)."""


def ui_schema(
    schema: Mapping[str, Any],
    *,
    entity_endpoint: str | None = None,
    filter_endpoint: str | None = None,
) -> dict[str, Any]:
    """The rjsf uiSchema of an object schema (a panel).

    :param entity_endpoint: where a picker lists a table; ``{table}`` in it is replaced by the
        option's table (other placeholders, e.g. ``{credentialId}``, are left for the UI).
    :param filter_endpoint: where a filter editor checks an expression.
    """
    return _object(schema, entity_endpoint, filter_endpoint)


def _object(
    schema: Mapping[str, Any], entity_endpoint: str | None, filter_endpoint: str | None
) -> dict[str, Any]:
    properties: Mapping[str, Any] = schema.get("properties") or {}
    ui: dict[str, Any] = {"ui:order": [*properties, "*"]}
    for name, option in properties.items():
        if isinstance(option, Mapping):
            field = _field(option, entity_endpoint, filter_endpoint)
            if field:
                ui[name] = field
    return ui


def _field(
    option: Mapping[str, Any], entity_endpoint: str | None, filter_endpoint: str | None
) -> dict[str, Any]:
    field: dict[str, Any] = {}
    options: dict[str, Any] = {}
    helps: list[str] = []
    if option.get("writeOnly") is True:
        field["ui:widget"] = "password"
        helps.append(
            f"Stored encrypted and never shown: once saved it reads back as {REDACTED}; "
            "leave that as it is to keep the stored value."
        )
    table = option.get("x-external-table")
    if isinstance(table, str):
        field["ui:widget"] = PICKER_WIDGET
        options["table"] = table
        if entity_endpoint:
            options["endpoint"] = entity_endpoint.replace("{table}", table)
        helps.append(f"Pick one of the destination's {table} records (its id is saved).")
    if option.get("x-filter-expression") is True:
        field["ui:widget"] = FILTER_WIDGET
        if filter_endpoint:
            options["checkEndpoint"] = filter_endpoint
    entity = option.get("x-m3ter-entity")
    if isinstance(entity, str):
        options["m3terEntity"] = entity
        field["items"] = {"ui:placeholder": f"{entity} id"}
    if option.get("readOnly") is True:
        field["ui:readonly"] = True
    _choices_and_nesting(option, field, entity_endpoint, filter_endpoint)
    _placeholder(option, field, helps)
    if options:
        field["ui:options"] = options
    if helps:
        field["ui:help"] = " ".join(helps)
    return field


def _choices_and_nesting(
    option: Mapping[str, Any],
    field: dict[str, Any],
    entity_endpoint: str | None,
    filter_endpoint: str | None,
) -> None:
    items = option.get("items")
    if option.get("type") != "array" or not isinstance(items, Mapping):
        return
    if isinstance(items.get("oneOf"), list) and option.get("uniqueItems") is True:
        # A set of labelled choices: rjsf renders it as checkboxes, one per title.
        field["ui:widget"] = "checkboxes"
    elif items.get("type") == "object":
        field["items"] = _object(items, entity_endpoint, filter_endpoint)
    elif isinstance(items.get("x-external-table"), str):
        field["items"] = _field(items, entity_endpoint, filter_endpoint)


def _placeholder(option: Mapping[str, Any], field: dict[str, Any], helps: list[str]) -> None:
    examples = option.get("examples")
    if option.get("writeOnly") is True or not isinstance(examples, list) or not examples:
        return
    first = examples[0]
    if isinstance(first, str) and option.get("type") == "string":
        field["ui:placeholder"] = first
        if len(examples) > 1:
            helps.append("For example: " + "; ".join(str(e) for e in examples[:3]))
