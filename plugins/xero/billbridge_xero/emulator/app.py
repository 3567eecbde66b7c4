"""The emulated Xero: OAuth, ``/connections``, the gateway (token, tenant, scopes, limits) and the
Accounting API, as one ASGI app (see :mod:`billbridge_xero.emulator`)."""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import attrs
import simplejson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from billbridge.domain.clock import Clock, SystemClock
from billbridge.domain.models import dumps, loads
from billbridge.testing.emulation.faults import FaultMiddleware, FaultPlan
from billbridge.testing.emulation.limits import ConcurrencyLimit, SlidingWindow
from billbridge.testing.emulation.oauth import Authorization, OAuthServer, TokenInfo
from billbridge.testing.emulation.server import RunningServer, serve
from billbridge_xero.dates import format_ms_date, parse_xero_datetime
from billbridge_xero.emulator.organisation import Organisation, seed_organisation, stable_id
from billbridge_xero.emulator.payments import (
    add_bank_account,
    allocate_credit_note,
    delete_document,
    record_payment,
    render_payment,
)
from billbridge_xero.emulator.responses import (
    http_error,
    json_response,
    not_found,
    problem_body,
    render_record,
    xero_fault_response,
)
from billbridge_xero.emulator.where import compile_where

__all__ = ["API_PREFIX", "SCOPES", "CapturedRequest", "XeroEmulator"]

API_PREFIX = "/api.xro/2.0"
#: Scopes the emulated consent accepts: OpenID, refresh, and accounting (granular and legacy).
SCOPES = (
    "offline_access",
    "openid",
    "profile",
    "email",
    "accounting.transactions",
    "accounting.transactions.read",
    "accounting.invoices",
    "accounting.invoices.read",
    "accounting.contacts",
    "accounting.contacts.read",
    "accounting.settings",
    "accounting.settings.read",
    "accounting.attachments",
    "accounting.attachments.read",
    "accounting.payments",
    "accounting.payments.read",
    "accounting.reports.read",
)
MAX_BODY_BYTES = 3_500_000
MAX_IDEMPOTENCY_KEY = 128
PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Kind = Literal["Invoice", "CreditNote"]

# Which scopes open which collection: (read scopes, write scopes). Granular scopes (apps created
# since March 2026) and the legacy accounting.transactions both work, as they do at Xero.
_READ_TRANSACTIONS = frozenset(
    {
        "accounting.transactions",
        "accounting.transactions.read",
        "accounting.invoices",
        "accounting.invoices.read",
    }
)
_WRITE_TRANSACTIONS = frozenset({"accounting.transactions", "accounting.invoices"})
_READ_SETTINGS = frozenset(
    {"accounting.settings", "accounting.settings.read", "accounting.invoices"}
)
_SCOPE_RULES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "Invoices": (_READ_TRANSACTIONS, _WRITE_TRANSACTIONS),
    "CreditNotes": (_READ_TRANSACTIONS, _WRITE_TRANSACTIONS),
    "Contacts": (
        frozenset({"accounting.contacts", "accounting.contacts.read"}),
        frozenset({"accounting.contacts"}),
    ),
    "Items": (_READ_SETTINGS, frozenset({"accounting.settings"})),
    "Accounts": (_READ_SETTINGS, frozenset({"accounting.settings"})),
    "TaxRates": (_READ_SETTINGS, frozenset({"accounting.settings"})),
    "TrackingCategories": (_READ_SETTINGS, frozenset({"accounting.settings"})),
    "BrandingThemes": (_READ_SETTINGS, frozenset({"accounting.settings"})),
    "Organisation": (_READ_SETTINGS, frozenset({"accounting.settings"})),
    "Payments": (
        frozenset(
            {
                "accounting.transactions",
                "accounting.transactions.read",
                "accounting.payments",
                "accounting.payments.read",
            }
        ),
        frozenset({"accounting.transactions", "accounting.payments"}),
    ),
}


@attrs.frozen
class CapturedRequest:
    """One write request as the emulator received it (the body parsed, numbers as Decimal)."""

    method: str
    path: str
    query: Mapping[str, str]
    tenant_id: str
    idempotency_key: str | None
    body: Any


@attrs.define
class _Stored:
    fingerprint: str
    status: int
    body: bytes
    expires_at: float


