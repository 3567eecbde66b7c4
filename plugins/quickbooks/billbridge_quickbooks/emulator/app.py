"""The emulated QuickBooks Online: OAuth, the API routes, per-realm limits, writes, queries and
batches, as one Starlette app (see :mod:`billbridge_quickbooks.emulator`)."""

from __future__ import annotations

import secrets
import threading
from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import attrs
import simplejson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from billbridge.domain.clock import Clock, SystemClock
from billbridge.domain.models import dumps, loads
from billbridge.testing.emulation.faults import FaultMiddleware, FaultPlan
from billbridge.testing.emulation.limits import SlidingWindow
from billbridge.testing.emulation.oauth import Authorization, OAuthServer
from billbridge.testing.emulation.server import RunningServer, serve
from billbridge_quickbooks.emulator.company import ENTITIES, JSON, NAME_LISTS, WRITABLE, Company
from billbridge_quickbooks.emulator.documents import FIELDS, validated
from billbridge_quickbooks.emulator.errors import (
    INACTIVE,
    QboFault,
    business,
    required,
    system_fault_body,
    unsupported,
    validation,
)
from billbridge_quickbooks.emulator.payments import (
    apply_credit_memo,
    record_payment,
    seed_payment_methods,
)
from billbridge_quickbooks.emulator.query import QueryError, evaluate, parse_query
from billbridge_quickbooks.emulator.voiding import (
    delete_document,
    delete_stored,
    void_document,
    void_stored,
)

__all__ = ["ACCESS_TOKEN_LIFETIME", "REFRESH_TOKEN_LIFETIME", "SCOPES", "QuickBooksEmulator"]

ACCESS_TOKEN_LIFETIME = 3600
REFRESH_TOKEN_LIFETIME = 8_726_400
#: Refresh tokens issued since 2025 stop working five years after the consent.
REFRESH_TOKEN_HARD_LIFETIME = 5 * 365 * 86400
SCOPES = (
    "com.intuit.quickbooks.accounting",
    "com.intuit.quickbooks.payment",
    "openid",
    "profile",
    "email",
    "phone",
    "address",
)

REQUEST_ID_MAX = 50
BATCH_REQUEST_ID_MAX = 36
BATCH_ID_MAX = 10
BATCH_MAX_ITEMS = 30


