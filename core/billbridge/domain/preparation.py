"""Preparing a bill for one integration: excluded lines, resolved mappings, panel defaults.

The result is what a destination plugin receives: plugins never apply the core's options
themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from billbridge.domain.models import (
    Account,
    Bill,
    BillEntityConfig,
    ExternalMapping,
    Integration,
    LineItem,
    thaw,
)
from billbridge.errors import MissingMapping
from billbridge.plugin.contract import Destination, ResolvedMappings

__all__ = [
    "MAPPED_LINE_ENTITIES",
    "apply_defaults",
    "exclude_lines",
    "mapping_keys",
    "resolve_mappings",
]

#: m3ter entities a bill line can be mapped through, and the line fields holding their ids.
MAPPED_LINE_ENTITIES: tuple[tuple[str, str], ...] = (
    ("Product", "accounting_product_id"),
    ("Product", "product_id"),
    ("Aggregation", "aggregation_id"),
    ("CompoundAggregation", "compound_aggregation_id"),
)


def exclude_lines(bill: Bill, config: BillEntityConfig) -> Bill:
    """The bill without the lines the integration excludes.

    A line is dropped when its type is excluded, when its product is excluded (the accounting
    product decides where the line has one), or when its aggregation or compound aggregation
    is excluded.
    """
    types = set(config.excluded_line_item_types)
    products = set(config.excluded_products)
    aggregations = set(config.excluded_aggregations)
    if not (types or products or aggregations):
        return bill

    def kept(line: LineItem) -> bool:
        if line.line_item_type in types:
            return False
        if line.product_for_accounting in products:
            return False
        return not (
            (line.aggregation_id and line.aggregation_id in aggregations)
            or (line.compound_aggregation_id and line.compound_aggregation_id in aggregations)
        )

    return attrs.evolve(bill, line_items=tuple(li for li in bill.line_items if kept(li)))


def mapping_keys(bill: Bill, account: Account) -> set[tuple[str, str]]:
    """Every ``(entity, id)`` a delivery of this bill may look up."""
    keys = {("Account", account.id)}
    for line in bill.line_items:
        for entity, field in MAPPED_LINE_ENTITIES:
            value = getattr(line, field)
            if value:
                keys.add((entity, value))
    return keys


def resolve_mappings(
    integration: Integration,
    destination: Destination,
    account: Account,
    candidates: Iterable[ExternalMapping],
) -> ResolvedMappings:
    """External mappings for one delivery: linked ones first, then global unless enforced.

    ``candidates`` are the stored mappings of the destination for the bill's entities (global
    and linked to any integration). With "use external mapping account code" the account's
    code stands for its mapping to the destination's account table.
    """
    enforce = integration.entity_config.enforce_external_mappings
    entries: dict[tuple[str, str, str], str] = {}
    linked: dict[tuple[str, str, str], str] = {}
    for mapping in candidates:
        if mapping.external_system != integration.destination:
            continue
        key = (mapping.m3ter_entity, mapping.m3ter_id, mapping.external_table)
        if mapping.integration_id == integration.id:
            linked[key] = mapping.external_id
        elif mapping.integration_id is None and not enforce:
            entries.setdefault(key, mapping.external_id)
    entries.update(linked)
    if integration.entity_config.use_external_mapping_account_code and account.code:
        entries[("Account", account.id, destination.account_table)] = account.code
    return ResolvedMappings(entries)


def require_account_mapping(
    integration: Integration, destination: Destination, account: Account, mappings: ResolvedMappings
) -> None:
    """Raise :class:`MissingMapping` naming what to map when the account has no mapping.

    Destinations without an account table (a webhook) need none: nothing could be mapped.
    """
    if destination.account_table not in destination.external_tables:
        return
    if mappings.get("Account", account.id, destination.account_table) is not None:
        return
    who = account.name or account.code or account.id
    where = (
        "linked to this integration" if integration.entity_config.enforce_external_mappings else ""
    )
    raise MissingMapping(
        "Account",
        account.id,
        destination.account_table,
        hint=f"account {who!r}: map it to a {destination.system_name or destination.title} "
        f"{destination.account_table}{(' ' + where) if where else ''}",
    )


def apply_defaults(config: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration with the panel's top-level defaults filled in where a value is unset.

    Plugins receive the full set of options, so an option added to a panel later works for
    integrations saved before it existed.
    """
    result: dict[str, Any] = thaw(config)
    for name, spec in (schema.get("properties") or {}).items():
        if name not in result and isinstance(spec, Mapping) and "default" in spec:
            result[name] = thaw(spec["default"])
    return result


def unique(values: Sequence[str]) -> list[str]:
    """Values in first-seen order without repeats."""
    return list(dict.fromkeys(values))