class XeroEmulator:
    """The emulated Xero: OAuth server, ``/connections`` and the Accounting API.

    :param clock: the time every limit, token and date follows (:class:`SystemClock` if none).
    :param faults: a fault plan shared with the test; its error bodies become Xero-shaped
        unless the plan has its own ``error_response``.
    :param daily_cap: requests per tenant per rolling day (Xero: 5,000; free tier 1,000).
    :param limits: False to never answer 429 (counters and headers still work).
    :param minute_limit: requests per tenant per minute (60).
    :param concurrency_limit: requests in flight per tenant (5).
    :param app_minute_limit: requests per minute per app across tenants (10,000).
    :param idempotency_window_minutes: how long an ``Idempotency-Key`` is replayed.
    """

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        faults: FaultPlan | None = None,
        daily_cap: int = 5000,
        limits: bool = True,
        minute_limit: int = 60,
        concurrency_limit: int = 5,
        app_minute_limit: int = 10_000,
        idempotency_window_minutes: float = 5.0,
        provider_name: str = "billbridge Xero emulator",
    ) -> None:
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.faults = faults if faults is not None else FaultPlan()
        if self.faults.error_response is FaultPlan().error_response:
            self.faults.error_response = xero_fault_response
        self.limits = limits
        self.idempotency_window = idempotency_window_minutes * 60
        self.provider_name = provider_name
        self.oauth = OAuthServer(
            clock=self.clock,
            access_lifetime=1800,
            refresh_lifetime=60 * 86_400,
            refresh_grace=1800,
            consent_tenants=self._consent_tenants,
            allowed_scopes=SCOPES,
        )
        self.organisations: dict[str, Organisation] = {}
        #: Tenant ids or names the next consents connect (``None``: every organisation).
        self.consent_organisations: Sequence[str] | None = None
        #: 429s answered, by ``X-Rate-Limit-Problem``.
        self.rate_limited: Counter[str] = Counter()
        #: Admitted API requests by ``"METHOD /Collection"``.
        self.requests: Counter[str] = Counter()
        #: Every write request that reached the API (replays included), in arrival order.
        self.captured: list[CapturedRequest] = []
        self._minute = SlidingWindow(minute_limit, 60, self.clock)
        self._day = SlidingWindow(daily_cap, 86_400, self.clock)
        self._app_minute = SlidingWindow(app_minute_limit, 60, self.clock)
        self._in_flight = ConcurrencyLimit(concurrency_limit)
        self._idempotency: dict[tuple[str, str], _Stored] = {}
        self._lock = threading.RLock()
        routes = [
            Route("/identity/connect/authorize", self.oauth.authorize, methods=["GET"]),
            Route("/connect/token", self.oauth.token, methods=["POST"]),
            Route("/connect/revocation", self.oauth.revoke, methods=["POST"]),
            Route("/connections", self._connections, methods=["GET"]),
            Route("/connections/{connection_id}", self._disconnect, methods=["DELETE"]),
            Route(f"{API_PREFIX}/Invoices", self._invoices, methods=["GET", "PUT", "POST"]),
            Route(f"{API_PREFIX}/Invoices/{{document_id}}", self._invoice, methods=["GET"]),
            Route(f"{API_PREFIX}/CreditNotes", self._credit_notes, methods=["GET", "PUT", "POST"]),
            Route(f"{API_PREFIX}/CreditNotes/{{document_id}}", self._credit_note, methods=["GET"]),
            Route(f"{API_PREFIX}/Contacts", self._contacts, methods=["GET"]),
            Route(f"{API_PREFIX}/Contacts/{{contact_id}}", self._contact, methods=["GET"]),
            Route(f"{API_PREFIX}/Items", self._items, methods=["GET"]),
            Route(f"{API_PREFIX}/Accounts", self._accounts, methods=["GET"]),
            Route(f"{API_PREFIX}/TaxRates", self._tax_rates, methods=["GET"]),
            Route(f"{API_PREFIX}/TrackingCategories", self._tracking, methods=["GET"]),
            Route(f"{API_PREFIX}/BrandingThemes", self._branding_themes, methods=["GET"]),
            Route(f"{API_PREFIX}/Organisation", self._organisation, methods=["GET"]),
            Route(f"{API_PREFIX}/Payments", self._payments, methods=["GET"]),
        ]
        inner = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
        #: The ASGI application: the API gateway (auth, tenant, limits) around the fault
        #: middleware around the routes.
        self.app: ASGIApp = _Gateway(FaultMiddleware(inner, self.faults), self)

    # -- set-up and test hooks --------------------------------------------------------------

    def add_organisation(
        self,
        name: str,
        tenant_id: str | None = None,
        *,
        base_currency: str = "GBP",
        filler_contacts: int = 150,
    ) -> Organisation:
        """A new organisation (tenant), seeded with contacts (incl. "Acme Ltd", "Globex
        Corporation", "Initech" and enough others for several pages), items, accounts (revenue
        "200"), tax rates, tracking categories with options and branding themes."""
        tenant = tenant_id or str(uuid.uuid4())
        org = Organisation(
            tenant_id=tenant,
            name=name,
            base_currency=base_currency.upper(),
            short_code=f"!{hashlib.sha256(tenant.encode()).hexdigest()[:5]}",
            country_code={"GBP": "GB", "USD": "US", "NZD": "NZ", "AUD": "AU"}.get(
                base_currency.upper(), "GB"
            ),
            created_at=self.clock.now(),
        )
        seed_organisation(org, filler_contacts=filler_contacts)
        with self._lock:
            self.organisations[tenant] = org
        return org

    def organisation(self, tenant_id: str) -> Organisation:
        """The organisation ``tenant_id`` (``KeyError`` if unknown)."""
        return self.organisations[tenant_id]

    def mark_paid(self, tenant_id: str, document_id: str) -> None:
        """Pay an invoice (or allocate a credit note) in full: it becomes PAID and immutable."""
        with self._lock:
            org = self.organisations[tenant_id]
            document = org.document(document_id)
            if (
                document is not None
                and document["kind"] == "Invoice"
                and document["Status"] in ("AUTHORISED", "SUBMITTED")
            ):
                self.record_payment(tenant_id, document_id)
                return
            # A credit note, or a shortcut Xero itself would refuse (paying a draft): marked
            # paid without a payment record.
            org.mark_paid(document_id, self.clock.now().date())

    # Payments, credit notes, deletes: see billbridge_xero.emulator.payments.

    def record_payment(
        self,
        tenant_id: str,
        invoice_id: str,
        amount: Decimal | str | None = None,
        *,
        account_code: str = "090",
        reference: str | None = None,
        when: date | None = None,
    ) -> dict[str, Any]:
        """Receive a payment for an invoice (what it owes by default) into a bank account."""
        with self._lock:
            return record_payment(
                self.organisations[tenant_id],
                invoice_id,
                None if amount is None else Decimal(str(amount)),
                account_code=account_code,
                when=when or self.clock.now().date(),
                now=self.clock.now(),
                reference=reference,
            )

    def allocate_credit_note(
        self,
        tenant_id: str,
        invoice_id: str,
        credit_note_id: str,
        amount: Decimal | str | None = None,
    ) -> Decimal:
        """Allocate a credit note to an invoice (as much as both allow by default)."""
        with self._lock:
            return allocate_credit_note(
                self.organisations[tenant_id],
                invoice_id,
                credit_note_id,
                None if amount is None else Decimal(str(amount)),
                when=self.clock.now().date(),
                now=self.clock.now(),
            )

    def delete(self, tenant_id: str, document_id: str) -> None:
        """Delete a draft or submitted document, as a person would in Xero."""
        with self._lock:
            delete_document(self.organisations[tenant_id], document_id, now=self.clock.now())

    def add_bank_account(self, tenant_id: str, code: str, name: str) -> dict[str, Any]:
        """Add a bank account to receive payments into."""
        with self._lock:
            return add_bank_account(self.organisations[tenant_id], code, name, now=self.clock.now())

    def void(self, tenant_id: str, document_id: str) -> None:
        """Void a document, as a person would in Xero: it becomes VOIDED and immutable."""
        with self._lock:
            self.organisations[tenant_id].void(document_id)

    def disconnect(self, tenant_id: str) -> None:
        """Disconnect an organisation from the app, as a person would in Xero: every consent
        loses it, and its API calls are refused (403)."""
        with self._lock:
            for authorization in self.oauth.authorizations():
                authorization.tenants = tuple(t for t in authorization.tenants if t != tenant_id)

    def lock_period(
        self, tenant_id: str, lock_date: date | None, *, end_of_year: bool = True
    ) -> None:
        """Lock the books up to ``lock_date`` inclusive (``None`` unlocks)."""
        with self._lock:
            org = self.organisations[tenant_id]
            org.lock_date = lock_date
            org.lock_kind = "end of year" if end_of_year else "period"

    def documents(self, tenant_id: str, kind: Kind = "Invoice") -> list[dict[str, Any]]:
        """Every invoice (or credit note) of an organisation as Xero's JSON, oldest first."""
        with self._lock:
            org = self.organisations[tenant_id]
            return [org.render(doc, unitdp=4) for doc in org.documents_of(kind)]

    def start(self) -> RunningServer:
        """Serve the emulator on a free loopback port; stop the server when done."""
        return serve(self.app)

    @staticmethod
    def endpoints(base_url: str) -> dict[str, str]:
        """The URLs a client configures for an emulator served at ``base_url``."""
        base = base_url.rstrip("/")
        return {
            "api_base_url": base + API_PREFIX,
            "authorize_url": base + "/identity/connect/authorize",
            "token_url": base + "/connect/token",
            "revoke_url": base + "/connect/revocation",
        }

    # -- consent and connections ---------------------------------------------------------------

    def _consent_tenants(self, query: Mapping[str, str]) -> Sequence[str]:
        wanted: Sequence[str] | None
        if query.get("emulator_organisations"):
            wanted = [w.strip() for w in query["emulator_organisations"].split(",") if w.strip()]
        else:
            wanted = self.consent_organisations
        with self._lock:
            if wanted is None:
                return list(self.organisations)
            chosen = []
            for key in wanted:
                for tenant, org in self.organisations.items():
                    if key in (tenant, org.name) and tenant not in chosen:
                        chosen.append(tenant)
            return chosen

    def _connection(self, authorization: Authorization, tenant: str) -> dict[str, Any]:
        org = self.organisations[tenant]
        created = datetime.fromtimestamp(authorization.created_at, UTC).replace(tzinfo=None)
        stamp = created.isoformat(timespec="microseconds") + "0"
        return {
            "id": stable_id(authorization.id, tenant),
            "authEventId": stable_id(authorization.id),
            "tenantId": tenant,
            "tenantType": "ORGANISATION",
            "tenantName": org.name,
            "createdDateUtc": stamp,
            "updatedDateUtc": stamp,
        }

    async def _connections(self, request: Request) -> Response:
        info = self.oauth.bearer(request)
        if info is None:
            return json_response(
                problem_body(401, "Unauthorized", "AuthenticationUnsuccessful"), 401
            )
        wanted_event = request.query_params.get("authEventId")
        with self._lock:
            connections = [
                self._connection(info.authorization, tenant)
                for tenant in info.authorization.tenants
                if tenant in self.organisations
            ]
        if wanted_event:
            connections = [c for c in connections if c["authEventId"] == wanted_event]
        return json_response(connections)

    async def _disconnect(self, request: Request) -> Response:
        info = self.oauth.bearer(request)
        if info is None:
            return json_response(
                problem_body(401, "Unauthorized", "AuthenticationUnsuccessful"), 401
            )
        wanted = request.path_params["connection_id"]
        authorization = info.authorization
        with self._lock:
            for tenant in authorization.tenants:
                if stable_id(authorization.id, tenant) == wanted:
                    authorization.tenants = tuple(t for t in authorization.tenants if t != tenant)
                    return Response(status_code=204)
        return json_response(problem_body(404, "Not Found", "The connection was not found"), 404)

    # -- the gateway: authentication, tenant and limits --------------------------------------

    def _authenticate(self, scope: Scope) -> tuple[str, Authorization] | Response:
        """The tenant and consent of an API request, or the 401/403 that refuses it."""
        request = Request(scope)
        info: TokenInfo | None = self.oauth.bearer(request)
        if info is None:
            return json_response(
                problem_body(401, "Unauthorized", "AuthenticationUnsuccessful"),
                401,
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        tenant = request.headers.get("xero-tenant-id", "").strip()
        authorization = info.authorization
        if not tenant or tenant not in authorization.tenants or tenant not in self.organisations:
            return json_response(problem_body(403, "Forbidden", "AuthorizationUnsuccessful"), 403)
        collection = scope["path"][len(API_PREFIX) :].strip("/").split("/")[0]
        read_scopes, write_scopes = _SCOPE_RULES.get(collection, (frozenset(), frozenset()))
        needed = read_scopes if scope["method"] == "GET" else write_scopes
        if needed and not needed & set(authorization.scopes):
            return json_response(problem_body(403, "Forbidden", "AuthorizationUnsuccessful"), 403)
        return tenant, authorization

    def _admit(
        self, scope: Scope, tenant: str, authorization: Authorization, *, slot: bool
    ) -> list[tuple[bytes, bytes]] | Response:
        """Count the request against the limits: its rate headers, or the 429 that refuses it.

        ``slot`` says whether an in-flight slot was free. Refused requests count nothing.
        """
        app_key = authorization.client_id
        with self._lock:
            problem: str | None = None
            retry_after = 0
            if self.limits:
                if not slot:
                    problem, retry_after = "concurrent", 1
                elif self._day.remaining(tenant) == 0:
                    problem, retry_after = "day", self._day.retry_after(tenant)
                elif self._app_minute.remaining(app_key) == 0:
                    problem, retry_after = "appminute", self._app_minute.retry_after(app_key)
                elif self._minute.remaining(tenant) == 0:
                    problem, retry_after = "minute", self._minute.retry_after(tenant)
            if problem is None:
                for window, key in (
                    (self._day, tenant),
                    (self._app_minute, app_key),
                    (self._minute, tenant),
                ):
                    window.acquire(key)
            headers = self._limit_headers(tenant, app_key)
        if problem is not None:
            return self._too_many(problem, retry_after, headers)
        collection = scope["path"][len(API_PREFIX) :].strip("/").split("/")[0]
        self.requests[f"{scope['method']} /{collection}"] += 1
        return headers

    def _limit_headers(self, tenant: str, app_key: str) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-daylimit-remaining", str(self._day.remaining(tenant)).encode()),
            (b"x-minlimit-remaining", str(self._minute.remaining(tenant)).encode()),
            (b"x-appminlimit-remaining", str(self._app_minute.remaining(app_key)).encode()),
        ]

    def _too_many(
        self, problem: str, retry_after: int, headers: list[tuple[bytes, bytes]]
    ) -> Response:
        self.rate_limited[problem] += 1
        response = json_response(
            problem_body(429, "Too Many Requests", f"Rate limit exceeded: {problem}"),
            429,
            {"Retry-After": str(max(int(retry_after), 1)), "X-Rate-Limit-Problem": problem},
        )
        response.raw_headers.extend(headers)
        return response

    # -- API handlers ---------------------------------------------------------------------------

    def _org(self, request: Request) -> Organisation:
        return self.organisations[request.scope["xero.tenant"]]

    def _envelope(self, key: str, records: list[Any], **extra: Any) -> dict[str, Any]:
        return {
            "Id": str(uuid.uuid4()),
            "Status": "OK",
            "ProviderName": self.provider_name,
            "DateTimeUTC": format_ms_date(self.clock.now()).replace("+0000", ""),
            **extra,
            key: records,
        }

    async def _invoices(self, request: Request) -> Response:
        if request.method == "GET":
            return self._list_documents(request, "Invoice")
        return await self._write(request, "Invoice")

    async def _credit_notes(self, request: Request) -> Response:
        if request.method == "GET":
            return self._list_documents(request, "CreditNote")
        return await self._write(request, "CreditNote")

    async def _invoice(self, request: Request) -> Response:
        return self._get_document(request, "Invoice")

    async def _credit_note(self, request: Request) -> Response:
        return self._get_document(request, "CreditNote")

    def _get_document(self, request: Request, kind: Kind) -> Response:
        unitdp = 4 if request.query_params.get("unitdp") == "4" else 2
        key = "Invoices" if kind == "Invoice" else "CreditNotes"
        with self._lock:
            org = self._org(request)
            doc = org.document(request.path_params["document_id"])
            if doc is None or doc["kind"] != kind:
                return not_found()
            return json_response(self._envelope(key, [org.render(doc, unitdp=unitdp)]))

    def _list_documents(self, request: Request, kind: Kind) -> Response:
        params = request.query_params
        unitdp = 4 if params.get("unitdp") == "4" else 2
        key = "Invoices" if kind == "Invoice" else "CreditNotes"
        with self._lock:
            org = self._org(request)
            rendered = [org.render(d, unitdp=unitdp) for d in org.documents_of(kind)]
        id_field = "InvoiceID" if kind == "Invoice" else "CreditNoteID"
        filters: list[Callable[[Mapping[str, Any]], bool]] = []
        if params.get("IDs"):
            ids = {i.strip().casefold() for i in params["IDs"].split(",")}
            filters.append(lambda d: str(d[id_field]).casefold() in ids)
        if kind == "Invoice" and params.get("InvoiceNumbers"):
            numbers = {n.strip().casefold() for n in params["InvoiceNumbers"].split(",")}
            filters.append(lambda d: str(d.get("InvoiceNumber", "")).casefold() in numbers)
        if params.get("ContactIDs"):
            contacts = {c.strip().casefold() for c in params["ContactIDs"].split(",")}
            filters.append(lambda d: str(d["Contact"]["ContactID"]).casefold() in contacts)
        if params.get("Statuses"):
            statuses = {s.strip().upper() for s in params["Statuses"].split(",")}
            filters.append(lambda d: d["Status"] in statuses)
        problem = self._where_filter(params.get("where"), filters)
        if problem is not None:
            return problem
        since = _modified_since(request.headers.get("if-modified-since"))
        if since is not None:
            filters.append(lambda d: parse_xero_datetime(d["UpdatedDateUTC"]) > since)
        found = [d for d in rendered if all(f(d) for f in filters)]
        return self._paged(request, key, found)

    def _where_filter(
        self, where: str | None, filters: list[Callable[[Mapping[str, Any]], bool]]
    ) -> Response | None:
        if not where:
            return None
        try:
            filters.append(compile_where(where))
        except ValueError as exc:
            return json_response(
                {"ErrorNumber": 16, "Type": "QueryParseException", "Message": str(exc)}, 400
            )
        return None

    def _paged(self, request: Request, key: str, records: list[dict[str, Any]]) -> Response:
        page_text = request.query_params.get("page")
        if page_text is None:
            return json_response(self._envelope(key, records))
        try:
            page = max(int(page_text), 1)
            size = int(request.query_params.get("pageSize", PAGE_SIZE))
        except ValueError:
            return json_response(
                {
                    "ErrorNumber": 16,
                    "Type": "QueryParseException",
                    "Message": "page must be a number",
                },
                400,
            )
        size = min(max(size, 1), MAX_PAGE_SIZE)
        count = len(records)
        pagination = {
            "page": page,
            "pageSize": size,
            "pageCount": max((count + size - 1) // size, 1),
            "itemCount": count,
        }
        chunk = records[(page - 1) * size : page * size]
        return json_response(self._envelope(key, chunk, pagination=pagination))

    async def _write(self, request: Request, kind: Kind) -> Response:
        key = "Invoices" if kind == "Invoice" else "CreditNotes"
        body = await request.body()
        tenant = request.scope["xero.tenant"]
        if len(body) >= MAX_BODY_BYTES:
            return json_response(
                problem_body(413, "Request Entity Too Large", "The request must be under 3.5 MB"),
                413,
            )
        idempotency = request.headers.get("idempotency-key")
        if idempotency is not None and len(idempotency) > MAX_IDEMPOTENCY_KEY:
            return json_response(
                problem_body(400, "Bad Request", "Idempotency-Key must be 128 characters or fewer"),
                400,
            )
        query = dict(request.query_params)
        fingerprint = hashlib.sha256(
            b"\n".join(
                [
                    request.method.encode(),
                    request.url.path.encode(),
                    "&".join(f"{k}={v}" for k, v in sorted(query.items())).encode(),
                    body,
                ]
            )
        ).hexdigest()
        try:
            parsed = loads(body) if body else None
        except (simplejson.JSONDecodeError, ValueError):
            parsed = None
        with self._lock:
            self.captured.append(
                CapturedRequest(
                    request.method, request.url.path, query, tenant, idempotency, parsed
                )
            )
            now = self.clock.time()
            if idempotency:
                stored = self._idempotency.get((tenant, idempotency))
                if stored is not None and stored.expires_at > now:
                    if stored.fingerprint != fingerprint:
                        return json_response(
                            problem_body(
                                400,
                                "Bad Request",
                                "The Idempotency-Key was already used for a different request",
                            ),
                            400,
                        )
                    return Response(
                        stored.body,
                        status_code=stored.status,
                        media_type="application/json",
                        headers={"Idempotent-Replayed": "true"},
                    )
            elements = _elements(parsed, key)
            if elements is None:
                status, answer = (
                    400,
                    {
                        "ErrorNumber": 14,
                        "Type": "PostDataInvalidException",
                        "Message": f"JSON for post data was invalid: expected an object with {key}",
                    },
                )
            else:
                status, answer = self._apply_all(request, kind, key, elements)
            encoded = dumps(answer).encode("utf-8")
            if idempotency:
                self._idempotency[(tenant, idempotency)] = _Stored(
                    fingerprint, status, encoded, now + self.idempotency_window
                )
        return Response(encoded, status_code=status, media_type="application/json")

    def _apply_all(
        self, request: Request, kind: Kind, key: str, elements: list[Any]
    ) -> tuple[int, dict[str, Any]]:
        org = self._org(request)
        params = request.query_params
        unitdp = 4 if params.get("unitdp") == "4" else 2
        summarize = params.get("summarizeErrors", "true").strip().lower() != "false"
        now = self.clock.now()
        answers: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        for element in elements:
            saved, errors, warnings = org.apply(
                kind, element, method=request.method, unitdp=unitdp, now=now
            )
            if saved is not None:
                rendered = org.render(saved, unitdp=unitdp)
                rendered["StatusAttributeString"] = "WARNING" if warnings else "OK"
                if warnings:
                    rendered["Warnings"] = [{"Message": w} for w in warnings]
                answers.append(rendered)
                continue
            echo = dict(element) if isinstance(element, Mapping) else {}
            echo["HasErrors"] = True
            echo["StatusAttributeString"] = "ERROR"
            echo["ValidationErrors"] = [{"Message": e} for e in errors]
            answers.append(echo)
            failed.append(echo)
        if summarize and failed:
            # Xero's surprise: the good elements were saved all the same.
            return 400, {
                "ErrorNumber": 10,
                "Type": "ValidationException",
                "Message": "A validation exception occurred",
                "Elements": failed,
            }
        return 200, self._envelope(key, answers)

    async def _contacts(self, request: Request) -> Response:
        params = request.query_params
        include_archived = params.get("includeArchived", "false").lower() == "true"
        with self._lock:
            contacts = [
                render_record(c)
                for c in self._org(request).contacts.values()
                if include_archived or c.get("ContactStatus") != "ARCHIVED"
            ]
        filters: list[Callable[[Mapping[str, Any]], bool]] = []
        term = (params.get("searchTerm") or "").strip().casefold()
        if term:
            fields = (
                "Name",
                "FirstName",
                "LastName",
                "ContactNumber",
                "CompanyNumber",
                "EmailAddress",
            )
            filters.append(lambda c: any(term in str(c.get(f) or "").casefold() for f in fields))
        if params.get("IDs"):
            wanted = {i.strip().casefold() for i in params["IDs"].split(",")}
            filters.append(lambda c: str(c["ContactID"]).casefold() in wanted)
        problem = self._where_filter(params.get("where"), filters)
        if problem is not None:
            return problem
        found = sorted(
            (c for c in contacts if all(f(c) for f in filters)),
            key=lambda c: str(c["Name"]).casefold(),
        )
        return self._paged(request, "Contacts", found)

    async def _contact(self, request: Request) -> Response:
        with self._lock:
            contact = self._org(request).contacts.get(request.path_params["contact_id"].casefold())
            if contact is None:
                return not_found()
            return json_response(self._envelope("Contacts", [render_record(contact)]))

    def _list_records(
        self, request: Request, key: str, records: Callable[[Organisation], list[dict[str, Any]]]
    ) -> Response:
        with self._lock:
            found = [render_record(r) for r in records(self._org(request))]
        filters: list[Callable[[Mapping[str, Any]], bool]] = []
        problem = self._where_filter(request.query_params.get("where"), filters)
        if problem is not None:
            return problem
        since = _modified_since(request.headers.get("if-modified-since"))
        if since is not None:
            filters.append(
                lambda r: (
                    "UpdatedDateUTC" not in r or parse_xero_datetime(r["UpdatedDateUTC"]) > since
                )
            )
        return json_response(self._envelope(key, [r for r in found if all(f(r) for f in filters)]))

    async def _items(self, request: Request) -> Response:
        return self._list_records(request, "Items", lambda org: list(org.items.values()))

    async def _accounts(self, request: Request) -> Response:
        return self._list_records(request, "Accounts", lambda org: list(org.accounts.values()))

    async def _tax_rates(self, request: Request) -> Response:
        return self._list_records(request, "TaxRates", lambda org: list(org.tax_rates.values()))

    async def _tracking(self, request: Request) -> Response:
        include_archived = request.query_params.get("includeArchived", "false").lower() == "true"
        return self._list_records(
            request,
            "TrackingCategories",
            lambda org: [
                c for c in org.tracking_categories if include_archived or c["Status"] == "ACTIVE"
            ],
        )

    async def _branding_themes(self, request: Request) -> Response:
        return self._list_records(request, "BrandingThemes", lambda org: org.branding_themes)

    async def _payments(self, request: Request) -> Response:
        with self._lock:
            org = self._org(request)
            rendered = [render_payment(org, p) for p in org.payments.values()]
        filters: list[Callable[[Mapping[str, Any]], bool]] = []
        problem = self._where_filter(request.query_params.get("where"), filters)
        if problem is not None:
            return problem
        return self._paged(request, "Payments", [p for p in rendered if all(f(p) for f in filters)])

    async def _organisation(self, request: Request) -> Response:
        with self._lock:
            org = self._org(request)
            record: dict[str, Any] = {
                "OrganisationID": org.tenant_id,
                "Name": org.name,
                "LegalName": org.name,
                "BaseCurrency": org.base_currency,
                "CountryCode": org.country_code,
                "ShortCode": org.short_code,
                "OrganisationType": "COMPANY",
                "IsDemoCompany": False,
                "CreatedDateUTC": org.created_at,
            }
            if org.lock_date is not None:
                field = "EndOfYearLockDate" if org.lock_kind == "end of year" else "PeriodLockDate"
                record[field] = org.lock_date
        return json_response(self._envelope("Organisations", [render_record(record)]))


class _Gateway:
    """What Xero does before a request reaches the API: token, tenant, scopes and limits.

    Rate-limit headers are added to every response of an admitted request, including injected
    faults (the gateway sits outside the :class:`FaultMiddleware`); the in-flight slot is held
    until the response has been sent (or the connection cut).
    """

    def __init__(self, inner: ASGIApp, emulator: XeroEmulator) -> None:
        self.inner = inner
        self.emulator = emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            await self.inner(scope, receive, send)
            return
        emulator = self.emulator
        checked = emulator._authenticate(scope)
        if isinstance(checked, Response):
            await checked(scope, receive, send)
            return
        tenant, authorization = checked
        with emulator._in_flight.hold(tenant) as slot:
            admitted = emulator._admit(scope, tenant, authorization, slot=slot)
            if isinstance(admitted, Response):
                await admitted(scope, receive, send)
                return
            scope["xero.tenant"] = tenant

            async def send_with_limits(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message = dict(message)
                    message["headers"] = [*message.get("headers", []), *admitted]
                await send(message)

            await self.inner(scope, receive, send_with_limits)


def _elements(parsed: Any, key: str) -> list[Any] | None:
    if isinstance(parsed, Mapping):
        if key in parsed:
            found = parsed[key]
            return list(found) if isinstance(found, list) else None
        # Xero also takes one document on its own, without the array around it.
        return [parsed]
    return None


def _modified_since(header: str | None) -> datetime | None:
    if not header:
        return None
    try:
        return parse_xero_datetime(header)
    except ValueError:
        pass
    try:
        parsed = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
