"""Routing: does an integration take a bill version? One decision per integration, with a reason.

Pure functions over domain objects; the engine records every decision (a run, or a skip).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from billbridge.domain import filter_expr
from billbridge.domain.models import Account, Bill, Integration, converter

__all__ = ["Decision", "Routed", "account_document", "route", "route_many"]


@attrs.frozen
class Decision:
    """``take`` is True when the integration should deliver the bill; else ``reason`` says why."""

    take: bool
    reason: str | None = None


TAKE = Decision(True)


def account_document(account: Account) -> dict[str, Any]:
    """The account as the filter language sees it: m3ter's JSON (aliases resolved there)."""
    document: dict[str, Any] = converter.unstructure(account)
    return document


def route(
    bill: Bill,
    account: Account,
    integration: Integration,
    *,
    delivered_version: int | None = None,
    queued_versions: frozenset[int] = frozenset(),
    account_json: dict[str, Any] | None = None,
) -> Decision:
    """Decide whether ``integration`` takes this bill version.

    In order: the integration is enabled and takes bills; only-send-on-approval; the account
    allow-list, then the deny-list (the deny-list wins over everything); the account filter;
    then the delivery ledger: a version already delivered (or a newer one) is not queued again,
    nor is one already waiting, nor one older than a version waiting.

    :param delivered_version: the bill version the ledger records for this integration.
    :param queued_versions: versions of this bill with a run still open for this integration.
    """
    if not integration.enabled:
        return Decision(False, "the integration is disabled")
    if integration.entity_type != "Bill":
        return Decision(False, f"the integration takes {integration.entity_type}, not bills")
    config = integration.config
    if integration.entity_config.only_send_on_approval and not bill.is_approved:
        return Decision(
            False,
            f"the bill is {bill.status or 'not approved'} and the integration "
            "only sends approved bills",
        )
    if config.restricted_account_ids and account.id in config.restricted_account_ids:
        return Decision(False, "the account is on the integration's restricted (deny) list")
    if config.account_ids and account.id not in config.account_ids:
        return Decision(False, "the account is not on the integration's account list")
    if config.account_filter and config.account_filter.strip():
        document = account_json if account_json is not None else account_document(account)
        if not filter_expr.matches(config.account_filter, document):
            return Decision(
                False, f"the account does not match the filter {config.account_filter!r}"
            )
    if delivered_version is not None and delivered_version >= bill.version:
        return Decision(
            False,
            f"version {delivered_version} of this bill was already delivered"
            if delivered_version == bill.version
            else f"a newer version ({delivered_version}) of this bill was already delivered",
        )
    if bill.version in queued_versions:
        return Decision(False, f"version {bill.version} is already queued")
    newer = [v for v in queued_versions if v > bill.version]
    if newer:
        return Decision(
            False, f"a newer version ({max(newer)}) of this bill is queued and goes instead"
        )
    return TAKE


@attrs.frozen
class Routed:
    """One routing decision: this bill version, through this integration."""

    bill: Bill
    account: Account
    integration: Integration
    decision: Decision


def route_many(
    items: Iterable[tuple[Bill, Account]],
    integrations: Sequence[Integration],
    *,
    delivered: Mapping[tuple[str, str], int],
    queued: Mapping[tuple[str, str], set[int]],
) -> list[Routed]:
    """Every bill through every integration, in order, one decision each.

    :param delivered: the ledger's version per ``(integration id, bill id)``.
    :param queued: versions with an open run per ``(integration id, bill id)``; the same
        version twice among ``items`` is taken once.
    """
    taken: dict[tuple[str, str], set[int]] = {k: set(v) for k, v in queued.items()}
    routed: list[Routed] = []
    for bill, account in items:
        document = account_document(account)
        for integration in integrations:
            key = (integration.id, bill.id)
            decision = route(
                bill,
                account,
                integration,
                delivered_version=delivered.get(key),
                queued_versions=frozenset(taken.get(key, ())),
                account_json=document,
            )
            if decision.take:
                taken.setdefault(key, set()).add(bill.version)
            routed.append(Routed(bill, account, integration, decision))
    return routed
