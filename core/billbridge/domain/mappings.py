"""Resolving external mappings for one delivery: which stored mappings count, and which win.

Pure functions over domain objects: the store loads the candidates, these decide.
"""

from __future__ import annotations

from collections.abc import Iterable

from billbridge.domain.models import Account, Bill, ExternalMapping, Integration
from billbridge.errors import MissingMapping
from billbridge.plugin.contract import Destination, ResolvedMappings

__all__ = [
    "MAPPED_LINE_ENTITIES",
    "mapping_keys",
    "require_account_mapping",
    "resolve_mappings",
]

#: m3ter entities a bill line can be mapped through, and the line fields holding their ids.
MAPPED_LINE_ENTITIES: tuple[tuple[str, str], ...] = (
    ("Product", "accounting_product_id"),
    ("Product", "product_id"),
    ("Aggregation", "aggregation_id"),
    ("CompoundAggregation", "compound_aggregation_id"),
)


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
