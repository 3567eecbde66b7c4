"""A small client for the QuickBooks Online Accounting API v3, over the core's httpx client.

It knows QuickBooks' transport rules and nothing about bills (REFERENCE.md, "QuickBooks Online
Accounting API v3"):

* every call carries ``minorversion=75`` (lower versions are ignored since August 2025);
* writes carry a ``requestid`` (at most 50 characters, 36 on ``/batch``) so that a retried write
  gets the original answer instead of making a second document: the caller's idempotency key
  bound to the body with :func:`billbridge.plugin.idempotency.derived_key`;
* updates need the current ``SyncToken``; a stale one is answered with code 5010, and
  :meth:`QuickBooksClient.update` re-reads the document and retries once;
* queries page with ``STARTPOSITION`` (1-based) and ``MAXRESULTS`` (at most 1000), strings are
  single-quoted with ``\\'`` for a quote, and there is no ``OR``;
* ``/batch`` takes at most 30 operations, each with a ``bId`` of at most 10 characters, and
  answers HTTP 200 with a ``Fault`` per failed item;
* errors come in one envelope, ``{"Fault": {"Error": [{"Message", "Detail", "code",
  "element"}], "type": …}, "time": …}``, and a 200 can carry one too.

Every failure leaves as one of :mod:`billbridge.errors` (see :func:`error_for_fault`); nothing
raised here contains the access token.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal
from urllib.parse import quote as url_quote

import attrs
import httpx
import simplejson

from billbridge.domain.models import dumps, loads
from billbridge.errors import (
    AccountingPeriodClosed,
    AuthenticationFailed,
    DestinationError,
    DestinationValidationError,
    InvoiceAlreadyPaid,
    RateLimited,
    TokenExpired,
    TransientError,
)
from billbridge.plugin.contract import Connection
from billbridge.plugin.http import transport_problem
from billbridge.plugin.idempotency import derived_key

__all__ = [
    "BATCH_ID_MAX",
    "BATCH_MAX_ITEMS",
    "BATCH_REQUEST_ID_MAX",
    "MINOR_VERSION",
    "QUERY_PAGE_MAX",
    "REQUEST_ID_MAX",
    "THROTTLE_WAIT",
    "BatchOperation",
    "BatchResult",
    "DuplicateDocumentNumber",
    "Fault",
    "FaultError",
    "ObjectNotFound",
    "QuickBooksClient",
    "StaleObject",
    "error_for_fault",
    "quote",
]

log = logging.getLogger(__name__)

MINOR_VERSION = "75"
REQUEST_ID_MAX = 50
BATCH_REQUEST_ID_MAX = 36
BATCH_ID_MAX = 10
BATCH_MAX_ITEMS = 30
QUERY_PAGE_MAX = 1000
#: Intuit documents no Retry-After on 429; its advice is to wait a minute.
THROTTLE_WAIT = 60.0

# Business validation (code 6000) texts that mean "the invoice is paid" or "the books are closed".
# QuickBooks says both in words, not codes, and the wording varies: match loosely, and keep the
# patterns here so that a new wording is a one-line change. The emulator uses these wordings.
PAID_PATTERNS = (
    re.compile(r"\bhas been paid\b", re.IGNORECASE),
    re.compile(r"\b(is|are) (fully |partially )?paid\b", re.IGNORECASE),
    re.compile(r"\blinked to a payment\b", re.IGNORECASE),
    re.compile(r"\bpayments? (has|have) been applied\b", re.IGNORECASE),
)
CLOSED_PATTERNS = (
    re.compile(r"\bclosing date\b", re.IGNORECASE),
    re.compile(r"\bclosed (accounting )?period\b", re.IGNORECASE),
    re.compile(r"\bbooks are closed\b", re.IGNORECASE),
    re.compile(r"\baccount period has closed\b", re.IGNORECASE),
)
# Some Intuit pages print 6210 for a duplicate document number: the message is what is stable.
_DUPLICATE_NUMBER = re.compile(r"duplicate document number", re.IGNORECASE)
_THROTTLE_CODES = frozenset({"003001", "3001"})


# --- faults ----------------------------------------------------------------------------------


def _field(obj: Mapping[str, Any], name: str) -> Any:
    """``obj[name]``, matching the key case-insensitively (throttle bodies use ``fault``)."""
    if name in obj:
        return obj[name]
    lowered = name.lower()
    for key, value in obj.items():
        if isinstance(key, str) and key.lower() == lowered:
            return value
    return None


def _text(value: Any) -> str:
    return "" if value is None else str(value)


@attrs.frozen
class FaultError:
    """One entry of a Fault's ``Error`` list."""

    message: str = ""
    detail: str = ""
    code: str = ""
    element: str = ""


