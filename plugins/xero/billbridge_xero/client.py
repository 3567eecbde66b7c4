"""The Xero Accounting API over HTTP: requests, limits, and what Xero's answers mean.

:class:`XeroClient` is built per hook call from the core's
:class:`~billbridge.plugin.contract.Connection` (whose ``http`` client the core owns and closes).
Every
request carries ``Authorization: Bearer …``, ``xero-tenant-id`` (REFERENCE.md: "every API call
sends header xero-tenant-id") and ``Accept: application/json``.

Writes (:meth:`XeroClient.write`) always send ``summarizeErrors=false``: Xero then answers
HTTP 200 with one element per input carrying ``StatusAttributeString`` OK/WARNING/ERROR, so each
document succeeds or fails on its own. Without it one bad element fails the whole request with a
400 while the others may still be created, and the caller cannot tell which.

Xero's answers become :mod:`billbridge.errors` exceptions:

==========================================  ==============================================
Xero says                                   raised
==========================================  ==============================================
429 + ``X-Rate-Limit-Problem``              ``RateLimited(retry_after=Retry-After,
                                            scope=minute|day|concurrent|appminute)``
401                                         ``TokenExpired`` (the core refreshes, retries)
403 (``AuthorizationUnsuccessful``)         ``AuthenticationFailed`` (reconnect)
400 ``ValidationException``                 ``XeroValidationError`` (a
                                            ``DestinationValidationError``) with every
                                            ``ValidationErrors[].Message`` word for word;
                                            on a write whose every element is listed,
                                            one error per element instead
413 (body too large)                        ``DestinationValidationError``
5xx, timeouts, ``httpx.TransportError``      ``TransientError``
element "Invoice # must be unique."          ``DuplicateNumber`` (the caller reconciles)
element "… lock date …"                     ``AccountingPeriodClosed``
element "not of valid status for            ``InvoiceAlreadyPaid`` (paid, voided or deleted
modification" / "cannot be edited as it      documents cannot change)
has a payment or credit note allocated"
other element errors                        ``DestinationValidationError``
==========================================  ==============================================

Rate limits. Xero reports ``X-DayLimit-Remaining``, ``X-MinLimit-Remaining`` and
``X-AppMinLimit-Remaining`` on every response; the client keeps the latest in
:attr:`XeroClient.rate_limits` and passes them to the core's limiter through
``Connection.limit_left`` (scopes ``minute``, ``day``, ``appminute``) where the core offers it.
When the last answer said that the per-minute allowance (tenant or app) is spent, the next
request is not sent: ``RateLimited`` is raised at once with the rest of that minute as
``retry_after``, because Xero would refuse it anyway and every 429 is a call wasted. The daily
allowance is left to Xero's own 429, whose ``Retry-After`` says when the day's window frees up
(the client cannot know that).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

import attrs
import httpx
import simplejson

import billbridge
from billbridge.domain.models import dumps, loads
from billbridge.errors import (
    AccountingPeriodClosed,
    AuthenticationFailed,
    DestinationError,
    DestinationValidationError,
    InvoiceAlreadyPaid,
    PermanentError,
    RateLimited,
    TokenExpired,
    TransientError,
)
from billbridge.plugin.contract import Connection
from billbridge.plugin.http import transport_problem
from billbridge.plugin.idempotency import derived_key

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_ELEMENTS",
    "MAX_IDEMPOTENCY_KEY",
    "DuplicateNumber",
    "ElementResult",
    "RateLimitStatus",
    "XeroClient",
    "XeroValidationError",
    "api_host",
    "element_error",
    "idempotency_key",
]

#: Xero: up to 50 documents per request.
MAX_ELEMENTS = 50
#: Xero: a request body must stay under 3.5 MB (kept under 3.5 million bytes to be safe).
MAX_BODY_BYTES = 3_500_000
#: Xero: the ``Idempotency-Key`` header takes at most 128 characters.
MAX_IDEMPOTENCY_KEY = 128
#: Seconds in Xero's per-minute windows.
MINUTE = 60.0
#: Retry-After when a 429 arrives without one (not documented to happen).
DEFAULT_RETRY_AFTER = 60.0

DocumentKind = Literal["Invoice", "CreditNote"]
_ENDPOINTS: dict[str, str] = {"Invoice": "Invoices", "CreditNote": "CreditNotes"}
_NUMBER_FIELDS: dict[str, str] = {"Invoice": "InvoiceNumber", "CreditNote": "CreditNoteNumber"}

_USER_AGENT = f"billbridge/{billbridge.__version__} (+https://billbridge.dev)"


def api_host(api_base_url: str) -> str:
    """The API host of an API base URL: ``https://api.xero.com`` for ``…/api.xro/2.0``.

    ``/connections`` lives on the host, not under the accounting API's path.
    """
    base = api_base_url.rstrip("/")
    for suffix in ("/api.xro/2.0", "/api.xro"):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def idempotency_key(base: str, operation: str, body: bytes) -> str:
    """The ``Idempotency-Key`` header for one request (at most 128 characters).

    ``base`` is the core's key: the hook's idempotency key (per bill, version and integration),
    or for a batch request the key ``send_bills`` was given; ``operation`` says what the request
    does (``create-Invoices``, ``batch-update-CreditNotes``...). The key is
    :func:`billbridge.plugin.idempotency.derived_key` of both and the body: Xero's replay returns
    the stored answer for a key, so a retry after a lost response (same body) gets the original
    answer and creates nothing twice, while a changed request for the same bill version (say,
    after a mapping was fixed) is a new key and is really processed.
    """
    return derived_key(f"billbridge:{operation}:{base}", body, limit=MAX_IDEMPOTENCY_KEY)


@attrs.frozen
class RateLimitStatus:
    """The allowances Xero reported on its latest answer (``None``: header absent).

    ``observed_at`` is the client's monotonic clock reading when the answer arrived.
    """

    day_remaining: int | None
    minute_remaining: int | None
    app_minute_remaining: int | None
    observed_at: float

    @classmethod
    def from_headers(cls, headers: httpx.Headers, observed_at: float) -> RateLimitStatus | None:
        """Read the three ``X-…Limit-Remaining`` headers; ``None`` when none is present."""
        values = [
            _int_header(headers, name)
            for name in ("X-DayLimit-Remaining", "X-MinLimit-Remaining", "X-AppMinLimit-Remaining")
        ]
        if all(v is None for v in values):
            return None
        return cls(values[0], values[1], values[2], observed_at)

    def blocked(self, now: float) -> tuple[str, float] | None:
        """``(scope, seconds)`` when a per-minute allowance is known to be spent, else ``None``."""
        elapsed = now - self.observed_at
        if elapsed >= MINUTE:
            return None
        if self.minute_remaining == 0:
            return "minute", MINUTE - elapsed
        if self.app_minute_remaining == 0:
            return "appminute", MINUTE - elapsed
        return None


def _int_header(headers: httpx.Headers, name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


@attrs.frozen
class ElementResult:
    """Xero's answer for one element of a write, in request order.

    ``errors`` are the element's ``ValidationErrors[].Message`` exactly as Xero wrote them;
    ``warnings`` its ``Warnings[].Message``.
    """

    index: int
    status: str
    element: Mapping[str, Any]
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when Xero saved the element (status OK or WARNING)."""
        return self.status in ("OK", "WARNING") and not self.errors


