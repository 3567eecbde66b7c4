"""Bills: submit one or many, explain routing without recording."""

from __future__ import annotations

from billbridge.api import serializers
from billbridge.api.endpoints import ADMIN, READ, Call, Endpoints, Reply, ok
from billbridge.api.schemas import REQUESTS

__all__ = ["ROUTES"]

ROUTES = Endpoints("bills")

_PAIR = {
    "bill": {
        "id": "bill-1",
        "version": 1,
        "accountId": "acc-1",
        "currency": "GBP",
        "status": "APPROVED",
        "billTotal": 120.5,
        "lineItems": [
            {"lineItemType": "STANDING_CHARGE", "description": "Platform", "subtotal": 120.5}
        ],
    },
    "account": {"id": "acc-1", "name": "Acme Ltd", "customFields": {"country": "UK"}},
}


@ROUTES.route(
    "POST",
    "/api/bills",
    scope=ADMIN,
    summary="Submit a bill",
    body=REQUESTS["BillSubmission"],
    body_example=_PAIR,
    responses=[ok("SubmitResult", "The runs queued and the skips, with reasons", status=201)],
    errors=[409, 422],
)
def submit_bill(call: Call) -> Reply:
    """Stores the bill version and routes it to every enabled integration: a WAITING run for
    each that takes it, a skip with its reason for the others. Refused documents are reported
    under ``/bill`` and ``/account``; the same version sent again with other content is 409."""
    result = call.engine.submit_bill(call.body["bill"], call.body["account"], base_path="")
    return Reply(serializers.submit_result(result), 201)


@ROUTES.route(
    "POST",
    "/api/bills:batch",
    scope=ADMIN,
    summary="Submit up to 500 bills, all or nothing",
    body=REQUESTS["BillBatch"],
    body_example={"items": [_PAIR]},
    responses=[ok("SubmitResult", "Every run and skip", status=201)],
    errors=[409, 422],
)
def submit_bills(call: Call) -> Reply:
    """Submits every bill or none: each refused document is reported under
    ``/items/<index>/bill`` or ``/account``. Backfills of more bills send several requests."""
    pairs = [(item["bill"], item["account"]) for item in call.body["items"]]
    result = call.engine.submit_all(pairs, base_path="/items")
    return Reply(serializers.submit_result(result), 201)


@ROUTES.route(
    "POST",
    "/api/bills:explain",
    scope=READ,
    summary="Which integrations would take a bill, and why (nothing recorded)",
    body=REQUESTS["BillSubmission"],
    body_example=_PAIR,
    responses=[ok("Explanation", "One decision per integration, with its reason")],
    errors=[422],
)
def explain_bill(call: Call) -> Reply:
    """The decisions submission would make now (filters, allow and deny lists, approval, the
    delivery ledger, runs already queued), without storing the bill, a run or a skip."""
    result = call.engine.explain(call.body["bill"], call.body["account"])
    return Reply(serializers.explanation(result))
