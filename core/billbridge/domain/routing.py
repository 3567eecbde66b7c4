"""Routing: does an integration take a bill version? One decision per integration, with a reason.

Pure functions over domain objects; the engine records every decision (a run, or a skip).
"""

from __future__ import annotations

from typing import Any

import attrs

from billbridge.domain import filter_expr
from billbridge.domain.models import Account, Bill, Integration, converter

__all__ = ["Decision", "account_document", "route"]


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
    nor is one already waiting.

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
    return TAKE