class XeroValidationError(DestinationValidationError):
    """HTTP 400 ``ValidationException``; ``elements`` are the refused elements as Xero sent them."""

    def __init__(
        self, message: str, *, detail: str | None = None, elements: Sequence[Any] = ()
    ) -> None:
        self.elements: tuple[Any, ...] = tuple(elements)
        super().__init__(message, detail=detail)


class DuplicateNumber(DestinationValidationError):
    """Xero refused a create because the document number is taken ("Invoice # must be unique.").

    The document may be one made earlier for the same bill whose answer was lost: the caller
    looks it up by number and reconciles (see :mod:`billbridge_xero.send`).
    """

    def __init__(self, message: str, *, number: str | None, detail: str | None = None) -> None:
        self.number = number
        super().__init__(message, detail=detail)


def _messages(items: Any) -> tuple[str, ...]:
    if not isinstance(items, list):
        return ()
    found = []
    for item in items:
        if isinstance(item, Mapping) and item.get("Message"):
            found.append(str(item["Message"]))
    return tuple(found)


def element_error(result: ElementResult, label: str) -> DestinationError:
    """The exception that an element Xero refused stands for (see the module's table).

    ``label`` names the document in the message (``invoice INV-1 (bill …)``); Xero's messages
    follow word for word, and are also the exception's ``detail``.
    """
    messages = result.errors or ("Xero refused the document without saying why",)
    text = "; ".join(messages)
    detail = "\n".join(messages)
    lowered = [m.casefold() for m in messages]
    if any("lock date" in m for m in lowered):
        return AccountingPeriodClosed(
            f"{label}: its date falls in a period that is locked in Xero: {text}", detail=detail
        )
    if any(
        "not of valid status for modification" in m
        or "cannot be edited as it has a payment" in m
        or "cannot be edited as it has been paid" in m
        for m in lowered
    ):
        return InvoiceAlreadyPaid(
            f"{label} can no longer be changed in Xero (paid, voided or deleted): {text}",
            detail=detail,
        )
    if any("# must be unique" in m for m in lowered):
        number = result.element.get("InvoiceNumber") or result.element.get("CreditNoteNumber")
        return DuplicateNumber(
            f"{label}: {text}", number=str(number) if number else None, detail=detail
        )
    return DestinationValidationError(f"Xero refused {label}: {text}", detail=detail)