@attrs.frozen
class Fault:
    """QuickBooks' error envelope: a type and one or more errors."""

    type: str
    errors: tuple[FaultError, ...]

    @classmethod
    def from_json(cls, body: Any) -> Fault | None:
        """The ``Fault`` of a response body (or of a batch item), or ``None`` if it has none."""
        if not isinstance(body, Mapping):
            return None
        raw = _field(body, "Fault")
        if not isinstance(raw, Mapping):
            return None
        listed = _field(raw, "Error")
        errors = []
        for entry in listed if isinstance(listed, list) else []:
            if isinstance(entry, Mapping):
                errors.append(
                    FaultError(
                        message=_text(_field(entry, "Message")),
                        detail=_text(_field(entry, "Detail")),
                        code=_text(_field(entry, "code")),
                        element=_text(_field(entry, "element")),
                    )
                )
        return cls(type=_text(_field(raw, "type")), errors=tuple(errors))

    @property
    def codes(self) -> tuple[str, ...]:
        """Every error code, as QuickBooks wrote it."""
        return tuple(e.code for e in self.errors)

    @property
    def first(self) -> FaultError:
        """The first error (an empty one when QuickBooks listed none)."""
        return self.errors[0] if self.errors else FaultError()

    def describe(self) -> str:
        """``Message: Detail (code N, element E)`` for every error, joined by ``; ``."""
        parts = []
        for error in self.errors or (FaultError(message=self.type or "unknown fault"),):
            text = error.message
            if error.detail and error.detail != error.message:
                text = f"{text}: {error.detail}" if text else error.detail
            extras = [f"code {error.code}"] if error.code else []
            if error.element:
                extras.append(f"element {error.element}")
            parts.append(f"{text} ({', '.join(extras)})" if extras else text)
        return "; ".join(parts)

    def mentions(self, pattern: re.Pattern[str]) -> bool:
        """True when a message or detail matches ``pattern``."""
        return any(pattern.search(e.message) or pattern.search(e.detail) for e in self.errors)

    def to_exception(
        self, *, status: int = 400, headers: Mapping[str, str] | None = None
    ) -> DestinationError:
        """The billbridge exception for this fault (see :func:`error_for_fault`)."""
        return error_for_fault(self, status=status, headers=headers)


class StaleObject(TransientError):
    """Code 5010: the SyncToken sent is not the document's current one.

    :meth:`QuickBooksClient.update` re-reads and retries once; when it escapes, someone keeps
    changing the document at the same time, and retrying later is the right answer.
    """


class DuplicateDocumentNumber(DestinationValidationError):
    """Code 6140 (or the message "Duplicate Document Number"): the DocNumber is taken."""

    def __init__(self, message: str, *, detail: str | None = None, code: str = "6140") -> None:
        self.code = code
        super().__init__(message, detail=detail)


class ObjectNotFound(DestinationValidationError):
    """Code 610: a document or name the request refers to does not exist or is inactive."""


def _retry_after(headers: Mapping[str, str] | None) -> float:
    value = (headers or {}).get("retry-after")
    if value is not None:
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
        if seconds >= 0:
            return seconds
    return THROTTLE_WAIT