class QuickBooksEmulator:
    """QuickBooks Online (API and OAuth) as a Starlette app; see the package docs.

    :param clock: the time everything here uses (token lifetimes, limits, dates).
    :param faults: injected faults (a fresh, inactive plan when ``None``: script it later
        through :attr:`faults`). Injected errors answer QuickBooks-shaped 500/503 bodies.
    :param limits: enforce the per-realm rate limits (toggle later with
        :attr:`limits_enabled`).
    """

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        faults: FaultPlan | None = None,
        limits: bool = True,
        requests_per_minute: int = 500,
        requests_per_second: int = 10,
        batches_per_minute: int = 40,
    ) -> None:
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.faults = faults if faults is not None else FaultPlan()
        if self.faults.error_response is attrs.fields(FaultPlan).error_response.default:
            self.faults.error_response = self._injected_error
        self.limits_enabled = limits
        self.per_minute = SlidingWindow(requests_per_minute, 60, self.clock)
        self.per_second = SlidingWindow(requests_per_second, 1, self.clock)
        self.batches = SlidingWindow(batches_per_minute, 60, self.clock)
        #: 429 answers sent, by limit: ``minute``, ``second``, ``batch``.
        self.throttled: Counter[str] = Counter()
        #: API calls answered, by kind (``create:Invoice``, ``query``, ``batch``...).
        self.calls: Counter[str] = Counter()
        #: ``minorversion`` of the last API request (``None`` when it had none).
        self.last_minor_version: str | None = None
        self.minor_versions: Counter[str | None] = Counter()
        self.companies: dict[str, Company] = {}
        #: The realm the next consent grants (default: the first company added).
        self.consent_realm: str | None = None
        self._lock = threading.RLock()
        self.oauth = OAuthServer(
            clock=self.clock,
            access_lifetime=ACCESS_TOKEN_LIFETIME,
            refresh_lifetime=REFRESH_TOKEN_LIFETIME,
            refresh_grace=0,
            token_extras=self._token_extras,
            consent_tenants=lambda _query: [self._consent_company()],
            callback_extras=lambda auth: {"realmId": auth.tenants[0]},
            allowed_scopes=SCOPES,
        )
        routes = [
            Route("/connect/oauth2", self.oauth.authorize, methods=["GET"]),
            Route("/oauth2/v1/tokens/bearer", self._token, methods=["POST"]),
            Route("/v2/oauth2/tokens/revoke", self.oauth.revoke, methods=["POST"]),
            Route("/v3/company/{realm}/{rest:path}", self._api, methods=["GET", "POST"]),
        ]
        self.app = FaultMiddleware(Starlette(routes=routes), self.faults)

    # -- setup and test hooks -----------------------------------------------------------------

    def add_company(
        self,
        realm_id: str | None = None,
        name: str = "Sandbox Company_US_1",
        *,
        seed: bool = True,
        country: str = "US",
        home_currency: str = "USD",
    ) -> Company:
        """Add a company (a realm), seeded with customers, items, accounts, taxes and terms."""
        with self._lock:
            realm = realm_id or str(9341450000000000 + secrets.randbelow(10**9))
            company = Company(realm, name, country=country, home_currency=home_currency)
            if seed:
                company.seed()
                seed_payment_methods(company)
            company.add(
                "CompanyInfo",
                {
                    "CompanyName": name,
                    "LegalName": name,
                    "Country": country,
                    "CompanyAddr": {"Line1": "1 Main Street", "Country": country},
                    "SupportedLanguages": "en",
                },
                realm,
            )
            self.companies[realm] = company
            if self.consent_realm is None:
                self.consent_realm = realm
            return company

    def choose_company(self, realm_id: str) -> None:
        """Make the next consents grant access to ``realm_id``."""
        self.company(realm_id)
        self.consent_realm = realm_id

    def company(self, realm_id: str) -> Company:
        """The company ``realm_id``."""
        try:
            return self.companies[realm_id]
        except KeyError:
            raise KeyError(f"no company with realm id {realm_id!r}") from None

    def mark_paid(self, realm_id: str, invoice_id: str) -> None:
        """Record a payment for the whole invoice: its balance is 0 and updates are refused."""
        self.record_payment(realm_id, invoice_id)

    # Payments, credits, voids and deletes: see billbridge_quickbooks.emulator.payments.

    def record_payment(
        self,
        realm_id: str,
        invoice_id: str,
        amount: Decimal | str | None = None,
        *,
        method: str | None = None,
        deposit_account: str | None = None,
        reference: str | None = None,
        when: date | str | None = None,
    ) -> dict[str, Any]:
        """Receive a payment for an invoice (its whole balance by default), dated ``when``
        (today on the emulator's clock); ``method`` is a PaymentMethod id. Returns the Payment."""
        with self._lock:
            return record_payment(
                self.company(realm_id),
                invoice_id,
                None if amount is None else Decimal(str(amount)),
                when=_day(when) or self._today(),
                now=self._time(),
                method_id=method,
                deposit_account_id=deposit_account,
                reference=reference,
            )

    def apply_credit_memo(
        self,
        realm_id: str,
        invoice_id: str,
        credit_memo_id: str,
        amount: Decimal | str | None = None,
    ) -> Decimal:
        """Apply a credit memo to an invoice (as much as both allow by default)."""
        with self._lock:
            return apply_credit_memo(
                self.company(realm_id),
                invoice_id,
                credit_memo_id,
                None if amount is None else Decimal(str(amount)),
                now=self._time(),
            )

    def void(self, realm_id: str, document_id: str, entity: str = "Invoice") -> None:
        """Void an invoice (or credit memo) as a person would in QuickBooks."""
        with self._lock:
            company = self.company(realm_id)
            void_stored(company, entity, company.stored(entity, document_id), self._time())

    def delete(self, realm_id: str, document_id: str, entity: str = "Invoice") -> None:
        """Delete an invoice (or credit memo) as a person would in QuickBooks."""
        with self._lock:
            company = self.company(realm_id)
            delete_stored(company, entity, company.stored(entity, document_id)["Id"])

    def close_books(self, realm_id: str, closing_date: date | str) -> None:
        """Close the books up to ``closing_date``: writes dated on or before it are refused."""
        when = date.fromisoformat(closing_date) if isinstance(closing_date, str) else closing_date
        with self._lock:
            self.company(realm_id).closing_date = when

    def deactivate_item(self, realm_id: str, item_id: str) -> None:
        """Make an item inactive (documents using it are then refused with 610)."""
        with self._lock:
            self.company(realm_id).items[item_id]["Active"] = False

    def end_subscription(self, realm_id: str) -> None:
        """The company's subscription ends: writes are refused with 6190."""
        with self._lock:
            self.company(realm_id).subscription_ended = True

    def start(self, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
        """Serve the emulator on loopback in a background thread."""
        return serve(self.app, host=host, port=port)

    @staticmethod
    def endpoints(base_url: str) -> dict[str, str]:
        """The URLs the engine should use, on Intuit's own paths."""
        base = base_url.rstrip("/")
        return {
            "api_base_url": base,
            "authorize_url": f"{base}/connect/oauth2",
            "token_url": f"{base}/oauth2/v1/tokens/bearer",
            "revoke_url": f"{base}/v2/oauth2/tokens/revoke",
        }

    # -- OAuth ----------------------------------------------------------------------------------

    def _consent_company(self) -> str:
        if self.consent_realm is None:
            raise RuntimeError("add a company before asking for consent")
        return self.consent_realm

    def _token_extras(self, authorization: Authorization) -> dict[str, Any]:
        hard = authorization.created_at + REFRESH_TOKEN_HARD_LIFETIME - self.clock.time()
        return {
            "x_refresh_token_expires_in": REFRESH_TOKEN_LIFETIME,
            "x_refresh_token_hard_expires_in": max(int(hard), 0),
        }

    async def _token(self, request: Request) -> Response:
        response = await self.oauth.token(request)
        if response.status_code != 200:
            return response
        body = simplejson.loads(bytes(response.body))
        if request.headers.get("x-include-refresh-token-hard-expires-in", "").lower() != "true":
            # The five-year cap is only reported to apps that ask for it.
            body.pop("x_refresh_token_hard_expires_in", None)
        return JSONResponse(body, headers={"cache-control": "no-store"})

    # -- API ------------------------------------------------------------------------------------

    def _time(self) -> str:
        return datetime.fromtimestamp(self.clock.time(), UTC).isoformat(timespec="milliseconds")

    def _today(self) -> date:
        return datetime.fromtimestamp(self.clock.time(), UTC).date()

    def _render(self, status: int, body: JSON) -> tuple[int, bytes]:
        return status, dumps(body).encode("utf-8")

    def _response(self, status: int, content: bytes) -> Response:
        return Response(
            content,
            status_code=status,
            media_type="application/json",
            headers={"intuit_tid": f"1-{secrets.token_hex(4)}-{secrets.token_hex(12)}"},
        )

    def _fault_response(self, fault: QboFault) -> Response:
        return self._response(
            *self._render(fault.status, {"Fault": fault.fault(), "time": self._time()})
        )

    def _injected_error(self, status: int) -> Response:
        return self._response(*self._render(status, system_fault_body(status, self._time())))

    def _throttle(self, realm: str, is_batch: bool) -> str | None:
        """The limit a request would break (and counts it), or ``None`` (and counts it in)."""
        if not self.limits_enabled:
            return None
        with self._lock:
            scope: str | None = None
            if self.per_minute.remaining(realm) == 0:
                scope = "minute"
            elif self.per_second.remaining(realm) == 0:
                scope = "second"
            elif is_batch and self.batches.remaining(realm) == 0:
                scope = "batch"
            if scope is not None:
                self.throttled[scope] += 1
                return scope
            self.per_minute.acquire(realm)
            self.per_second.acquire(realm)
            if is_batch:
                self.batches.acquire(realm)
            return None

    async def _api(self, request: Request) -> Response:
        realm = request.path_params["realm"]
        rest = str(request.path_params["rest"]).strip("/")
        minor = request.query_params.get("minorversion")
        with self._lock:
            self.last_minor_version = minor
            self.minor_versions[minor] += 1
        token = self.oauth.bearer(request)
        if token is None:
            return self._fault_response(
                QboFault(
                    401,
                    "AuthenticationFault",
                    "3200",
                    "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                    "Token expired or invalid",
                )
            )
        company = self.companies.get(realm)
        if company is None or realm not in token.authorization.tenants:
            return self._fault_response(
                QboFault(
                    403,
                    "AuthorizationFault",
                    "120",
                    "Authorization Failure",
                    f"AuthorizationFailure: the token does not grant access to company {realm}",
                )
            )
        is_batch = rest.lower() == "batch"
        if self._throttle(realm, is_batch) is not None:
            # Intuit documents no Retry-After: none is sent.
            return self._fault_response(
                QboFault(
                    429,
                    "SystemFault",
                    "003001",
                    "message=ThrottleExceeded; errorCode=003001; statusCode=429",
                    "The request limit was reached: wait 60 seconds before trying again.",
                )
            )
        body = await request.body()
        request_id = request.query_params.get("requestid")
        is_write = request.method == "POST" and rest.lower() != "query"
        with self._lock:
            try:
                if is_write and company.subscription_ended:
                    raise validation(
                        "6190",
                        "Invalid Company Status",
                        "Subscription period has ended or canceled or there was a billing "
                        "problem : You can't add data to QuickBooks Online because your trial or "
                        "subscription period ended, you canceled your subscription, or there was "
                        "a billing problem.",
                    )
                if is_write and request_id is not None:
                    limit = BATCH_REQUEST_ID_MAX if is_batch else REQUEST_ID_MAX
                    if not request_id or len(request_id) > limit:
                        raise validation(
                            "2010",
                            "Request has invalid or unsupported property",
                            f"requestid must be 1 to {limit} characters long",
                            "requestid",
                        )
                    replay = company.replies.get(request_id)
                    if replay is not None:
                        self.calls["replay"] += 1
                        return self._response(*replay)
                status, answer = self._dispatch(company, request, rest, body)
            except QboFault as fault:
                status, answer = fault.status, {"Fault": fault.fault()}
            answer["time"] = self._time()
            rendered = self._render(status, answer)
            if is_write and request_id is not None:
                company.replies[request_id] = rendered
        return self._response(*rendered)

    def _dispatch(
        self, company: Company, request: Request, rest: str, body: bytes
    ) -> tuple[int, JSON]:
        parts = rest.split("/")
        head = parts[0].lower()
        if head == "query":
            statement = (
                request.query_params.get("query")
                if request.method == "GET"
                else body.decode("utf-8", errors="replace")
            )
            if not statement:
                raise required("query")
            self.calls["query"] += 1
            return 200, {"QueryResponse": self._query(company, statement)}
        if head == "batch" and request.method == "POST" and len(parts) == 1:
            self.calls["batch"] += 1
            return 200, self._batch(company, _json_body(body))
        entity = ENTITIES.get(head)
        if entity is None:
            raise validation(
                "4001",
                "Unsupported Operation",
                f"Operation {request.method} /{rest} is not supported by this emulator",
            )
        if request.method == "GET" and len(parts) == 2:
            self.calls[f"read:{entity}"] += 1
            found = company.table(entity).get(parts[1])
            if found is None:
                raise validation(
                    "610", "Object Not Found", f"{INACTIVE} ({entity} {parts[1]})", "Id"
                )
            return 200, {entity: found}
        if request.method == "POST" and len(parts) == 1 and entity in WRITABLE:
            operation = request.query_params.get("operation")
            obj = _json_body(body)
            if operation in ("void", "delete"):
                if operation == "void":
                    done = void_document(company, entity, obj, self._time)
                else:
                    done = delete_document(company, entity, obj)
                self.calls[f"{operation}:{entity}"] += 1
                return 200, {entity: done}
            if operation not in (None, "update", "create"):
                raise validation(
                    "4001",
                    "Unsupported Operation",
                    f"operation={operation} is not supported by this emulator",
                )
            return 200, {entity: self._write(company, entity, obj, operation)}
        raise validation(
            "4001",
            "Unsupported Operation",
            f"Operation {request.method} /{rest} is not supported by this emulator",
        )

    # -- writes ---------------------------------------------------------------------------------

    def _write(self, company: Company, entity: str, obj: Any, operation: str | None) -> JSON:
        if not isinstance(obj, dict):
            raise unsupported(entity)
        for key in obj:
            if key not in FIELDS[entity]:
                raise unsupported(key)
        if operation == "update" or "Id" in obj:
            return self._update(company, entity, obj)
        if operation == "create" or operation is None:
            return self._create(company, entity, obj)
        raise validation("4001", "Unsupported Operation", f"operation={operation}")

    def _create(self, company: Company, entity: str, obj: JSON) -> JSON:
        doc = validated(company, entity, obj, existing=None, today=self._today)
        doc_id = company.next_id(entity)
        now = self._time()
        doc.update(
            {
                "Id": doc_id,
                "SyncToken": "0",
                "domain": "QBO",
                "sparse": False,
                "MetaData": {"CreateTime": now, "LastUpdatedTime": now},
            }
        )
        company.table(entity)[doc_id] = doc
        company.created[entity] += 1
        self.calls[f"create:{entity}"] += 1
        return doc

    def _update(self, company: Company, entity: str, obj: JSON) -> JSON:
        doc_id = str(obj.get("Id", ""))
        existing = company.table(entity).get(doc_id)
        if existing is None:
            raise validation("610", "Object Not Found", f"{INACTIVE} ({entity} {doc_id})", "Id")
        if obj.get("SyncToken") is None:
            raise required("SyncToken")
        if str(obj["SyncToken"]) != existing["SyncToken"]:
            raise validation(
                "5010",
                "Stale Object Error",
                f"Stale Object Error : You and {company.name} were working on this at the same "
                f"time. {company.name} finished before you did, so your work was not saved.",
                "SyncToken",
            )
        if entity == "Invoice" and doc_id in company.paid:
            raise business(
                f"This invoice has been paid. To change invoice {doc_id}, first remove the "
                "payment applied to it."
            )
        if obj.get("sparse") is True:
            merged = {k: v for k, v in existing.items() if k in FIELDS[entity]}
            merged.update(obj)
        else:
            merged = dict(obj)
            if "DocNumber" not in merged and existing.get("DocNumber"):
                # Emulator choice: a full update without DocNumber keeps the number.
                merged["DocNumber"] = existing["DocNumber"]
        doc = validated(company, entity, merged, existing=existing, today=self._today)
        doc.update(
            {
                "Id": doc_id,
                "SyncToken": str(int(existing["SyncToken"]) + 1),
                "domain": "QBO",
                "sparse": False,
                "MetaData": {
                    "CreateTime": existing.get("MetaData", {}).get("CreateTime", self._time()),
                    "LastUpdatedTime": self._time(),
                },
            }
        )
        if entity == "Invoice" and doc_id in company.paid:
            doc["LinkedTxn"] = existing.get("LinkedTxn", [])
        company.table(entity)[doc_id] = doc
        company.updated[entity] += 1
        self.calls[f"update:{entity}"] += 1
        return doc

    # -- queries and batches --------------------------------------------------------------------

    def _query(self, company: Company, statement: str) -> JSON:
        try:
            query = parse_query(statement)
        except QueryError as exc:
            raise validation("4000", "Error parsing query", str(exc)) from None
        entity = ENTITIES.get(query.entity.lower())
        if entity is None:
            raise validation(
                "4000",
                "Error parsing query",
                f"QueryValidationError: Invalid entity {query.entity} in the FROM clause",
            )
        page, total = evaluate(
            query, company.table(entity).values(), has_active=entity in NAME_LISTS
        )
        if query.count:
            return {"totalCount": total}
        if not page:
            return {}
        return {entity: page, "startPosition": query.start, "maxResults": len(page)}

    def _batch(self, company: Company, body: Any) -> JSON:
        items = body.get("BatchItemRequest") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            raise required("BatchItemRequest")
        if len(items) > BATCH_MAX_ITEMS:
            raise validation(
                "4002",
                "Too many batch items",
                f"A batch request can carry at most {BATCH_MAX_ITEMS} items; this one has "
                f"{len(items)}",
                "BatchItemRequest",
            )
        seen: set[str] = set()
        for item in items:
            bid = item.get("bId") if isinstance(item, dict) else None
            if not isinstance(bid, str) or not bid or len(bid) > BATCH_ID_MAX or bid in seen:
                raise validation(
                    "4002",
                    "Invalid batch item id",
                    f"Every batch item needs a unique bId of 1 to {BATCH_ID_MAX} characters; "
                    f"got {bid!r}",
                    "bId",
                )
            seen.add(bid)
        answers = []
        for item in items:
            bid = item["bId"]
            try:
                answers.append({"bId": bid, **self._batch_item(company, item)})
            except QboFault as fault:
                answers.append({"bId": bid, "Fault": fault.fault()})
        return {"BatchItemResponse": answers}

    def _batch_item(self, company: Company, item: JSON) -> JSON:
        if "Query" in item:
            statement = item["Query"]
            if not isinstance(statement, str):
                raise required("Query")
            return {"QueryResponse": self._query(company, statement)}
        operation = item.get("operation")
        entities = [k for k in item if k not in ("bId", "operation", "optionsData")]
        if operation not in ("create", "update") or len(entities) != 1:
            raise validation(
                "4001",
                "Unsupported Operation",
                f"batch operation {operation!r} on {entities} is not supported by this emulator",
            )
        entity = entities[0]
        if entity not in WRITABLE:
            raise unsupported(entity)
        return {entity: self._write(company, entity, item[entity], str(operation))}


def _day(value: date | str | None) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else value


def _json_body(body: bytes) -> Any:
    try:
        return loads(body) if body else None
    except (simplejson.JSONDecodeError, UnicodeDecodeError) as exc:
        raise validation(
            "2010",
            "Request has invalid or unsupported property",
            f"Property Name:Unrecognized token: {type(exc).__name__} specified is unsupported or "
            "invalid",
        ) from None