def _short(text: str, limit: int = 500) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class XeroClient:
    """The Xero Accounting API for one organisation (the connection's tenant).

    :param connection: the core's connection (fresh token, tenant id, HTTP client, API base).
    :param monotonic: the clock for rate-limit bookkeeping (tests pass their own).
    """

    def __init__(
        self, connection: Connection, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._connection = connection
        self._base = connection.api_base_url.rstrip("/")
        self._monotonic = monotonic
        self._status: RateLimitStatus | None = None
        #: Requests sent (not counting those refused before sending), for logs and tests.
        self.requests_sent = 0

    @property
    def tenant_id(self) -> str:
        """The Xero organisation (``xero-tenant-id``) this client talks to."""
        return self._connection.tenant_id

    @property
    def rate_limits(self) -> RateLimitStatus | None:
        """The allowances Xero reported on its latest answer, or ``None`` before any."""
        return self._status

    # -- transport ----------------------------------------------------------------------------

    def _headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self._connection.access_token.reveal()}",
            "xero-tenant-id": self._connection.tenant_id,
            "Accept": "application/json",
            "User-Agent": _USER_AGENT,
        }
        if extra:
            headers.update(extra)
        return headers

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        allow: Iterable[int] = (),
    ) -> httpx.Response:
        """Send one request to ``{api base}{path}`` and raise for what Xero refused.

        Statuses in ``allow`` (and 2xx) are returned for the caller to read; every other status
        raises the matching :mod:`billbridge.errors` exception.
        """
        blocked = self._status.blocked(self._monotonic()) if self._status else None
        if blocked is not None:
            scope, wait = blocked
            raise RateLimited(
                f"Xero's {scope} allowance for organisation {self.tenant_id} is spent "
                "(X-MinLimit-Remaining/X-AppMinLimit-Remaining was 0); not sending",
                retry_after=round(wait, 3),
                scope=scope,
            )
        extra = dict(headers or {})
        if body is not None:
            extra.setdefault("Content-Type", "application/json")
        try:
            response = self._connection.http.request(
                method,
                self._base + path,
                params=dict(params) if params else None,
                content=body,
                headers=self._headers(extra),
            )
        except httpx.TimeoutException as exc:
            raise TransientError(
                f"Xero did not answer {method} {path} in time ({transport_problem(exc)}); the "
                "request may still have been applied, a retry with the same idempotency key "
                "is safe"
            ) from exc
        except httpx.TransportError as exc:
            raise TransientError(
                f"the connection to Xero failed during {method} {path} ({transport_problem(exc)}); "
                "a retry with the same idempotency key is safe"
            ) from exc
        finally:
            self.requests_sent += 1
        status = RateLimitStatus.from_headers(response.headers, self._monotonic())
        if status is not None:
            self._status = status
            self._report(status)
        if response.is_success or response.status_code in set(allow):
            return response
        raise self._error(response, method, path)

    def _report(self, status: RateLimitStatus) -> None:
        """Pass what Xero says is left to the core's limiter, when the connection takes it.

        ``Connection.limit_left(scope, remaining)`` is looked up rather than required, so the
        plugin also works with a core that does not offer it.
        """
        report = getattr(self._connection, "limit_left", None)
        if not callable(report):
            return
        for scope, remaining in (
            ("minute", status.minute_remaining),
            ("day", status.day_remaining),
            ("appminute", status.app_minute_remaining),
        ):
            if remaining is not None:
                report(scope, remaining)

    def _error(self, response: httpx.Response, method: str, path: str) -> DestinationError:
        code = response.status_code
        where = f"{method} {path}"
        body = _json_or_none(response)
        detail = _problem_detail(body) or _short(response.text)
        if code == 429:
            problem = (response.headers.get("X-Rate-Limit-Problem") or "minute").strip().lower()
            retry_after = _retry_after(response.headers.get("Retry-After"))
            return RateLimited(
                f"Xero's {problem} rate limit for organisation {self.tenant_id} was reached "
                f"({where}); retry in {retry_after:g} s",
                retry_after=retry_after,
                scope=problem,
                detail=detail or None,
            )
        if code == 401:
            return TokenExpired(
                f"Xero refused the access token (HTTP 401 on {where}): {detail or 'unauthorised'}",
                detail=detail or None,
            )
        if code == 403:
            return AuthenticationFailed(
                f"Xero refused access to organisation {self.tenant_id} (HTTP 403 on {where}: "
                f"{detail or 'forbidden'}): the organisation is no longer connected to the app, "
                "or the consent lacks a scope; reconnect the credential",
                detail=detail or None,
            )
        if code == 400 and isinstance(body, Mapping) and body.get("Type") == "ValidationException":
            raw = body.get("Elements")
            elements: list[Any] = raw if isinstance(raw, list) else []
            messages = [m for el in elements for m in _messages(_get(el, "ValidationErrors"))]
            text = "; ".join(messages) or str(body.get("Message") or "validation failed")
            return XeroValidationError(
                f"Xero refused the request ({where}): {text}",
                detail="\n".join(messages) or None,
                elements=elements,
            )
        if code == 400:
            return DestinationValidationError(
                f"Xero refused the request ({where}, HTTP 400): {detail}", detail=detail or None
            )
        if code == 413:
            return DestinationValidationError(
                f"Xero refused the request as too large ({where}, HTTP 413); requests must stay "
                "under 3.5 MB",
                detail=detail or None,
            )
        if code == 404:
            return PermanentError(f"Xero has no such resource ({where}, HTTP 404): {detail}")
        if code >= 500:
            return TransientError(
                f"Xero failed on {where} (HTTP {code}): {detail or 'server error'}",
                detail=detail or None,
            )
        return PermanentError(f"Xero answered HTTP {code} to {where}: {detail}")

    def get_json(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """``GET`` a resource and return its JSON (numbers as exact ``Decimal``)."""
        response = self.request("GET", path, params=params)
        return _parse(response, f"GET {path}")

    # -- documents ----------------------------------------------------------------------------

    def write(
        self,
        kind: DocumentKind,
        method: Literal["PUT", "POST"],
        elements: Sequence[Mapping[str, Any]],
        *,
        idempotency_key: str,
        unitdp: int = 2,
    ) -> list[ElementResult]:
        """Create (``PUT``) or create-or-update (``POST``) up to 50 documents in one request.

        Sends ``summarizeErrors=false`` (and ``unitdp=4`` when asked) with the
        ``Idempotency-Key`` header, and returns one :class:`ElementResult` per element, in
        order. Refuses (``ValueError``) more than 50 elements, a key over 128 characters, and
        (``DestinationValidationError``) a body of 3.5 MB or more: split first.
        """
        if not elements:
            return []
        if len(elements) > MAX_ELEMENTS:
            raise ValueError(
                f"{len(elements)} documents in one request; Xero takes at most {MAX_ELEMENTS}"
            )
        if len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
            raise ValueError(f"an Idempotency-Key has at most {MAX_IDEMPOTENCY_KEY} characters")
        endpoint = _ENDPOINTS[kind]
        body = dumps({endpoint: list(elements)}).encode("utf-8")
        if len(body) >= MAX_BODY_BYTES:
            raise DestinationValidationError(
                f"the request body would be {len(body):,} bytes; Xero takes less than 3.5 MB per "
                "request"
            )
        params = {"summarizeErrors": "false"}
        if unitdp == 4:
            params["unitdp"] = "4"
        try:
            response = self.request(
                method,
                f"/{endpoint}",
                params=params,
                body=body,
                headers={"Idempotency-Key": idempotency_key},
            )
        except XeroValidationError as refused:
            # A 400 that lists every element sent (all refused) still says which document
            # failed how; anything less cannot be matched to the documents and stays whole.
            if len(refused.elements) != len(elements):
                raise
            return [
                _element_result(i, {**element, "HasErrors": True})
                if isinstance(element, Mapping)
                else _element_result(i, element)
                for i, element in enumerate(refused.elements)
            ]
        data = _parse(response, f"{method} /{endpoint}")
        returned = data.get(endpoint) if isinstance(data, Mapping) else None
        if not isinstance(returned, list) or len(returned) != len(elements):
            count = len(returned) if isinstance(returned, list) else "no"
            raise TransientError(
                f"Xero answered {method} /{endpoint} with {count} documents for "
                f"{len(elements)} sent; the outcome is unknown, retrying with the same "
                "idempotency key is safe"
            )
        return [_element_result(i, element) for i, element in enumerate(returned)]

    def create_invoices(
        self, elements: Sequence[Mapping[str, Any]], idempotency_key: str, *, unitdp: int = 2
    ) -> list[ElementResult]:
        """``PUT /Invoices``: create only (an element with an InvoiceID is refused by Xero)."""
        return self.write(
            "Invoice", "PUT", elements, idempotency_key=idempotency_key, unitdp=unitdp
        )

    def update_invoices(
        self, elements: Sequence[Mapping[str, Any]], idempotency_key: str, *, unitdp: int = 2
    ) -> list[ElementResult]:
        """``POST /Invoices``: update the invoices named by ``InvoiceID`` (or create)."""
        return self.write(
            "Invoice", "POST", elements, idempotency_key=idempotency_key, unitdp=unitdp
        )

    def create_credit_notes(
        self, elements: Sequence[Mapping[str, Any]], idempotency_key: str, *, unitdp: int = 2
    ) -> list[ElementResult]:
        """``PUT /CreditNotes``: create only."""
        return self.write(
            "CreditNote", "PUT", elements, idempotency_key=idempotency_key, unitdp=unitdp
        )

    def update_credit_notes(
        self, elements: Sequence[Mapping[str, Any]], idempotency_key: str, *, unitdp: int = 2
    ) -> list[ElementResult]:
        """``POST /CreditNotes``: update the credit notes named by ``CreditNoteID`` (or create)."""
        return self.write(
            "CreditNote", "POST", elements, idempotency_key=idempotency_key, unitdp=unitdp
        )

    def get_document(self, kind: DocumentKind, document_id: str) -> dict[str, Any] | None:
        """One invoice or credit note by id, or ``None`` when Xero has none."""
        endpoint = _ENDPOINTS[kind]
        response = self.request("GET", f"/{endpoint}/{document_id}", allow=(404,))
        if response.status_code == 404:
            return None
        data = _parse(response, f"GET /{endpoint}/{document_id}")
        found = data.get(endpoint) if isinstance(data, Mapping) else None
        return dict(found[0]) if isinstance(found, list) and found else None

    def find_by_number(self, kind: DocumentKind, number: str) -> list[dict[str, Any]]:
        """Sales documents whose number is ``number`` (compared case-insensitively).

        Invoices use Xero's ``InvoiceNumbers`` filter; credit notes, which have none, and
        numbers with a comma use a ``where`` on the number field.
        """
        escaped = number.replace("\\", "\\\\").replace('"', '\\"')
        if kind == "Invoice" and "," not in number:
            params = {"InvoiceNumbers": number}
        else:
            # InvoiceNumbers is a comma-separated list, so a number with a comma goes by where.
            params = {"where": f'{_NUMBER_FIELDS[kind]}=="{escaped}"'}
        endpoint = _ENDPOINTS[kind]
        data = self.get_json(f"/{endpoint}", params)
        found = data.get(endpoint) if isinstance(data, Mapping) else None
        wanted = number.casefold()
        field = _NUMBER_FIELDS[kind]
        return [
            dict(doc)
            for doc in (found if isinstance(found, list) else [])
            if isinstance(doc, Mapping) and str(doc.get(field, "")).casefold() == wanted
        ]

    # -- lists --------------------------------------------------------------------------------

    def list_contacts(
        self, *, page: int = 1, search: str | None = None, page_size: int = 100
    ) -> tuple[list[dict[str, Any]], bool]:
        """One page of contacts (100 a page) and whether more pages follow.

        ``search`` goes to Xero's ``searchTerm`` (case-insensitive, over name, number, email).
        """
        params = {"page": str(page)}
        if page_size != 100:
            params["pageSize"] = str(page_size)
        if search:
            params["searchTerm"] = search
        data = self.get_json("/Contacts", params)
        contacts = _list(data, "Contacts")
        pagination = data.get("pagination") if isinstance(data, Mapping) else None
        if isinstance(pagination, Mapping) and pagination.get("pageCount") is not None:
            more = page < int(pagination["pageCount"])
        else:
            more = len(contacts) >= page_size
        return contacts, more

    def list_items(self, where: str | None = None) -> list[dict[str, Any]]:
        """Every item (Xero does not page ``/Items``)."""
        return _list(self.get_json("/Items", _where(where)), "Items")

    def list_accounts(self, where: str | None = None) -> list[dict[str, Any]]:
        """The chart of accounts, optionally filtered by ``where`` (``Class=="REVENUE"``)."""
        return _list(self.get_json("/Accounts", _where(where)), "Accounts")

    def list_tax_rates(self, where: str | None = None) -> list[dict[str, Any]]:
        """Tax rates (``TaxType`` is what invoice lines name)."""
        return _list(self.get_json("/TaxRates", _where(where)), "TaxRates")

    def list_tracking_categories(self, where: str | None = None) -> list[dict[str, Any]]:
        """Active tracking categories with their options."""
        return _list(self.get_json("/TrackingCategories", _where(where)), "TrackingCategories")

    def list_branding_themes(self) -> list[dict[str, Any]]:
        """Branding themes (``BrandingThemeID``)."""
        return _list(self.get_json("/BrandingThemes"), "BrandingThemes")


def _where(where: str | None) -> dict[str, str] | None:
    return {"where": where} if where else None


def _get(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, Mapping) else None


def _list(data: Any, key: str) -> list[dict[str, Any]]:
    found = data.get(key) if isinstance(data, Mapping) else None
    return [dict(x) for x in found if isinstance(x, Mapping)] if isinstance(found, list) else []


def _element_result(index: int, element: Any) -> ElementResult:
    if not isinstance(element, Mapping):
        return ElementResult(index, "ERROR", {}, ("Xero answered with something not a document",))
    errors = _messages(element.get("ValidationErrors"))
    warnings = _messages(element.get("Warnings"))
    status = str(element.get("StatusAttributeString") or "").upper()
    if not status:
        status = "ERROR" if element.get("HasErrors") or errors else "OK"
    if element.get("HasErrors") and status != "ERROR":
        status = "ERROR"
    return ElementResult(index, status, element, errors, warnings)


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return loads(response.content) if response.content else None
    except (simplejson.JSONDecodeError, ValueError):
        return None


def _parse(response: httpx.Response, where: str) -> Any:
    try:
        return loads(response.content)
    except (simplejson.JSONDecodeError, ValueError):
        raise TransientError(
            f"Xero answered {where} with HTTP {response.status_code} but not JSON: "
            f"{_short(response.text, 200)}"
        ) from None


def _problem_detail(body: Any) -> str:
    """The human part of a Xero error body (``Detail``/``Message``/``Title``), or ``""``."""
    if not isinstance(body, Mapping):
        return ""
    for key in ("Detail", "Message", "Title", "detail", "message", "error"):
        value = body.get(key)
        if value:
            return _short(str(value))
    return ""


def _retry_after(value: str | None) -> float:
    if value is None:
        return DEFAULT_RETRY_AFTER
    try:
        seconds = float(value.strip())
    except ValueError:
        return DEFAULT_RETRY_AFTER
    return seconds if seconds >= 0 else DEFAULT_RETRY_AFTER