def error_for_fault(
    fault: Fault, *, status: int = 400, headers: Mapping[str, str] | None = None
) -> DestinationError:
    """Map a QuickBooks fault (and its HTTP status) to the billbridge exception to raise.

    =================================================  =========================================
    QuickBooks                                         billbridge
    =================================================  =========================================
    429, ``ThrottleExceeded``, errorCode 003001        ``RateLimited`` (Retry-After, else 60 s)
    401, code 3200, ``AuthenticationFault``            ``TokenExpired`` (core refreshes, retries)
    code 6190 (subscription ended)                     ``AuthenticationFailed``
    403, code 120, ``AuthorizationFault``              ``AuthenticationFailed``
    code 5010 (stale SyncToken)                        ``StaleObject`` (a ``TransientError``)
    code 6140 / "Duplicate Document Number"            ``DuplicateDocumentNumber``
    code 610 (object not found or inactive)            ``ObjectNotFound`` naming it
    code 6070 (Amount ≠ Qty × UnitPrice)               ``DestinationValidationError``, Detail as is
    a paid invoice (6000 wording)                      ``InvoiceAlreadyPaid``
    a date in a closed period (6000 wording)           ``AccountingPeriodClosed``
    5xx, ``SystemFault``                               ``TransientError``
    anything else (6000, 6240, 2020, 2050, 4000...)    ``DestinationValidationError``
    =================================================  =========================================

    ``detail`` of the exception is QuickBooks' own text, word for word.
    """
    codes = set(fault.codes)
    kind = fault.type.lower()
    first = fault.first
    detail = fault.describe()
    if (
        status == 429
        or codes & _THROTTLE_CODES
        or kind == "throttleexceeded"
        or fault.mentions(re.compile("ThrottleExceeded", re.IGNORECASE))
    ):
        return RateLimited(
            "QuickBooks throttled this company (500 requests a minute, 10 a second and 40 "
            "batches a minute per realm)",
            retry_after=_retry_after(headers),
            scope="minute",
            detail=detail,
        )
    if status == 401 or "3200" in codes or kind == "authenticationfault":
        return TokenExpired("QuickBooks refused the access token (HTTP 401)", detail=detail)
    if "6190" in codes:
        return AuthenticationFailed(
            "the QuickBooks company's subscription has ended (code 6190): the company must "
            "renew its subscription before invoices can be delivered",
            detail=detail,
        )
    if status == 403 or "120" in codes or kind == "authorizationfault":
        return AuthenticationFailed(
            "QuickBooks refused access to this company (authorization failure): reconnect "
            "with a user who can manage invoices",
            detail=detail,
        )
    if "5010" in codes:
        return StaleObject(
            "the QuickBooks document changed since it was read (stale SyncToken, code 5010)",
            detail=detail,
        )
    if "6140" in codes or fault.mentions(_DUPLICATE_NUMBER):
        return DuplicateDocumentNumber(
            "the document number is already used in QuickBooks",
            detail=detail,
            code="6140" if "6140" in codes else first.code,
        )
    if "610" in codes:
        missing = next((e for e in fault.errors if e.code == "610"), first)
        what = missing.element or "an object the invoice refers to"
        return ObjectNotFound(
            f"QuickBooks cannot use {what}: it does not exist or has been made inactive "
            f"(code 610): {missing.detail or missing.message}",
            detail=detail,
        )
    if "6070" in codes:
        bad = next(e for e in fault.errors if e.code == "6070")
        return DestinationValidationError(
            f"QuickBooks refused a line amount (code 6070): {bad.detail or bad.message}",
            detail=bad.detail or bad.message,
        )
    if any(fault.mentions(p) for p in PAID_PATTERNS):
        return InvoiceAlreadyPaid(
            "the QuickBooks invoice is paid and cannot be changed", detail=detail
        )
    if any(fault.mentions(p) for p in CLOSED_PATTERNS):
        return AccountingPeriodClosed(
            "the invoice date is in a period the QuickBooks books have closed", detail=detail
        )
    if status >= 500 or kind == "systemfault":
        return TransientError(f"QuickBooks failed (HTTP {status})", detail=detail)
    return DestinationValidationError(f"QuickBooks refused the request: {detail}", detail=detail)


def _status_error(status: int, headers: Mapping[str, str]) -> DestinationError:
    """An error for a failed response that carries no Fault (a proxy page, an empty body)."""
    if status == 401:
        return TokenExpired("QuickBooks refused the access token (HTTP 401)")
    if status == 403:
        return AuthenticationFailed("QuickBooks refused access to this company (HTTP 403)")
    if status == 429:
        return RateLimited(
            "QuickBooks throttled this company (HTTP 429)",
            retry_after=_retry_after(headers),
            scope="minute",
        )
    if status >= 500 or status in (408, 425):
        return TransientError(f"QuickBooks failed (HTTP {status})")
    return DestinationValidationError(f"QuickBooks refused the request (HTTP {status})")


# --- helpers ----------------------------------------------------------------------------------


def quote(value: str) -> str:
    """A QuickBooks query string literal: single quotes, an embedded quote as ``\\'``.

    >>> quote("Amy's Bird Sanctuary")
    "'Amy\\\\'s Bird Sanctuary'"
    """
    return "'" + value.replace("'", "\\'") + "'"


