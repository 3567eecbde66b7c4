"""A QuickBooks Online emulator: the Accounting API v3 and Intuit's OAuth 2.0, on loopback.

Tests, benchmarks and demos talk to it over real HTTP exactly as billbridge talks to Intuit::

    emulator = QuickBooksEmulator(clock=ManualClock())
    company = emulator.add_company(name="Sandbox Company_US_1")
    emulator.oauth.add_client("app", "secret")
    with emulator.start() as server:
        urls = emulator.endpoints(server.url)      # api_base_url, authorize_url, token_url...

What it does as QuickBooks does (REFERENCE.md, "QuickBooks Online Accounting API v3"):

* **OAuth** (:class:`~billbridge.testing.emulation.oauth.OAuthServer`): consent at
  ``/connect/oauth2``
  redirecting back with ``code``, ``state`` and ``realmId``; tokens at
  ``/oauth2/v1/tokens/bearer`` (HTTP Basic, form body); access tokens live 3600 s, refresh
  tokens 8726400 s and rotate on every refresh; responses carry ``x_refresh_token_expires_in``
  (and ``x_refresh_token_hard_expires_in`` when the ``x-include-refresh-token-hard-expires-in``
  header asks); revocation at ``/v2/oauth2/tokens/revoke`` with a JSON body.
* **API** under ``/v3/company/{realmId}/``: ``invoice`` and ``creditmemo`` create, full and
  sparse update (``Id`` + ``SyncToken``; a stale one is 5010), read, ``operation=delete``
  and, for invoices, ``operation=void`` (:mod:`~billbridge_quickbooks.emulator.voiding`);
  reads of customers, items, accounts, tax codes, tax rates, terms, payments and payment
  methods; ``companyinfo/{realmId}``; ``query``; ``batch``.
  Every answer is JSON with ``Decimal`` amounts, errors in the ``Fault`` envelope.
* **Rules**: ``CustomerRef`` and ``Line`` required (2020); unknown properties refused (2010);
  an unknown or inactive customer, item, tax code or term is 610; ``Amount`` must equal
  ``Qty × UnitPrice`` rounded half-up to the currency's minor unit (6070); ``DocNumber`` at most
  21 characters (2050) and unique per entity (6140); a negative total is refused (6000);
  sales tax from the company's TaxCode and TaxRate lists per ``GlobalTaxCalculation``, in
  ``TxnTaxDetail`` and ``TotalAmt`` (:mod:`~billbridge_quickbooks.emulator.tax`);
  ``requestid`` (≤ 50, ≤ 36 on batch) replays the first answer, per realm.
* **Limits** per realm on the emulator's clock: 500 requests a minute, 10 a second, 40 batch
  requests a minute; over them, HTTP 429 with the ``ThrottleExceeded`` fault (errorCode 003001)
  and no Retry-After, as Intuit documents none.
* **Test hooks**: :meth:`QuickBooksEmulator.mark_paid` (updates, voids and deletes then fail:
  the invoice has been paid), :meth:`~QuickBooksEmulator.record_payment` (a Payment linked to
  the invoice, with a PaymentMethod), :meth:`~QuickBooksEmulator.apply_credit_memo` (what
  status read-back finds: :mod:`~billbridge_quickbooks.emulator.payments`),
  :meth:`~QuickBooksEmulator.void` and :meth:`~QuickBooksEmulator.delete` (as a person would),
  :meth:`~QuickBooksEmulator.close_books` (writes dated on or before the closing
  date fail), :meth:`~QuickBooksEmulator.deactivate_item`,
  :meth:`~QuickBooksEmulator.end_subscription` (writes fail with 6190), counters of creates,
  updates, calls and 429s, and faults through a
  :class:`~billbridge.testing.emulation.faults.FaultPlan`
  answering QuickBooks-shaped 500/503 bodies.

Where QuickBooks' behaviour is not documented the emulator makes a choice and says so here:

* a paid invoice refuses every update (6000, "This invoice has been paid..."), and a write dated
  on or before the closing date is refused (6000, "...closing date..."); the client matches
  these wordings (:data:`billbridge_quickbooks.client.PAID_PATTERNS`, ``CLOSED_PATTERNS``);
* a replayed ``requestid`` returns the first answer whatever it was, errors included (the
  strictest reading), and whatever the new body says;
* a full update that leaves ``DocNumber`` out keeps the document's number;
* ``MAXRESULTS`` over 1000 is a query error (4000) rather than silently capped;
* a batch over 30 items, or with a missing, long or repeated ``bId``, is refused whole (400).

One job per module: :mod:`~billbridge_quickbooks.emulator.app` (the Starlette app: OAuth,
routes, limits, writes, queries, batches), :mod:`~billbridge_quickbooks.emulator.company` (a
company's documents and name lists, and its seed), :mod:`~billbridge_quickbooks.emulator.documents`
(the rules a write must pass), :mod:`~billbridge_quickbooks.emulator.tax` (sales tax),
:mod:`~billbridge_quickbooks.emulator.errors` (``Fault`` answers),
:mod:`~billbridge_quickbooks.emulator.query` (the query language) and
:mod:`~billbridge_quickbooks.emulator.launch` (``billbridge demo`` and ``billbridge emulator``,
through the ``billbridge.emulators`` entry point, which names this package). Nothing in the
plugin's runtime modules imports it.
"""

from billbridge_quickbooks.emulator.app import (
    ACCESS_TOKEN_LIFETIME,
    REFRESH_TOKEN_LIFETIME,
    QuickBooksEmulator,
)
from billbridge_quickbooks.emulator.company import Company
from billbridge_quickbooks.emulator.launch import DemoHandle, main, start_demo

__all__ = [
    "ACCESS_TOKEN_LIFETIME",
    "REFRESH_TOKEN_LIFETIME",
    "Company",
    "DemoHandle",
    "QuickBooksEmulator",
    "main",
    "start_demo",
]
