"""A faithful fake of Xero for tests and demos: OAuth, ``/connections`` and the Accounting API.

Run it in a test with :func:`billbridge.testing.emulation.server.serve`
(``XeroEmulator().start()``), or in
the foreground with ``billbridge emulator xero --port 8082`` (:func:`main`). It keeps the Xero
behaviour billbridge depends on (REFERENCE.md), on the emulator's clock so that tests can move
time:

* **OAuth** (:attr:`XeroEmulator.oauth`): consent at ``/identity/connect/authorize``, tokens at
  ``/connect/token`` (HTTP Basic), revocation at ``/connect/revocation``; access tokens live
  1800 s; refresh tokens are single-use, rotate on every refresh, live 60 days unused, and a
  spent one is answered again for 30 minutes (a lost refresh answer). Scopes: ``offline_access``,
  ``openid``/``profile``/``email`` and the accounting scopes, granular and legacy.
* **Organisation choice at consent.** Which organisations a consent connects is, in order: the
  ``emulator_organisations`` query parameter of the authorize URL (comma-separated tenant ids
  or names), else :attr:`XeroEmulator.consent_organisations`, else every organisation. Several
  are allowed (Xero lets a user connect several at once).
* **``/connections``** lists the tenants of the token's consent (``id``, ``authEventId``,
  ``tenantId``, ``tenantType`` ``ORGANISATION``, ``tenantName``, ``createdDateUtc``,
  ``updatedDateUtc``), filterable by ``authEventId``; ``DELETE /connections/{id}``
  disconnects one.
* **Every API call** needs a valid bearer token (else 401 ``AuthenticationUnsuccessful``) and an
  ``xero-tenant-id`` header naming an organisation the token's consent connected (missing,
  unknown or not connected: 403 ``AuthorizationUnsuccessful``; also 403 when the consent lacks
  the scope the endpoint needs).
* **Limits** per tenant on the emulator clock: 5 requests in flight, 60 a minute, ``daily_cap``
  a rolling day (5,000; 1,000 for the free tier), and 10,000 a minute per app across tenants.
  Every API response for a connected tenant carries ``X-DayLimit-Remaining``,
  ``X-MinLimit-Remaining`` and ``X-AppMinLimit-Remaining`` (injected faults too: a request that
  fails still counts); a refused one is a 429 with ``Retry-After`` (seconds) and
  ``X-Rate-Limit-Problem`` ``concurrent|day|appminute|minute``. Refused requests do not count.
  :attr:`XeroEmulator.rate_limited` counts the 429s by problem.
* **Writes** (``PUT`` creates only, ``POST`` creates or updates by id) follow the rules in
  :mod:`billbridge_xero.emulator.organisation`. ``summarizeErrors=false``: HTTP 200 with one element
  per input carrying ``StatusAttributeString`` OK/WARNING/ERROR, ``HasErrors`` and
  ``ValidationErrors``. Otherwise one bad element makes the answer a 400
  ``ValidationException`` listing the refused elements, while the good ones **are** saved, as
  Xero does. Bodies of 3.5 MB or more are refused with 413.
* **Idempotency-Key** (at most 128 characters): the same key with the same request within the
  replay window (``idempotency_window_minutes``) gets the original answer again and changes
  nothing; the same key with a *different* request is refused (400): an emulator decision,
  stricter than anything Xero documents, so that a client reusing keys is caught in tests.
* **Faults** through a :class:`~billbridge.testing.emulation.faults.FaultPlan`, with Xero-shaped
  500/503
  bodies.

* **Payments** (``GET /Payments``, filtered by ``where``) and what invoices say of them
  (``Payments``, ``CreditNotes`` allocated, ``AmountPaid``/``AmountCredited``/``AmountDue``,
  ``FullyPaidOnDate``): :mod:`~billbridge_xero.emulator.payments`.

Test hooks: :meth:`XeroEmulator.add_organisation`, :meth:`~XeroEmulator.mark_paid`,
:meth:`~XeroEmulator.record_payment`, :meth:`~XeroEmulator.allocate_credit_note`,
:meth:`~XeroEmulator.add_bank_account`, :meth:`~XeroEmulator.delete`,
:meth:`~XeroEmulator.disconnect`,
:meth:`~XeroEmulator.void`, :meth:`~XeroEmulator.lock_period`, :attr:`~XeroEmulator.captured`
(every write request's body, for schema checks) and :attr:`~XeroEmulator.requests`.

One job per module: :mod:`~billbridge_xero.emulator.app` (the ASGI app: OAuth, connections,
the gateway, the API routes), :mod:`~billbridge_xero.emulator.organisation` (an organisation's
lists and documents, and the rules a write passes), :mod:`~billbridge_xero.emulator.where` (the
``where`` filter language), :mod:`~billbridge_xero.emulator.responses` (Xero-shaped answers)
and :mod:`~billbridge_xero.emulator.launch` (``billbridge demo`` and ``billbridge emulator``,
through the ``billbridge.emulators`` entry point, which names this package). Nothing in the
plugin's runtime modules imports it.
"""

from billbridge_xero.emulator.app import API_PREFIX, SCOPES, CapturedRequest, XeroEmulator
from billbridge_xero.emulator.launch import DemoHandle, main, start_demo
from billbridge_xero.emulator.responses import xero_fault_response

__all__ = [
    "API_PREFIX",
    "SCOPES",
    "CapturedRequest",
    "DemoHandle",
    "XeroEmulator",
    "main",
    "start_demo",
    "xero_fault_response",
]