_QUOTED = re.compile(r"'(?:\\.|[^'\\])*'")
_OR = re.compile(r"\bor\b", re.IGNORECASE)
_PAGING = re.compile(r"\b(startposition|maxresults)\b", re.IGNORECASE)
_FROM = re.compile(r"\bfrom\s+([A-Za-z]+)", re.IGNORECASE)


def _outside_quotes(statement: str) -> str:
    return _QUOTED.sub("''", statement)


@attrs.frozen
class BatchOperation:
    """One item of a ``/batch`` request.

    ``operation`` is ``create``, ``update`` or ``delete`` with ``entity`` and ``payload``, or
    ``query`` with ``query``. ``bid`` (at most 10 characters) correlates the answer.
    """

    bid: str
    operation: Literal["create", "update", "delete", "query"]
    entity: str | None = None
    payload: Mapping[str, Any] | None = None
    query: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``BatchItemRequest`` entry."""
        if self.operation == "query":
            return {"bId": self.bid, "Query": self.query}
        if self.entity is None or self.payload is None:
            raise ValueError(f"batch item {self.bid}: {self.operation} needs an entity and payload")
        return {"bId": self.bid, "operation": self.operation, self.entity: dict(self.payload)}


BatchResult = dict[str, Any] | Fault
"""Per ``bId``: the entity written (or the ``QueryResponse``), or the item's :class:`Fault`."""


# --- the client ----------------------------------------------------------------------------------


