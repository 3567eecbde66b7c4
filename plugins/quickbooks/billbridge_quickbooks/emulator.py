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
  sparse update (``Id`` + ``SyncToken``; a stale one is 5010) and read; reads of customers,
  items, accounts, tax codes and terms; ``companyinfo/{realmId}``; ``query``; ``batch``.
  Every answer is JSON with ``Decimal`` amounts, errors in the ``Fault`` envelope.
* **Rules**: ``CustomerRef`` and ``Line`` required (2020); unknown properties refused (2010);
  an unknown or inactive customer, item, tax code or term is 610; ``Amount`` must equal
  ``Qty × UnitPrice`` rounded half-up to the currency's minor unit (6070); ``DocNumber`` at most
  21 characters (2050) and unique per entity (6140); a negative total is refused (6000);
  ``requestid`` (≤ 50, ≤ 36 on batch) replays the first answer, per realm.
* **Limits** per realm on the emulator's clock: 500 requests a minute, 10 a second, 40 batch
  requests a minute; over them, HTTP 429 with the ``ThrottleExceeded`` fault (errorCode 003001)
  and no Retry-After, as Intuit documents none.
* **Test hooks**: :meth:`QuickBooksEmulator.mark_paid` (updates then fail: the invoice has
  been paid), :meth:`~QuickBooksEmulator.close_books` (writes dated on or before the closing
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
"""

from __future__ import annotations

import os
import secrets
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import attrs
import simplejson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from billbridge.domain.clock import Clock, SystemClock
from billbridge.domain.models import dumps, loads
from billbridge.domain.money import minor_units, round_half_up
from billbridge.testing.emulation.emulators import DemoDocument, ServedEmulator
from billbridge.testing.emulation.faults import FaultMiddleware, FaultPlan
from billbridge.testing.emulation.limits import SlidingWindow
from billbridge.testing.emulation.oauth import Authorization, OAuthServer
from billbridge.testing.emulation.server import RunningServer, serve
from billbridge_quickbooks.emulator_query import QueryError, evaluate, parse_query

__all__ = [
    "ACCESS_TOKEN_LIFETIME",
    "REFRESH_TOKEN_LIFETIME",
    "Company",
    "QuickBooksEmulator",
    "main",
]

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

#: Path segment → entity name, for the entities the emulator serves.
ENTITIES = {
    "invoice": "Invoice",
    "creditmemo": "CreditMemo",
    "customer": "Customer",
    "item": "Item",
    "account": "Account",
    "taxcode": "TaxCode",
    "term": "Term",
    "companyinfo": "CompanyInfo",
}
WRITABLE = ("Invoice", "CreditMemo")
#: Name lists: queries return only active rows unless they mention Active.
NAME_LISTS = frozenset({"Customer", "Item", "Account", "TaxCode", "Term"})

_COMMON_FIELDS = frozenset(
    {
        "Id",
        "SyncToken",
        "sparse",
        "domain",
        "MetaData",
        "CustomField",
        "DocNumber",
        "TxnDate",
        "DepartmentRef",
        "CurrencyRef",
        "ExchangeRate",
        "PrivateNote",
        "TxnStatus",
        "LinkedTxn",
        "Line",
        "TxnTaxDetail",
        "CustomerRef",
        "CustomerMemo",
        "BillAddr",
        "ShipAddr",
        "ShipFromAddr",
        "ClassRef",
        "SalesTermRef",
        "GlobalTaxCalculation",
        "TotalAmt",
        "HomeTotalAmt",
        "PrintStatus",
        "EmailStatus",
        "BillEmail",
        "Balance",
        "HomeBalance",
        "ApplyTaxAfterDiscount",
        "TransactionLocationType",
        "ProjectRef",
        "RecurDataRef",
        "TaxExemptionRef",
        "TxnSource",
        "PaymentMethodRef",
        "DepositToAccountRef",
    }
)
#: Top-level properties each writable entity accepts; anything else is code 2010.
FIELDS: Mapping[str, frozenset[str]] = {
    "Invoice": _COMMON_FIELDS
    | {
        "DueDate",
        "ShipMethodRef",
        "ShipDate",
        "TrackingNum",
        "BillEmailCc",
        "BillEmailBcc",
        "Deposit",
        "DeliveryInfo",
        "AllowIPNPayment",
        "AllowOnlinePayment",
        "AllowOnlineCreditCardPayment",
        "AllowOnlineACHPayment",
        "InvoiceLink",
        "FreeFormAddress",
        "EInvoiceStatus",
    },
    "CreditMemo": _COMMON_FIELDS | {"RemainingCredit", "InvoiceRef"},
}
_LINE_FIELDS = frozenset(
    {
        "Id",
        "LineNum",
        "Description",
        "Amount",
        "DetailType",
        "SalesItemLineDetail",
        "DescriptionLineDetail",
        "SubTotalLineDetail",
        "LinkedTxn",
        "ProjectRef",
        "CustomField",
    }
)
_SALES_DETAIL_FIELDS = frozenset(
    {
        "ItemRef",
        "Qty",
        "UnitPrice",
        "ServiceDate",
        "TaxCodeRef",
        "ClassRef",
        "ItemAccountRef",
        "TaxInclusiveAmt",
        "DiscountRate",
        "DiscountAmt",
        "MarkupInfo",
        "TaxClassificationRef",
    }
)
_DETAIL_KEYS = {
    "SalesItemLineDetail": "SalesItemLineDetail",
    "DescriptionOnly": "DescriptionLineDetail",
    "SubTotalLineDetail": "SubTotalLineDetail",
}

DOC_NUMBER_MAX = 21
PRIVATE_NOTE_MAX = 4000
DESCRIPTION_MAX = 4000
CUSTOMER_MEMO_MAX = 1000

_BUSINESS = "A business validation error has occurred while processing your request"
_INACTIVE = (
    "Object Not Found : Something you're trying to use has been made inactive. Check the "
    "fields with accounts, customers, items, vendors or employees."
)

JSON = dict[str, Any]


# --- faults ------------------------------------------------------------------------------------


class QboFault(Exception):
    """An error answer: HTTP status, Fault type and errors (Message, Detail, code, element)."""

    def __init__(
        self,
        status: int,
        kind: str,
        code: str,
        message: str,
        detail: str = "",
        element: str = "",
    ) -> None:
        super().__init__(f"{code} {message}: {detail}")
        self.status = status
        self.kind = kind
        self.errors = [{"Message": message, "Detail": detail, "code": code, "element": element}]

    def fault(self) -> JSON:
        """The ``Fault`` object (what a batch item carries)."""
        return {"Error": list(self.errors), "type": self.kind}


def _validation(code: str, message: str, detail: str = "", element: str = "") -> QboFault:
    return QboFault(400, "ValidationFault", code, message, detail, element)


def _required(element: str) -> QboFault:
    return _validation(
        "2020",
        "Required param missing, need to supply the required value for the API",
        f"Required parameter {element} is missing in the request",
        element,
    )


def _unsupported(name: str) -> QboFault:
    return _validation(
        "2010",
        "Request has invalid or unsupported property",
        f"Property Name:{name} specified is unsupported or invalid",
    )


def _too_long(element: str, length: int, limit: int) -> QboFault:
    return _validation(
        "2050",
        "String length is either shorter or longer than supported by specification",
        f"String length specified does not match the supported length. Min:0 Max:{limit} "
        f"supported. Supplied length:{length}",
        element,
    )


def _inactive(element: str, ref: str) -> QboFault:
    return _validation("610", "Object Not Found", f"{_INACTIVE} ({element} {ref})", element)


def _business(detail: str, element: str = "") -> QboFault:
    return _validation("6000", _BUSINESS, f"Business Validation Error: {detail}", element)


def _system_fault_body(status: int, time_text: str) -> JSON:
    if status == 503:
        error = {
            "Message": "Service Unavailable",
            "Detail": "The service is temporarily unavailable. Please try again later.",
            "code": "3003",
        }
    elif status == 504:
        error = {
            "Message": "Gateway Timeout",
            "Detail": "The request did not complete in time. Please try again later.",
            "code": "3004",
        }
    else:
        error = {
            "Message": "An application error has occurred while processing your request",
            "Detail": (
                "System Failure Error: An unexpected error occurred while accessing or saving "
                "your data. Please wait a few minutes and try again. If the problem persists, "
                "contact customer support."
            ),
            "code": "10000",
        }
    return {"Fault": {"Error": [error], "type": "SystemFault"}, "time": time_text}


# --- helpers -------------------------------------------------------------------------------------


def _decimal(value: Any, element: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise _validation(
            "2010",
            "Request has invalid or unsupported property",
            f"Property Name:{element} must be a number",
            element,
        )
    try:
        result = Decimal(str(value))
    except ArithmeticError:
        raise _validation(
            "2010",
            "Request has invalid or unsupported property",
            f"Property Name:{element} must be a number",
            element,
        ) from None
    if not result.is_finite():
        raise _validation("2010", "Request has invalid or unsupported property", element)
    return result


def _date(value: Any, element: str) -> date:
    if not isinstance(value, str):
        raise _validation("2010", "Request has invalid or unsupported property", element)
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise _validation(
            "2010",
            "Request has invalid or unsupported property",
            f"Property Name:{element} must be a date (YYYY-MM-DD), got {value}",
            element,
        ) from None


def _ref(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping) or not isinstance(value.get("value"), str | int):
        raise _validation(
            "2010",
            "Request has invalid or unsupported property",
            f"Property Name:{key} must be an object with a value",
            key,
        )
    return str(value["value"])


# --- companies ---------------------------------------------------------------------------------


@attrs.define
class Company:
    """One QuickBooks company (realm) and everything in it. Tests read and change it freely."""

    realm_id: str
    name: str
    country: str = "US"
    home_currency: str = "USD"
    #: When False QuickBooks numbers documents itself and never answers 6140.
    custom_doc_numbers: bool = True
    closing_date: date | None = None
    subscription_ended: bool = False
    #: entity → Id → object, in creation order.
    entities: dict[str, dict[str, JSON]] = attrs.field(factory=dict)
    paid: set[str] = attrs.field(factory=set)
    #: Documents created / updated per entity (requestid replays excluded).
    created: Counter[str] = attrs.field(factory=Counter)
    updated: Counter[str] = attrs.field(factory=Counter)
    #: requestid → (HTTP status, body) of the first answer.
    replies: dict[str, tuple[int, bytes]] = attrs.field(factory=dict)
    _next_ids: Counter[str] = attrs.field(factory=Counter)
    _next_doc_number: int = 1001

    # -- inspection ---------------------------------------------------------------------------

    def table(self, entity: str) -> dict[str, JSON]:
        """Every ``entity`` object by Id (created on first use)."""
        return self.entities.setdefault(entity, {})

    @property
    def invoices(self) -> dict[str, JSON]:
        """Invoices by Id."""
        return self.table("Invoice")

    @property
    def credit_memos(self) -> dict[str, JSON]:
        """Credit memos by Id."""
        return self.table("CreditMemo")

    @property
    def customers(self) -> dict[str, JSON]:
        """Customers by Id."""
        return self.table("Customer")

    @property
    def items(self) -> dict[str, JSON]:
        """Items by Id."""
        return self.table("Item")

    def find(self, entity: str, name: str) -> JSON:
        """The ``entity`` whose ``DisplayName`` (customers) or ``Name`` is ``name``."""
        for obj in self.table(entity).values():
            if name in (obj.get("DisplayName"), obj.get("Name")):
                return obj
        raise KeyError(f"no {entity} named {name!r} in company {self.realm_id}")

    def id_of(self, entity: str, name: str) -> str:
        """The Id of the ``entity`` named ``name``."""
        return str(self.find(entity, name)["Id"])

    # -- seeding ------------------------------------------------------------------------------

    def next_id(self, entity: str) -> str:
        """A new Id for ``entity`` (each entity has its own sequence, as in QuickBooks)."""
        self._next_ids[entity] += 1
        return str(self._next_ids[entity])

    def next_doc_number(self) -> str:
        """QuickBooks' own numbering, for documents sent without a DocNumber."""
        taken = {
            str(o.get("DocNumber"))
            for entity in WRITABLE
            for o in self.table(entity).values()
            if o.get("DocNumber")
        }
        while str(self._next_doc_number) in taken:
            self._next_doc_number += 1
        number = str(self._next_doc_number)
        self._next_doc_number += 1
        return number

    def add(self, entity: str, obj: JSON, entity_id: str | None = None) -> JSON:
        """Store ``obj`` as a new ``entity`` (with a new Id unless ``entity_id`` is given)."""
        new_id = entity_id or self.next_id(entity)
        stored = {"Id": new_id, "SyncToken": "0", "domain": "QBO", "sparse": False, **obj}
        self.table(entity)[new_id] = stored
        return stored

    def add_customer(
        self,
        name: str,
        *,
        currency: str | None = None,
        email: str | None = None,
        active: bool = True,
    ) -> JSON:
        """Add a customer (``DisplayName`` ``name``)."""
        obj: JSON = {
            "DisplayName": name,
            "CompanyName": name,
            "Active": active,
            "CurrencyRef": {"value": currency or self.home_currency},
            "Balance": Decimal("0"),
        }
        if email:
            obj["PrimaryEmailAddr"] = {"Address": email}
        return self.add("Customer", obj)

    def add_item(self, name: str, *, item_type: str = "Service", active: bool = True) -> JSON:
        """Add an item (a product or service sold)."""
        return self.add(
            "Item",
            {
                "Name": name,
                "FullyQualifiedName": name,
                "Type": item_type,
                "Active": active,
                "IncomeAccountRef": {"value": "1", "name": "Services"},
            },
        )

    def add_account(self, name: str, account_type: str, *, number: str | None = None) -> JSON:
        """Add a ledger account."""
        obj: JSON = {
            "Name": name,
            "FullyQualifiedName": name,
            "AccountType": account_type,
            "Active": True,
            "CurrencyRef": {"value": self.home_currency},
        }
        if number:
            obj["AcctNum"] = number
        return self.add("Account", obj)

    def add_tax_code(self, name: str, *, description: str = "", code_id: str | None = None) -> JSON:
        """Add a tax code (US companies use the ids ``TAX`` and ``NON``)."""
        obj: JSON = {"Name": name, "Description": description, "Active": True, "Taxable": True}
        return self.add("TaxCode", obj, code_id)

    def add_term(self, name: str, due_days: int) -> JSON:
        """Add a payment term."""
        return self.add(
            "Term", {"Name": name, "Active": True, "Type": "STANDARD", "DueDays": due_days}
        )

    def seed(self) -> None:
        """A small company: the sample accounts' customers, items (one inactive), ledger
        accounts, tax codes and terms."""
        self.add_account("Services", "Income")
        self.add_account("Sales of Product Income", "Income", number="4000")
        self.add_account("Accounts Receivable (A/R)", "Accounts Receivable", number="1100")
        self.add_account("Undeposited Funds", "Other Current Asset")
        self.add_customer("Amy's Bird Sanctuary", email="birds@intuit.example")
        self.add_customer("Bill's Windsurf Shop")
        self.add_customer("Cool Cars")
        self.add_customer("Acme Ltd", currency="GBP", email="ap@acme.example")
        self.add_customer("Globex Corporation", email="payables@globex.example")
        self.add_customer("Initech")
        self.add_customer("Dukes Basketball Camp")
        self.add_customer("Old Customer Inc", active=False)
        for item in (
            "Services",
            "Platform",
            "API Calls",
            "Storage",
            "Events",
            "Seats",
            "Credits and Adjustments",
            "Fees",
        ):
            self.add_item(item)
        self.add_item("Legacy Plan", active=False)
        self.add_tax_code("TAX", description="Taxable", code_id="TAX")
        self.add_tax_code("NON", description="Non-taxable", code_id="NON")
        self.add_tax_code("20.0% S", description="UK standard rate")
        self.add_term("Due on receipt", 0)
        self.add_term("Net 15", 15)
        self.add_term("Net 30", 30)
        self.add_term("Net 60", 60)


# --- the emulator -------------------------------------------------------------------------------


class QuickBooksEmulator:
    """QuickBooks Online (API and OAuth) as a Starlette app; see the module docs.

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
        with self._lock:
            company = self.company(realm_id)
            invoice = company.invoices[invoice_id]
            payment_id = company.next_id("Payment")
            invoice["Balance"] = Decimal("0")
            invoice["LinkedTxn"] = [{"TxnId": payment_id, "TxnType": "Payment"}]
            company.paid.add(invoice_id)

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
        return self._response(*self._render(status, _system_fault_body(status, self._time())))

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
                    raise _validation(
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
                        raise _validation(
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
                raise _required("query")
            self.calls["query"] += 1
            return 200, {"QueryResponse": self._query(company, statement)}
        if head == "batch" and request.method == "POST" and len(parts) == 1:
            self.calls["batch"] += 1
            return 200, self._batch(company, _json_body(body))
        entity = ENTITIES.get(head)
        if entity is None:
            raise _validation(
                "4001",
                "Unsupported Operation",
                f"Operation {request.method} /{rest} is not supported by this emulator",
            )
        if request.method == "GET" and len(parts) == 2:
            self.calls[f"read:{entity}"] += 1
            found = company.table(entity).get(parts[1])
            if found is None:
                raise _validation(
                    "610", "Object Not Found", f"{_INACTIVE} ({entity} {parts[1]})", "Id"
                )
            return 200, {entity: found}
        if request.method == "POST" and len(parts) == 1 and entity in WRITABLE:
            operation = request.query_params.get("operation")
            if operation not in (None, "update", "create"):
                raise _validation(
                    "4001",
                    "Unsupported Operation",
                    f"operation={operation} is not supported by this emulator",
                )
            obj = _json_body(body)
            return 200, {entity: self._write(company, entity, obj, operation)}
        raise _validation(
            "4001",
            "Unsupported Operation",
            f"Operation {request.method} /{rest} is not supported by this emulator",
        )

    # -- writes ---------------------------------------------------------------------------------

    def _write(self, company: Company, entity: str, obj: Any, operation: str | None) -> JSON:
        if not isinstance(obj, dict):
            raise _unsupported(entity)
        for key in obj:
            if key not in FIELDS[entity]:
                raise _unsupported(key)
        if operation == "update" or "Id" in obj:
            return self._update(company, entity, obj)
        if operation == "create" or operation is None:
            return self._create(company, entity, obj)
        raise _validation("4001", "Unsupported Operation", f"operation={operation}")

    def _create(self, company: Company, entity: str, obj: JSON) -> JSON:
        doc = self._validated(company, entity, obj, existing=None)
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
            raise _validation("610", "Object Not Found", f"{_INACTIVE} ({entity} {doc_id})", "Id")
        if obj.get("SyncToken") is None:
            raise _required("SyncToken")
        if str(obj["SyncToken"]) != existing["SyncToken"]:
            raise _validation(
                "5010",
                "Stale Object Error",
                f"Stale Object Error : You and {company.name} were working on this at the same "
                f"time. {company.name} finished before you did, so your work was not saved.",
                "SyncToken",
            )
        if entity == "Invoice" and doc_id in company.paid:
            raise _business(
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
        doc = self._validated(company, entity, merged, existing=existing)
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

    def _active(self, company: Company, entity: str, ref: str | None, element: str) -> JSON:
        if ref is None:
            raise _required(element)
        found = company.table(entity).get(ref)
        if found is None or found.get("Active") is False:
            raise _inactive(element, ref)
        return found

    def _validated(
        self, company: Company, entity: str, obj: JSON, *, existing: JSON | None
    ) -> JSON:
        """Check ``obj`` as QuickBooks would and return the document to store (new dict)."""
        customer_ref = _ref(obj, "CustomerRef")
        if customer_ref is None:
            raise _required("CustomerRef")
        lines_in = obj.get("Line")
        if not isinstance(lines_in, list) or not lines_in:
            raise _required("Line")
        customer = self._active(company, "Customer", customer_ref, "CustomerRef")
        currency = _ref(obj, "CurrencyRef") or company.home_currency
        customer_currency = _ref(customer, "CurrencyRef") or company.home_currency
        if currency != customer_currency:
            raise _business(
                f"The currency of the transaction ({currency}) must match the customer's "
                f"currency ({customer_currency})",
                "CurrencyRef",
            )
        term = _ref(obj, "SalesTermRef")
        if term is not None:
            self._active(company, "Term", term, "SalesTermRef")

        doc_number = obj.get("DocNumber")
        if doc_number is not None:
            if not isinstance(doc_number, str):
                raise _unsupported("DocNumber")
            if len(doc_number) > DOC_NUMBER_MAX:
                raise _too_long("DocNumber", len(doc_number), DOC_NUMBER_MAX)
        for element, limit in (("PrivateNote", PRIVATE_NOTE_MAX),):
            text = obj.get(element)
            if isinstance(text, str) and len(text) > limit:
                raise _too_long(element, len(text), limit)
        memo = obj.get("CustomerMemo")
        memo_text = memo.get("value") if isinstance(memo, Mapping) else None
        if isinstance(memo_text, str) and len(memo_text) > CUSTOMER_MEMO_MAX:
            raise _too_long("CustomerMemo", len(memo_text), CUSTOMER_MEMO_MAX)

        txn_date = _date(obj["TxnDate"], "TxnDate") if obj.get("TxnDate") else self._today()
        if company.closing_date is not None:
            dates = [txn_date]
            if existing is not None and existing.get("TxnDate"):
                dates.append(_date(existing["TxnDate"], "TxnDate"))
            if min(dates) <= company.closing_date:
                raise _business(
                    "You can't create or change a transaction dated on or before the closing "
                    f"date of the books ({company.closing_date.isoformat()}). Reopen the books "
                    "or date the transaction after the closing date.",
                    "TxnDate",
                )
        if obj.get("DueDate"):
            _date(obj["DueDate"], "DueDate")

        lines, total = self._lines(company, lines_in, currency)
        if total < 0:
            kind = "An invoice" if entity == "Invoice" else "A credit memo"
            raise _business(
                f"{kind} cannot have a negative total ({total}). Record a negative balance with "
                "a credit memo, and a refund with a refund receipt.",
                "Line",
            )

        if doc_number is None:
            doc_number = (
                existing.get("DocNumber") if existing is not None else None
            ) or company.next_doc_number()
        elif company.custom_doc_numbers:
            own_id = existing.get("Id") if existing is not None else None
            for other in company.table(entity).values():
                if other.get("DocNumber") == doc_number and other.get("Id") != own_id:
                    raise _validation(
                        "6140",
                        "Duplicate Document Number Error",
                        "Duplicate Document Number Error : You must specify a different "
                        f"number. This number has already been used. DocNumber={doc_number} is "
                        f"assigned to TxnType={entity} with TxnId={other['Id']}",
                        "DocNumber",
                    )

        doc: JSON = {k: v for k, v in obj.items() if k not in ("sparse", "MetaData", "Id")}
        doc["CustomerRef"] = {"value": customer_ref, "name": customer.get("DisplayName")}
        doc["CurrencyRef"] = {"value": currency}
        doc["DocNumber"] = doc_number
        doc["TxnDate"] = txn_date.isoformat()
        doc["Line"] = lines
        doc["TotalAmt"] = total
        if entity == "Invoice":
            doc["Balance"] = total
            doc.setdefault("EmailStatus", "NotSet")
        else:
            doc["RemainingCredit"] = total
            doc["Balance"] = total
        doc.setdefault("PrintStatus", "NotSet")
        return doc

    def _lines(
        self, company: Company, lines_in: list[Any], currency: str
    ) -> tuple[list[JSON], Decimal]:
        places = minor_units(currency)
        lines: list[JSON] = []
        total = Decimal("0")
        for raw in lines_in:
            if not isinstance(raw, dict):
                raise _unsupported("Line")
            for key in raw:
                if key not in _LINE_FIELDS:
                    raise _unsupported(key)
            detail_type = raw.get("DetailType")
            if detail_type is None:
                raise _required("DetailType")
            if detail_type == "SubTotalLineDetail":
                continue  # computed by QuickBooks; clients echo it back on full updates
            detail_key = _DETAIL_KEYS.get(str(detail_type))
            if detail_key is None:
                raise _unsupported(f"DetailType {detail_type}")
            line: JSON = {k: v for k, v in raw.items() if k != "Id"}
            description = raw.get("Description")
            if isinstance(description, str) and len(description) > DESCRIPTION_MAX:
                raise _too_long("Description", len(description), DESCRIPTION_MAX)
            if detail_key == "DescriptionLineDetail":
                line.setdefault("DescriptionLineDetail", {})
                line.pop("Amount", None)
            else:
                detail = raw.get(detail_key)
                if not isinstance(detail, dict):
                    raise _required(detail_key)
                for key in detail:
                    if key not in _SALES_DETAIL_FIELDS:
                        raise _unsupported(key)
                if raw.get("Amount") is None:
                    raise _required("Amount")
                amount = _decimal(raw["Amount"], "Amount")
                item_ref = _ref(detail, "ItemRef")
                if item_ref is not None:
                    item = self._active(company, "Item", item_ref, "ItemRef")
                    detail = {**detail, "ItemRef": {"value": item_ref, "name": item.get("Name")}}
                tax_ref = _ref(detail, "TaxCodeRef")
                if tax_ref is not None:
                    self._active(company, "TaxCode", tax_ref, "TaxCodeRef")
                qty = detail.get("Qty")
                price = detail.get("UnitPrice")
                if qty is not None and price is not None:
                    product = _decimal(qty, "Qty") * _decimal(price, "UnitPrice")
                    if round_half_up(product, places) != amount:
                        raise _validation(
                            "6070",
                            "Amount is not equal to UnitPrice * Qty",
                            f"Amount is not equal to UnitPrice * Qty. Supplied value:{amount}",
                        )
                if detail.get("ServiceDate"):
                    _date(detail["ServiceDate"], "ServiceDate")
                line[detail_key] = detail
                line["Amount"] = amount
                if item_ref is not None:
                    # A sales line without an item is documentation: its amount is ignored.
                    total += amount
            line["Id"] = str(len(lines) + 1)
            line["LineNum"] = len(lines) + 1
            lines.append(line)
        lines.append(
            {"Amount": total, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}}
        )
        return lines, total

    # -- queries and batches --------------------------------------------------------------------

    def _query(self, company: Company, statement: str) -> JSON:
        try:
            query = parse_query(statement)
        except QueryError as exc:
            raise _validation("4000", "Error parsing query", str(exc)) from None
        entity = ENTITIES.get(query.entity.lower())
        if entity is None:
            raise _validation(
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
            raise _required("BatchItemRequest")
        if len(items) > BATCH_MAX_ITEMS:
            raise _validation(
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
                raise _validation(
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
                raise _required("Query")
            return {"QueryResponse": self._query(company, statement)}
        operation = item.get("operation")
        entities = [k for k in item if k not in ("bId", "operation", "optionsData")]
        if operation not in ("create", "update") or len(entities) != 1:
            raise _validation(
                "4001",
                "Unsupported Operation",
                f"batch operation {operation!r} on {entities} is not supported by this emulator",
            )
        entity = entities[0]
        if entity not in WRITABLE:
            raise _unsupported(entity)
        return {entity: self._write(company, entity, item[entity], str(operation))}


def _json_body(body: bytes) -> Any:
    try:
        return loads(body) if body else None
    except (simplejson.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _validation(
            "2010",
            "Request has invalid or unsupported property",
            f"Property Name:Unrecognized token: {type(exc).__name__} specified is unsupported or "
            "invalid",
        ) from None


# --- command line ---------------------------------------------------------------------------------


class DemoHandle(ServedEmulator):
    """A running emulator for ``billbridge demo`` (see
    :mod:`billbridge.testing.emulation.emulators`)."""

    destination = "quickbooks"
    title = "QuickBooks Online"

    def __init__(self, tenants: Sequence[tuple[str, str]]) -> None:
        self.emulator = QuickBooksEmulator()
        for realm, name in tenants:
            self.emulator.add_company(realm, name)
        super().__init__(self.emulator.oauth, self.emulator.app)

    def endpoints(self) -> dict[str, str]:
        """Where the engine must send its requests."""
        return self.emulator.endpoints(self.url)

    def tenants(self) -> list[tuple[str, str]]:
        """The seeded companies as ``(realm id, name)``."""
        return [(realm, company.name) for realm, company in self.emulator.companies.items()]

    def grant(self, tenant_ids: Sequence[str]) -> None:
        """A QuickBooks consent connects one company: the first of ``tenant_ids``."""
        self.emulator.choose_company(tenant_ids[0])

    def documents(self, tenant_id: str) -> list[DemoDocument]:
        """Every invoice and credit memo of the company."""
        company = self.emulator.company(tenant_id)
        found = []
        for kind, table in (("Invoice", company.invoices), ("CreditMemo", company.credit_memos)):
            for doc in table.values():
                customer = company.customers.get(str(doc["CustomerRef"]["value"]), {})
                found.append(
                    DemoDocument(
                        id=str(doc["Id"]),
                        kind=kind,
                        number=doc.get("DocNumber"),
                        total=Decimal(str(doc.get("TotalAmt", 0))),
                        customer=str(customer.get("DisplayName", doc["CustomerRef"]["value"])),
                    )
                )
        return found


def start_demo(*, tenants: Sequence[tuple[str, str]]) -> DemoHandle:
    """Start the emulator on a free loopback port with one company per ``(realm id, name)``."""
    return DemoHandle(tenants)


def main(host: str = "127.0.0.1", port: int = 8081) -> None:
    """Serve the emulator in the foreground: one seeded company and one OAuth app.

    The app's id and secret come from ``BILLBRIDGE_EMULATOR_CLIENT_ID`` /
    ``BILLBRIDGE_EMULATOR_CLIENT_SECRET`` or are made up and printed (they are the emulator's
    own, not Intuit credentials). Any loopback redirect URI is accepted. Stop with Ctrl-C.
    """
    emulator = QuickBooksEmulator()
    company = emulator.add_company(name="billbridge demo company")
    client_id = os.environ.get("BILLBRIDGE_EMULATOR_CLIENT_ID") or "billbridge-demo"
    client_secret = os.environ.get("BILLBRIDGE_EMULATOR_CLIENT_SECRET") or secrets.token_urlsafe(18)
    emulator.oauth.add_client(client_id, client_secret)
    base = f"http://{host}:{port}"
    print(
        *[
            f"QuickBooks Online emulator on {base}",
            *(f"  {name}: {url}" for name, url in emulator.endpoints(base).items()),
            f"  company: {company.name} (realmId {company.realm_id})",
            f"  OAuth client id: {client_id}",
            f"  OAuth client secret: {client_secret}",
            "  customers: "
            + ", ".join(
                f"{c['DisplayName']}={c['Id']}" for c in company.customers.values() if c["Active"]
            ),
            "  items: "
            + ", ".join(f"{i['Name']}={i['Id']}" for i in company.items.values() if i["Active"]),
        ],
        sep="\n",
        flush=True,
    )
    uvicorn.run(emulator.app, host=host, port=port, log_level="info", lifespan="off")
