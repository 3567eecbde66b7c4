"""The QuickBooks client's transport rules and error mapping, against scripted answers.

Every QuickBooks error code the client knows is mapped to its billbridge exception here, with
bodies shaped as Intuit sends them (including the lower-case throttle envelope and a 200 that
carries a Fault). End-to-end behaviour over real HTTP is in ``test_qbo_plugin.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from billbridge_quickbooks.client import (
    BatchOperation,
    DuplicateDocumentNumber,
    Fault,
    QuickBooksClient,
    StaleObject,
    error_for_fault,
    quote,
)

from billbridge.domain.models import Secret, dumps, loads
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
from billbridge.plugin.idempotency import derived_key

TOKEN = "tok-do-not-print"
Handler = Callable[[httpx.Request], httpx.Response]


def fault(
    code: str, message: str = "", detail: str = "", element: str = "", kind: str = "ValidationFault"
) -> dict[str, Any]:
    return {
        "Fault": {
            "Error": [{"Message": message, "Detail": detail, "code": code, "element": element}],
            "type": kind,
        },
        "time": "2026-01-01T00:00:00.000-08:00",
    }


class Scripted:
    """A transport answering from a queue and recording every request."""

    def __init__(self) -> None:
        self.answers: list[httpx.Response | Exception] = []
        self.requests: list[httpx.Request] = []

    def add(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        content = (
            b"" if body is None else (body if isinstance(body, bytes) else dumps(body).encode())
        )
        self.answers.append(httpx.Response(status, content=content, headers=headers))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def scripted() -> Scripted:
    return Scripted()


@pytest.fixture
def client(scripted: Scripted) -> Iterator[QuickBooksClient]:
    with httpx.Client(transport=httpx.MockTransport(scripted)) as http:
        connection = Connection(
            destination="quickbooks",
            tenant_id="123145",
            access_token=Secret(TOKEN),
            http=http,
            api_base_url="https://sandbox-quickbooks.api.intuit.com/",
        )
        yield QuickBooksClient(connection)


def test_every_call_has_minorversion_and_bearer(
    client: QuickBooksClient, scripted: Scripted
) -> None:
    scripted.add(200, {"Invoice": {"Id": "1", "SyncToken": "0"}}, {"intuit_tid": "tid-1"})
    created = client.create("Invoice", {"Line": [{"Amount": Decimal("1.10")}]}, "key-1")
    assert created["Id"] == "1"
    request = scripted.requests[0]
    assert request.method == "POST"
    assert request.url.path == "/v3/company/123145/invoice"
    assert request.url.params["minorversion"] == "75"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert b'"Amount": 1.10' in request.content  # Decimal, not float
    rid = request.url.params["requestid"]
    assert rid.startswith("key-1-") and len(rid) <= 50
    assert client.last_intuit_tid == "tid-1"


def test_request_ids_are_the_key_bound_to_the_body(
    client: QuickBooksClient, scripted: Scripted
) -> None:
    # One derivation for every plugin (billbridge.plugin.idempotency); its properties are
    # tested with the plugin helpers.
    scripted.add(200, {"Invoice": {"Id": "1", "SyncToken": "0"}})
    client.create("Invoice", {"Line": []}, "key-1")
    request = scripted.requests[0]
    assert request.url.params["requestid"] == derived_key("key-1", request.content, limit=50)


def test_quote_escapes_single_quotes() -> None:
    assert quote("Amy's Bird Sanctuary") == "'Amy\\'s Bird Sanctuary'"
    assert quote("plain") == "'plain'"


def test_query_pages_until_a_short_page(client: QuickBooksClient, scripted: Scripted) -> None:
    scripted.add(
        200,
        {
            "QueryResponse": {
                "Customer": [{"Id": "1"}, {"Id": "2"}],
                "startPosition": 1,
                "maxResults": 2,
            }
        },
    )
    scripted.add(
        200, {"QueryResponse": {"Customer": [{"Id": "3"}], "startPosition": 3, "maxResults": 1}}
    )
    rows = list(client.query("select * from Customer", page_size=2))
    assert [r["Id"] for r in rows] == ["1", "2", "3"]
    sent = [r.url.params["query"] for r in scripted.requests]
    assert sent == [
        "select * from Customer STARTPOSITION 1 MAXRESULTS 2",
        "select * from Customer STARTPOSITION 3 MAXRESULTS 2",
    ]
    scripted.add(200, {"QueryResponse": {}})
    assert client.query_page("select * from Customer where DisplayName = 'nobody'") == []


def test_query_statement_rules(client: QuickBooksClient) -> None:
    with pytest.raises(ValueError, match="no OR"):
        client.query_page("select * from Customer where Active = true or Balance > '0'")
    # An OR inside a quoted string is data, not the operator.
    with pytest.raises(ValueError, match="STARTPOSITION"):
        client.query_page("select * from Customer where DisplayName = 'Cars or Bikes' MAXRESULTS 5")
    with pytest.raises(ValueError, match="between 1 and 1000"):
        client.query_page("select * from Customer", max_results=1001)
    with pytest.raises(ValueError, match="1-based"):
        client.query_page("select * from Customer", start=0)


def test_update_retries_once_on_stale_sync_token(
    client: QuickBooksClient, scripted: Scripted
) -> None:
    scripted.add(400, fault("5010", "Stale Object Error", "You and X were working on this"))
    scripted.add(200, {"Invoice": {"Id": "9", "SyncToken": "4"}})
    scripted.add(200, {"Invoice": {"Id": "9", "SyncToken": "5"}})
    updated = client.update("Invoice", {"Id": "9", "SyncToken": "2", "Line": []}, "key")
    assert updated["SyncToken"] == "5"
    first, read, second = scripted.requests
    assert read.method == "GET" and read.url.path.endswith("/invoice/9")
    assert loads(first.content)["SyncToken"] == "2" and loads(second.content)["SyncToken"] == "4"
    assert loads(second.content)["sparse"] is False
    # The retry is a different body, so a different requestid.
    assert first.url.params["requestid"] != second.url.params["requestid"]

    scripted.add(400, fault("5010", "Stale Object Error"))
    scripted.add(200, {"Invoice": {"Id": "9", "SyncToken": "6"}})
    scripted.add(400, fault("5010", "Stale Object Error"))
    with pytest.raises(StaleObject):
        client.update("Invoice", {"Id": "9", "SyncToken": "5"})
    assert isinstance(StaleObject("x"), TransientError)


def test_sparse_update(client: QuickBooksClient, scripted: Scripted) -> None:
    scripted.add(200, {"Invoice": {"Id": "9", "SyncToken": "3"}})
    client.sparse_update("Invoice", "9", "2", {"PrivateNote": "x"})
    assert loads(scripted.requests[0].content) == {
        "PrivateNote": "x",
        "Id": "9",
        "SyncToken": "2",
        "sparse": True,
    }
    with pytest.raises(ValueError, match="Id and SyncToken"):
        client.update("Invoice", {"Line": []})


def test_batch_correlates_by_bid(client: QuickBooksClient, scripted: Scripted) -> None:
    scripted.add(
        200,
        {
            "BatchItemResponse": [
                {"bId": "b1", "Fault": fault("6070", "Amount", "Supplied value:1")["Fault"]},
                {"bId": "b0", "Invoice": {"Id": "5"}},
                {"bId": "q", "QueryResponse": {"Item": []}},
            ]
        },
    )
    ops = [
        BatchOperation("b0", "create", "Invoice", {"Line": []}),
        BatchOperation("b1", "update", "Invoice", {"Id": "2", "SyncToken": "0"}),
        BatchOperation("q", "query", query="select * from Item"),
    ]
    results = client.batch(ops, "batch-key")
    assert results["b0"] == {"Id": "5"}
    assert isinstance(results["b1"], Fault) and results["b1"].codes == ("6070",)
    assert results["q"] == {"Item": []}
    sent = loads(scripted.requests[0].content)["BatchItemRequest"]
    assert sent[0] == {"bId": "b0", "operation": "create", "Invoice": {"Line": []}}
    assert sent[2] == {"bId": "q", "Query": "select * from Item"}
    batch_request = scripted.requests[0]
    assert batch_request.url.params["requestid"] == derived_key(
        "batch-key", batch_request.content, limit=36
    )
    with pytest.raises(ValueError, match="at most 30"):
        client.batch([BatchOperation(str(i), "query", query="x") for i in range(31)])
    with pytest.raises(ValueError, match="bId"):
        client.batch([BatchOperation("12345678901", "query", query="x")])
    with pytest.raises(ValueError, match="bId"):
        client.batch([BatchOperation("a", "query", query="x")] * 2)


# --- error mapping -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected", "text"),
    [
        (
            401,
            fault(
                "3200",
                "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                kind="AuthenticationFault",
            ),
            {},
            TokenExpired,
            "401",
        ),
        (401, b"", {}, TokenExpired, "401"),
        (
            403,
            fault("120", "Authorization Failure", kind="AuthorizationFault"),
            {},
            AuthenticationFailed,
            "authorization",
        ),
        (
            400,
            fault("6190", "Invalid Company Status", "Subscription period has ended"),
            {},
            AuthenticationFailed,
            "subscription",
        ),
        (
            429,
            fault(
                "003001",
                "message=ThrottleExceeded; errorCode=003001; statusCode=429",
                kind="SystemFault",
            ),
            {},
            RateLimited,
            "throttled",
        ),
        (
            400,
            fault(
                "610",
                "Object Not Found",
                "Something you're trying to use has been made inactive",
                "ItemRef",
            ),
            {},
            DestinationValidationError,
            "ItemRef",
        ),
        (
            400,
            fault(
                "6070",
                "Amount is not equal to UnitPrice * Qty",
                "Amount is not equal to UnitPrice * Qty. Supplied value:10.01",
            ),
            {},
            DestinationValidationError,
            "Supplied value:10.01",
        ),
        (
            400,
            fault("6140", "Duplicate Document Number Error", "DocNumber=1 is assigned"),
            {},
            DuplicateDocumentNumber,
            "already used",
        ),
        (
            400,
            fault("6210", "Duplicate Document Number Error"),
            {},
            DuplicateDocumentNumber,
            "already used",
        ),
        (
            400,
            fault(
                "6000",
                "A business validation error has occurred",
                "Business Validation Error: This invoice has been paid.",
            ),
            {},
            InvoiceAlreadyPaid,
            "paid",
        ),
        (
            400,
            fault(
                "6000",
                "A business validation error has occurred",
                "Business Validation Error: You can't change a transaction dated on or before the closing date of the books",
            ),
            {},
            AccountingPeriodClosed,
            "closed",
        ),
        (
            400,
            fault("6240", "Duplicate Name Exists Error", "The name supplied already exists."),
            {},
            DestinationValidationError,
            "Duplicate Name",
        ),
        (
            400,
            fault("2020", "Required param missing", "Required parameter Line is missing", "Line"),
            {},
            DestinationValidationError,
            "Line",
        ),
        (
            500,
            fault("10000", "An application error has occurred", kind="SystemFault"),
            {},
            TransientError,
            "500",
        ),
        (503, b"<html>Service Unavailable</html>", {}, TransientError, "503"),
        (404, b"not here", {}, DestinationValidationError, "404"),
    ],
)
def test_error_mapping(
    client: QuickBooksClient,
    scripted: Scripted,
    status: int,
    body: Any,
    headers: dict[str, str],
    expected: type[DestinationError],
    text: str,
) -> None:
    scripted.add(status, body, headers)
    with pytest.raises(expected) as caught:
        client.read("Invoice", "1")
    assert text.lower() in (str(caught.value) + " " + (caught.value.detail or "")).lower()
    assert TOKEN not in str(caught.value) and TOKEN not in (caught.value.detail or "")


def test_6070_detail_is_quickbooks_word_for_word(
    client: QuickBooksClient, scripted: Scripted
) -> None:
    detail = "Amount is not equal to UnitPrice * Qty. Supplied value:10.01"
    scripted.add(400, fault("6070", "Amount is not equal to UnitPrice * Qty", detail))
    with pytest.raises(DestinationValidationError) as caught:
        client.create("Invoice", {})
    assert caught.value.detail == detail


def test_throttle_waits_a_minute_unless_told(client: QuickBooksClient, scripted: Scripted) -> None:
    lower_case = {
        "fault": {
            "error": [
                {
                    "message": "message=ThrottleExceeded; errorCode=003001; statusCode=429",
                    "detail": "Too many requests",
                    "code": "003001",
                }
            ],
            "type": "SERVICE",
        }
    }
    scripted.add(429, lower_case)
    with pytest.raises(RateLimited) as caught:
        client.read("Invoice", "1")
    assert (caught.value.retry_after, caught.value.scope) == (60.0, "minute")
    scripted.add(429, b"", {"Retry-After": "7"})
    with pytest.raises(RateLimited) as caught:
        client.read("Invoice", "1")
    assert caught.value.retry_after == 7.0


def test_a_200_can_carry_a_fault(client: QuickBooksClient, scripted: Scripted) -> None:
    scripted.add(200, fault("610", "Object Not Found", "gone", "CustomerRef"))
    with pytest.raises(DestinationValidationError, match="CustomerRef"):
        client.create("Invoice", {})


def test_transport_failures_are_transient(client: QuickBooksClient, scripted: Scripted) -> None:
    for exc, words in (
        (httpx.ConnectError("refused"), "the connection failed"),
        (httpx.ReadTimeout("slow"), "no answer came in time"),
        (httpx.RemoteProtocolError("cut"), "the connection closed before the answer came"),
    ):
        scripted.answers.append(exc)
        with pytest.raises(TransientError, match=words) as caught:
            client.create("Invoice", {}, "k")
        assert type(exc).__name__ not in str(caught.value)  # people's words, not Python's
    scripted.add(200, b"not json")
    with pytest.raises(TransientError, match="JSON"):
        client.read("Invoice", "1")
    scripted.add(200, {"QueryResponse": {}})
    with pytest.raises(TransientError, match="without the Invoice"):
        client.read("Invoice", "1")


def test_fault_parsing_and_description() -> None:
    assert Fault.from_json({"Invoice": {}}) is None
    assert Fault.from_json("text") is None
    parsed = Fault.from_json(fault("610", "Object Not Found", "gone", "ItemRef"))
    assert parsed is not None
    assert parsed.describe() == "Object Not Found: gone (code 610, element ItemRef)"
    assert isinstance(error_for_fault(parsed), DestinationValidationError)
    empty = Fault(type="SystemFault", errors=())
    assert isinstance(error_for_fault(empty, status=502), TransientError)