class QuickBooksClient:
    """The QuickBooks Online API for one company (realm), over a core-owned httpx client.

    :param connection: the core's connection: ``tenant_id`` is the realm id, ``api_base_url`` the
        API host (``https://quickbooks.api.intuit.com``, the sandbox host or an emulator).
    :param timeout: per-request timeout; ``None`` keeps the connection client's own (QuickBooks
        itself gives up on requests after 120 s).
    """

    def __init__(
        self,
        connection: Connection,
        *,
        timeout: float | httpx.Timeout | None = None,
        minor_version: str = MINOR_VERSION,
    ) -> None:
        self._connection = connection
        self._http = connection.http
        self._timeout = timeout
        self.minor_version = minor_version
        self.realm_id = connection.tenant_id
        self.base_url = (
            f"{connection.api_base_url.rstrip('/')}/v3/company/{url_quote(self.realm_id, safe='')}"
        )
        #: Headers of the last response (``intuit_tid`` identifies a request to Intuit support).
        self.last_headers: httpx.Headers | None = None

    @property
    def last_intuit_tid(self) -> str | None:
        """Intuit's transaction id of the last response, to quote to Intuit support."""
        return self.last_headers.get("intuit_tid") if self.last_headers is not None else None

    # -- transport ----------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        query = {**(params or {}), "minorversion": self.minor_version}
        headers = {
            "Authorization": f"Bearer {self._connection.access_token.reveal()}",
            "Accept": "application/json",
        }
        if body is not None:
            headers["Content-Type"] = content_type
        try:
            response = self._http.request(
                method,
                f"{self.base_url}/{path}",
                params=query,
                content=body,
                headers=headers,
                timeout=self._timeout if self._timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TransportError as exc:
            # Timeouts, refused connections, a response cut half-way: the write may or may not
            # have happened, and the requestid makes the retry safe either way.
            raise TransientError(
                f"no answer from QuickBooks ({transport_problem(exc)}); will retry"
            ) from None
        self.last_headers = response.headers
        log.debug(
            "QuickBooks %s %s -> %s (intuit_tid %s)",
            method,
            path,
            response.status_code,
            response.headers.get("intuit_tid"),
        )
        parsed: Any = None
        if response.content:
            try:
                parsed = loads(response.content)
            except (simplejson.JSONDecodeError, UnicodeDecodeError):
                parsed = None
        fault = Fault.from_json(parsed)
        if fault is not None:
            # A 200 can carry a Fault too: it is an error all the same.
            raise fault.to_exception(status=response.status_code, headers=response.headers)
        if response.status_code >= 400:
            raise _status_error(response.status_code, response.headers)
        if not isinstance(parsed, dict):
            raise TransientError(
                f"QuickBooks answered HTTP {response.status_code} without a JSON object"
            )
        return parsed

    def _write(
        self,
        path: str,
        payload: Mapping[str, Any],
        *,
        request_id: str | None,
        limit: int,
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        body = dumps(payload).encode("utf-8")
        params = dict(params or {})
        if request_id is not None:
            # The key bound to this exact body: a retried write (the answer was lost) gets
            # QuickBooks' original answer; a changed body (mappings fixed after a refusal, a
            # fresh SyncToken after 5010) is a new write, not a replay of a remembered error.
            params["requestid"] = derived_key(request_id, body, limit=limit)
        return self._request("POST", path, params=params, body=body)

    @staticmethod
    def _entity_of(answer: Mapping[str, Any], entity: str) -> dict[str, Any]:
        found = answer.get(entity)
        if not isinstance(found, dict):
            raise TransientError(f"QuickBooks answered without the {entity}")
        return found

    # -- entities -----------------------------------------------------------------------------

    def create(
        self, entity: str, payload: Mapping[str, Any], request_id: str | None = None
    ) -> dict[str, Any]:
        """Create an ``entity`` (``Invoice``, ``CreditMemo``...); returns it as QuickBooks has it.

        ``request_id`` is the idempotency key: the same key and payload sent again return the
        original document instead of creating another.
        """
        answer = self._write(entity.lower(), payload, request_id=request_id, limit=REQUEST_ID_MAX)
        return self._entity_of(answer, entity)

    def read(self, entity: str, entity_id: str) -> dict[str, Any]:
        """Read one document by ``Id``."""
        answer = self._request("GET", f"{entity.lower()}/{url_quote(entity_id, safe='')}")
        return self._entity_of(answer, entity)

    def find(self, entity: str, entity_id: str) -> dict[str, Any] | None:
        """Read one document by ``Id``, or ``None`` when QuickBooks has none (610)."""
        try:
            return self.read(entity, entity_id)
        except ObjectNotFound:
            return None

    def void(
        self, entity: str, entity_id: str, sync_token: str, request_id: str | None = None
    ) -> dict[str, Any]:
        """Void a document (``?operation=void``): it stays, with its number, every amount zero.

        ``request_id`` is the delivery's idempotency key; the ``requestid`` sent is derived from
        it with a ``void`` prefix, so it can never be the key of a create of the same delivery.
        """
        answer = self._write(
            entity.lower(),
            {"Id": entity_id, "SyncToken": sync_token},
            request_id=f"void-{request_id}" if request_id is not None else None,
            limit=REQUEST_ID_MAX,
            params={"operation": "void"},
        )
        return self._entity_of(answer, entity)

    def update(
        self, entity: str, payload: Mapping[str, Any], request_id: str | None = None
    ) -> dict[str, Any]:
        """Full update: ``payload`` carries ``Id`` and ``SyncToken`` and replaces the document.

        Fields left out are cleared, as QuickBooks does for a full update. On a stale
        ``SyncToken`` (5010) the current one is read and the update sent once more; a second
        5010 raises :class:`StaleObject`.
        """
        return self._update(entity, {**payload, "sparse": False}, request_id)

    def sparse_update(
        self,
        entity: str,
        entity_id: str,
        sync_token: str,
        fields: Mapping[str, Any],
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """Sparse update: only ``fields`` change (a ``Line`` array sent replaces every line).

        A stale ``SyncToken`` is refreshed and the update retried once, as for :meth:`update`.
        """
        payload = {**fields, "Id": entity_id, "SyncToken": sync_token, "sparse": True}
        return self._update(entity, payload, request_id)

    def _update(
        self, entity: str, payload: dict[str, Any], request_id: str | None
    ) -> dict[str, Any]:
        if not payload.get("Id") or payload.get("SyncToken") is None:
            raise ValueError("an update needs the document's Id and SyncToken")
        try:
            answer = self._write(
                entity.lower(), payload, request_id=request_id, limit=REQUEST_ID_MAX
            )
        except StaleObject:
            # 5010: someone (a person in QuickBooks, another worker) saved it since we last
            # did. Our payload is the whole truth for this bill version, so writing it over the
            # current SyncToken is right; once only, so that a tug of war ends in an error.
            current = self.read(entity, str(payload["Id"]))
            payload = {**payload, "SyncToken": current.get("SyncToken")}
            answer = self._write(
                entity.lower(), payload, request_id=request_id, limit=REQUEST_ID_MAX
            )
        return self._entity_of(answer, entity)

    def company_info(self) -> dict[str, Any]:
        """The company's ``CompanyInfo`` (name, country...)."""
        realm = url_quote(self.realm_id, safe="")
        return self._entity_of(self._request("GET", f"companyinfo/{realm}"), "CompanyInfo")

    # -- queries ------------------------------------------------------------------------------

    @staticmethod
    def _check_statement(statement: str) -> str:
        bare = _outside_quotes(statement)
        if _OR.search(bare):
            raise ValueError(
                "QuickBooks queries have no OR: run one query per alternative (or use IN)"
            )
        if _PAGING.search(bare):
            raise ValueError("leave STARTPOSITION/MAXRESULTS to the client: it pages for you")
        found = _FROM.search(bare)
        if found is None:
            raise ValueError(f"not a QuickBooks query (no FROM): {statement!r}")
        return found.group(1)

    def query_page(
        self, statement: str, *, start: int = 1, max_results: int = QUERY_PAGE_MAX
    ) -> list[dict[str, Any]]:
        """One page of ``select * from Entity [where …] [orderby …]`` (1-based ``start``)."""
        if start < 1:
            raise ValueError("STARTPOSITION is 1-based")
        if not 1 <= max_results <= QUERY_PAGE_MAX:
            raise ValueError(f"MAXRESULTS must be between 1 and {QUERY_PAGE_MAX}")
        self._check_statement(statement)
        text = f"{statement} STARTPOSITION {start} MAXRESULTS {max_results}"
        answer = self._request("GET", "query", params={"query": text})
        response = answer.get("QueryResponse")
        if not isinstance(response, dict):
            raise TransientError("QuickBooks answered a query without a QueryResponse")
        # The entity key is absent when nothing matched; QuickBooks names it as the entity is
        # spelt in its schema, whatever case the statement used.
        for key, value in response.items():
            if key not in ("startPosition", "maxResults", "totalCount") and isinstance(value, list):
                return [v for v in value if isinstance(v, dict)]
        return []

    def query(self, statement: str, *, page_size: int = QUERY_PAGE_MAX) -> Iterator[dict[str, Any]]:
        """Every row of a query, page by page (``page_size`` at most 1000)."""
        start = 1
        while True:
            page = self.query_page(statement, start=start, max_results=page_size)
            yield from page
            if len(page) < page_size:
                return
            start += len(page)

    def find_by_doc_number(self, entity: str, doc_number: str) -> dict[str, Any] | None:
        """The ``entity`` whose ``DocNumber`` is ``doc_number``, or ``None``."""
        # Not SQL: a QuickBooks query, and the value goes through quote().
        statement = f"select * from {entity} where DocNumber = {quote(doc_number)}"  # noqa: S608
        rows = self.query_page(statement, max_results=10)
        return rows[0] if rows else None

    # -- batch ----------------------------------------------------------------------------------

    def batch(
        self, operations: Sequence[BatchOperation], request_id: str | None = None
    ) -> dict[str, BatchResult]:
        """Send up to 30 operations in one ``/batch`` request; results by ``bId``.

        A failed item is a :class:`Fault` in the result (map it with
        :meth:`Fault.to_exception`); a failure of the whole request (401, 429, 5xx) raises.
        An item QuickBooks did not answer is absent from the result.
        """
        if not operations:
            return {}
        if len(operations) > BATCH_MAX_ITEMS:
            raise ValueError(f"a batch takes at most {BATCH_MAX_ITEMS} operations")
        seen: set[str] = set()
        for op in operations:
            if not op.bid or len(op.bid) > BATCH_ID_MAX or op.bid in seen:
                raise ValueError(
                    f"bId {op.bid!r}: each needs a unique id of 1 to {BATCH_ID_MAX} characters"
                )
            seen.add(op.bid)
        payload = {"BatchItemRequest": [op.to_json() for op in operations]}
        answer = self._write("batch", payload, request_id=request_id, limit=BATCH_REQUEST_ID_MAX)
        items = answer.get("BatchItemResponse")
        results: dict[str, BatchResult] = {}
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict) or not isinstance(item.get("bId"), str):
                continue
            fault = Fault.from_json(item)
            if fault is not None:
                results[item["bId"]] = fault
                continue
            value = next((v for k, v in item.items() if k != "bId" and isinstance(v, dict)), None)
            if value is not None:
                results[item["bId"]] = value
        return results
