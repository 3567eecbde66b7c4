"""The plugin contract: every hook a destination plugin may implement.

A plugin is a module (or object) registered under the entry point group
``billbridge.destinations``. It implements hooks by decorating functions with
:data:`billbridge.hookimpl`; hook names are fixed, and so are argument names (arguments may be
added over time, never renamed — implement only the ones you need, pluggy passes only those).

The core always calls hooks with keyword arguments. Except for ``register_destinations`` and
``integration_disabled``, which go to every plugin, a call goes to the one plugin that owns the
destination key (``firstresult=True`` through a subset caller), so a plugin never sees another
plugin's destinations.

Errors cross the boundary as exceptions from :mod:`billbridge.errors`
(``DestinationValidationError``, ``MissingMapping``, ``TokenExpired``, ``AuthenticationFailed``,
``RateLimited``, ``TransientError``, ``PermanentError`` and its subclasses). The core maps them
to run statuses, retries and events; anything else is treated as a transient failure of the
plugin and retried a bounded number of times.

pluggy never runs the bodies below: they document the contract and give type checkers the
signatures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    # Annotations only: pluggy reads argument names, never types, and every pytest run in an
    # environment with billbridge installed imports this module through the kit's plugin.
    import httpx

    from billbridge.domain.models import Account, Bill, Credential, Integration, LedgerEntry
    from billbridge.errors import FieldError
    from billbridge.plugin.contract import (
        Connection,
        Delivery,
        DeliveryOutcome,
        Destination,
        ExternalEntityPage,
        InvoiceStatus,
        OAuthCallback,
        ResolvedMappings,
        SendResult,
        TenantChoice,
    )

PROJECT = "billbridge"

_hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
"""Marker for hook implementations: ``@hookimpl def send_bill(...)``."""

__all__ = ["PROJECT", "hookimpl"]


@_hookspec
def register_destinations() -> Sequence[Destination]:
    """Declare the destinations this plugin serves.

    Called once per plugin when the plugin manager loads; the answers of all plugins are
    collected (this hook is not ``firstresult``). A key claimed by two plugins is an error that
    names both.

    :returns: one :class:`~billbridge.plugin.contract.Destination` per destination key, each with
    its
        title, entity types, panel schema (loaded from the plugin package with
        :func:`~billbridge.plugin.contract.load_panel_schema`), the external tables
        ``list_external_entities`` can list, its OAuth endpoints and scopes
        (:class:`~billbridge.plugin.contract.OAuthSpec`) and its limits
        (:class:`~billbridge.plugin.contract.Limits`: requests per minute, concurrency, batch size,
        daily cap).
    """
    raise AssertionError("hook specification: never called")


@_hookspec(firstresult=True)
def authenticate(
    destination: str,
    credential: Credential,
    callback: OAuthCallback,
    http: httpx.Client,
    api_base_url: str,
) -> Sequence[TenantChoice]:
    """Identify the tenant(s) a just-completed OAuth consent gives access to.

    The core has already exchanged the authorization code for tokens (oauthlib and httpx, with
    the endpoints from the destination's :class:`~billbridge.plugin.contract.OAuthSpec`) and calls
    this
    hook to learn which tenant the tokens are for.

    :param destination: the destination key (``quickbooks``, ``xero``...).
    :param credential: the credential being completed (status INCOMPLETE; no tokens yet).
    :param callback: the redirect's query parameters (``code``, ``state``, QuickBooks'
        ``realmId``...) and the new access token.
    :param http: an HTTP client owned by the core, for calls such as Xero's ``/connections``.
    :param api_base_url: the destination's API root as configured (the real host, or an
        emulator in tests and demos).
    :returns: the tenants the consent covers, at least one. QuickBooks returns the ``realmId``
        company; Xero one entry per connected organisation. When several come back the core
        asks the user to choose (or takes ``callback.tenant_hint``).
    :raises billbridge.errors.AuthenticationFailed: the consent gave no usable tenant.
    """
    raise AssertionError("hook specification: never called")


@_hookspec(firstresult=True)
def list_external_entities(
    destination: str,
    connection: Connection,
    table: str,
    search: str | None,
    cursor: str | None,
) -> ExternalEntityPage:
    """List one page of options from the external system, to fill pickers and mappings.

    :param destination: the destination key.
    :param connection: a connection to the tenant with a fresh access token.
    :param table: one of the destination's ``external_tables`` (``Customer``, ``Item``,
        ``Account``, ``TaxCode``, ``Contact``...).
    :param search: text to narrow the list by name (case-insensitive contains or starts-with,
        as the destination allows), or ``None`` for everything.
    :param cursor: ``None`` for the first page, else the ``next_cursor`` of the previous page.
    :returns: the page, with ``next_cursor`` set when more pages follow.
    :raises billbridge.errors.DestinationValidationError: ``table`` is not one the destination
        can list.
    """
    raise AssertionError("hook specification: never called")


@_hookspec(firstresult=True)
def validate_config(destination: str, config: Mapping[str, Any]) -> Sequence[FieldError]:
    """Check a destination configuration for problems its JSON Schema cannot express.

    Called after the core has validated ``config`` against the destination's panel schema, so
    types and required fields are already right. Must not use the network.

    :param destination: the destination key.
    :param config: the destination configuration (the panel's values).
    :returns: every problem found as :class:`~billbridge.errors.FieldError` with a JSON path
        relative to the destination configuration (``/accountManagerEmailCustomField``); an
        empty sequence when the configuration is fine.
    """
    raise AssertionError("hook specification: never called")


@_hookspec(firstresult=True)
def send_bill(
    destination: str,
    connection: Connection,
    bill: Bill,
    account: Account,
    config: Mapping[str, Any],
    mappings: ResolvedMappings,
    previous: LedgerEntry | None,
    idempotency_key: str,
) -> SendResult:
    """Create the invoice for a bill version, or update the one made for an earlier version.

    The core has already dropped excluded lines (types, products, aggregations) from ``bill``
    and resolved external mappings.

    :param destination: the destination key.
    :param connection: a connection to the tenant with a fresh access token.
    :param bill: the bill version to deliver.
    :param account: the billed account.
    :param config: the integration's destination configuration (the panel's values).
    :param mappings: resolved external mappings (Account → Customer/Contact, Product and
        Aggregation → Item...).
    :param previous: the delivery ledger's entry for this bill and integration when an earlier
        version was delivered: update ``previous.external_id`` (its ``state`` is what the last
        :class:`~billbridge.plugin.contract.SendResult` returned); ``None`` to create.
    :param idempotency_key: deterministic per (bill, version, integration), at most 36 characters:
        send it as the destination's idempotency key so that a retried create returns the
        original invoice instead of a second one.
    :returns: the external invoice's id, number, URL and the state needed to update it later.
    :raises billbridge.errors.DestinationError: a subclass saying what went wrong.
    """
    raise AssertionError("hook specification: never called")


@_hookspec(firstresult=True)
def preview_bill(
    destination: str,
    bill: Bill,
    account: Account,
    config: Mapping[str, Any],
    mappings: ResolvedMappings,
    previous: LedgerEntry | None,
) -> Mapping[str, Any]:
    """Optional: the exact request ``send_bill`` would send for this bill, sending nothing.

    Powers ``engine.preview`` and ``billbridge preview``: people check an invoice before the
    first real delivery. Must be pure (no network) and agree with ``send_bill``.

    :param destination: the destination key.
    :param bill: the bill version, already filtered by the core.
    :param account: the billed account.
    :param config: the integration's destination configuration, panel defaults applied.
    :param mappings: resolved external mappings.
    :param previous: the ledger's entry for an earlier version (an update would be sent).
    :returns: a JSON-able description of the request: at least ``method``, ``path`` and
        ``body`` (the payload exactly as it would be sent).
    :raises billbridge.errors.DestinationError: the bill cannot be translated (e.g.
        ``MissingMapping``).
    """
    raise AssertionError("hook specification: never called")


@_hookspec(firstresult=True)
def send_bills(
    destination: str,
    connection: Connection,
    deliveries: Sequence[Delivery],
    idempotency_key: str,
) -> Sequence[DeliveryOutcome]:
    """Optional: deliver several bill versions in one request, for destinations with a batch API.

    The core calls this instead of ``send_bill`` when the plugin implements it, with at most
    the destination's declared ``Limits.batch_size`` deliveries for one tenant.

    :param destination: the destination key.
    :param connection: a connection to the tenant with a fresh access token.
    :param deliveries: the deliveries; each carries what ``send_bill`` takes as arguments.
    :param idempotency_key: deterministic for this set of deliveries (36 characters): send it
        as the request's idempotency key, bound to each request's body with
        :func:`billbridge.plugin.idempotency.derived_key`. When a batch's outcome is unknown (a
        lost answer, a worker that died) the core sends exactly the same deliveries again, so
        the destination can answer with what it did the first time instead of doing it twice.
    :returns: one outcome per delivery, in the same order: a
        :class:`~billbridge.plugin.contract.SendResult`, or the
        :class:`~billbridge.errors.DestinationError` that delivery ended with. Raise (instead of
        returning) only when the whole request failed (e.g. ``RateLimited``, ``TokenExpired``).
        :func:`billbridge.plugin.batches.send_in_batches` keeps these books.
    """
    raise AssertionError("hook specification: never called")


@_hookspec(firstresult=True)
def fetch_invoice_status(
    destination: str,
    connection: Connection,
    documents: Sequence[LedgerEntry],
    config: Mapping[str, Any],
) -> Sequence[InvoiceStatus]:
    """Optional: read back what delivered documents have become (paid, partly paid, voided...).

    The core calls this on the schedule each integration sets (``statusCheckMinutes``, hourly
    by default) for documents that are not settled yet, stops once one is paid, voided or
    deleted, stores the answer in the delivery ledger and raises ``integration.invoice.paid``
    or ``integration.invoice.voided`` when a document becomes so. A regenerated bill whose
    document is settled is then not sent over it (INVOICE_ALREADY_PAID).

    Read many documents per request (a filtered or batch query); the core passes at most
    ``Limits.status_batch_size`` documents of one integration per call and waits for
    ``Limits.status_requests`` rate-limit slots first, so make no more requests than that.

    :param destination: the destination key.
    :param connection: a connection to the tenant with a fresh access token.
    :param documents: the ledger entries of the documents to read: ``external_id`` and the
        ``state`` the last :class:`~billbridge.plugin.contract.SendResult` returned (what kind
        of document it is), and ``status``, what was read last time.
    :param config: the destination configuration of the integration the documents were
        delivered through (panel defaults applied), e.g. its payment method mapping.
    :returns: one :class:`~billbridge.plugin.contract.InvoiceStatus` per document the
        destination answered for (in any order, matched by ``external_id``). A document the
        destination no longer has is ``InvoiceState.DELETED``; one left out is read again at
        its next check.
    :raises billbridge.errors.DestinationError: the whole query failed (``RateLimited``,
        ``TokenExpired``, ``TransientError``, a refusal); nothing is lost, the documents are
        read again later.
    """
    raise AssertionError("hook specification: never called")


@_hookspec
def integration_disabled(
    integration: Integration,
    users_to_notify: Sequence[str],
    reason: str,
) -> None:
    """Optional: an integration was disabled automatically after successive errors.

    Called on every plugin (not only the destination's), so a notifier plugin (email, Slack)
    can tell people. Exceptions are logged and do not stop the others.

    :param integration: the integration as it is now (``enabled`` is false).
    :param users_to_notify: the integration's "users to notify" setting.
    :param reason: a sentence saying why, e.g. "20 successive errors; last: ...".
    """
    raise AssertionError("hook specification: never called")
