"""Bad input gets a clear error and nothing is lost: exact statuses and bodies.

Malformed JSON, a wrong content type, an oversize body, unknown fields, a stale version, a
missing, unknown or revoked API key, a read key on an admin route, a forged OAuth state, an
unknown route or method, refused query parameters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from api_harness import Api, Served, make_engine, serve_api

from billbridge.api import ApiSettings


def error(code: str, message: str, errors: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "errors": errors or []}


def raw(api: Api, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {api.admin_key}", **kwargs.pop("headers", {})}
    return api.http.request(method, api.url + path, headers=headers, **kwargs)


def test_malformed_json_is_400(sqlite_served: Served) -> None:
    response = raw(
        sqlite_served.api, "POST", "/api/integrations",
        content=b'{"name": "X",', headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert response.status_code == 400
    assert response.json() == error(
        "malformed_json",
        "the request body is not valid JSON at line 1 column 14: Expecting property name "
        "enclosed in double quotes",
    )
    assert sqlite_served.engine.integrations.list() == []


def test_a_body_that_is_not_json_is_415(sqlite_served: Served) -> None:
    response = raw(
        sqlite_served.api, "POST", "/api/integrations",
        content=b"name=X", headers={"Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert response.status_code == 415
    assert response.json() == error(
        "unsupported_media_type",
        "the request body must be JSON (Content-Type: application/json), not "
        "'application/x-www-form-urlencoded'",
    )


def test_an_oversize_body_is_413_before_it_is_read(sqlite_url: str, tmp_path: Path) -> None:
    engine = make_engine(sqlite_url, tmp_path)
    api, server = serve_api(engine, ApiSettings(max_body_bytes=1000))
    expected = error(
        "payload_too_large",
        "the request body is larger than 1000 bytes, the most this service accepts "
        "(BILLBRIDGE_API_MAX_BODY_BYTES)",
    )
    try:
        big = b'{"name": "' + b"x" * 2000 + b'", "destination": "xero"}'
        response = raw(api, "POST", "/api/integrations", content=big,
                       headers={"Content-Type": "application/json"})  # fmt: skip
        assert (response.status_code, response.json()) == (413, expected)

        def chunks() -> Any:  # no Content-Length: counted as it arrives
            yield b'{"name": "'
            for _ in range(20):
                yield b"x" * 100
            yield b'", "destination": "xero"}'

        response = raw(api, "POST", "/api/integrations", content=chunks(),
                       headers={"Content-Type": "application/json"})  # fmt: skip
        assert (response.status_code, response.json()) == (413, expected)
        assert engine.integrations.list() == []
    finally:
        server.stop()
        api.http.close()
        engine.close()


def test_unknown_fields_are_422_each_at_its_path(sqlite_served: Served) -> None:
    api = sqlite_served.api
    body = api.post(
        "/api/integrations",
        {"name": "X", "destination": "xero", "colour": "red", "config": {"nmae": "typo"}},
        expect=422,
    )
    assert body == error(
        "validation_failed",
        "request body refused",
        [{"path": "/colour", "message": "is not a known field"}],
    )
    body = api.post(
        "/api/integrations", {"name": "X", "destination": "xero", "config": {"nmae": "typo"}},
        expect=422,
    )  # fmt: skip
    assert body == error(
        "validation_failed",
        "integration configuration refused",
        [{"path": "/config/nmae", "message": "is not a known setting"}],
    )
    assert sqlite_served.engine.integrations.list() == []


def test_field_errors_are_in_peoples_words(sqlite_served: Served) -> None:
    body = sqlite_served.api.post(
        "/api/integrations",
        {
            "name": "X",
            "destination": "quickbooks",
            "config": {"accountIds": "acc-1", "accountFilter": "country == "},
            "destinationConfig": {"sortLineItemsBy": None, "bccInvoiceEmail": "not-an-email"},
        },
        expect=422,
    )
    messages = {e["path"]: e["message"] for e in body["errors"]}
    assert messages == {
        "/config/accountIds": "must be a list",
        "/config/accountFilter": "unexpected end of expression at line 1, column 12 "
        "(expected a value)",
        "/destinationConfig/bccInvoiceEmail": "must be an email address",
        "/destinationConfig/sortLineItemsBy": "must be text",
    }
    assert "None" not in str(messages)


def test_a_stale_version_is_409_and_changes_nothing(served: Served) -> None:
    api = served.api
    created = api.post("/api/integrations", {"name": "X", "destination": "xero"}, expect=201)
    api.put(f"/api/integrations/{created['id']}", {"version": 1, "name": "Y"})
    body = api.put(f"/api/integrations/{created['id']}", {"version": 1, "name": "Z"}, expect=409)
    assert body == error(
        "stale_version",
        f"integration {created['id']} was changed by someone else (version 2, you had 1): "
        "reload and retry",
    )
    assert api.get(f"/api/integrations/{created['id']}")["name"] == "Y"


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "an API key is required: send it as 'Authorization: Bearer <key>' (keys are made "
             "with `billbridge api-keys create`)"),
        ({"Authorization": "Bearer bbk_not-a-key"}, "the API key is not valid (unknown or revoked)"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "an API key is required: send it as "
         "'Authorization: Bearer <key>' (keys are made with `billbridge api-keys create`)"),
    ],
)  # fmt: skip
def test_a_missing_or_unknown_key_is_401(
    sqlite_served: Served, headers: dict[str, str], message: str
) -> None:
    api = sqlite_served.api
    response = api.http.get(api.url + "/api/integrations", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="billbridge"'
    assert response.json() == error("unauthorized", message)


def test_a_revoked_key_is_401_at_once(sqlite_served: Served) -> None:
    api, engine = sqlite_served.api, sqlite_served.engine
    key, text = engine.api_keys.create("temporary", "admin")
    assert api.get("/api/integrations", key=text)["total"] == 0
    api.request("DELETE", f"/api/keys/{key.id}", expect=200)
    response = api.request("GET", "/api/integrations", key=text, expect=401)
    assert response.json() == error("unauthorized", "the API key is not valid (unknown or revoked)")


def test_a_read_key_reads_but_changes_nothing(sqlite_served: Served) -> None:
    api = sqlite_served.api
    assert api.get("/api/integrations", key=api.read_key)["items"] == []
    body = api.post(
        "/api/integrations", {"name": "X", "destination": "xero"}, key=api.read_key, expect=403
    )
    assert body == error(
        "forbidden", "the API key 'test reader' may only read; this request needs an admin key"
    )
    assert sqlite_served.engine.integrations.list() == []


def test_a_callback_with_a_forged_state_is_400_and_saves_nothing(served: Served) -> None:
    api, engine = served.api, served.engine
    response = api.request(
        "GET", "/api/oauth/callback?state=forged&code=abc&realmId=1", key=None, expect=400
    )
    assert response.json() == error(
        "credential_error",
        "this consent callback is not valid: its state is unknown, already used, or its "
        "credential expired; create the credential again",
    )
    browser = api.http.get(
        api.url + "/api/oauth/callback?state=forged&code=abc", headers={"Accept": "text/html"}
    )
    assert browser.status_code == 400
    assert "this consent callback is not valid" in browser.text
    assert engine.credentials.list() == []


def test_unknown_routes_and_methods(sqlite_served: Served) -> None:
    api = sqlite_served.api
    response = raw(api, "GET", "/api/nothing-here")
    assert (response.status_code, response.json()) == (
        404, error("not_found", "no such route: GET /api/nothing-here"),
    )  # fmt: skip
    response = raw(api, "PATCH", "/api/integrations")
    assert (response.status_code, response.json()) == (
        405, error("method_not_allowed", "PATCH is not allowed on /api/integrations"),
    )  # fmt: skip
    assert raw(api, "GET", "/").headers["content-type"].startswith("text/html")  # the console


def test_unknown_ids_are_404(sqlite_served: Served) -> None:
    api = sqlite_served.api
    body = api.get("/api/integrations/nope", expect=404)
    assert body == error("not_found", "integration nope not found")
    body = api.get("/api/destinations/sage", expect=404)
    assert body["code"] == "not_found"
    assert body["message"].startswith("unknown destination 'sage'")


def test_query_parameters_are_checked(sqlite_served: Served) -> None:
    api = sqlite_served.api
    body = api.get(
        "/api/runs",
        params={"stauts": "ERROR", "limit": "many", "since": "yesterday", "status": "LOST"},
        expect=422,
    )
    assert body["code"] == "validation_failed"
    assert {e["path"]: e["message"] for e in body["errors"]} == {
        "?stauts": "is not a known parameter",
        "?limit": "must be a whole number",
        "?since": "must be a date and time (ISO 8601, e.g. 2026-01-31T12:00:00Z)",
        "?status": 'must be one of: "WAITING", "STARTED", "COMPLETE", "ERROR", '
        '"AWAITING_RETRY", "AUTH_FAILED", "ACCOUNTING_PERIOD_CLOSED", "INVOICE_ALREADY_PAID", '
        '"DISABLED", "TIMEOUT_LIMIT_EXCEEDED", "RATE_LIMIT_RETRY", "SUPERSEDED"',
    }
    body = api.get("/api/runs", params={"cursor": "garbage"}, expect=422)
    assert body["errors"] == [
        {"path": "?cursor", "message": "is not a cursor this listing gave out"}
    ]


def test_bills_refused_all_or_nothing(served: Served) -> None:
    api, engine = served.api, served.engine
    api.post("/api/integrations", {"name": "X", "destination": "xero"}, expect=201)
    good = {
        "bill": {"id": "b1", "accountId": "a1", "currency": "GBP", "lineItems": []},
        "account": {"id": "a1"},
    }
    bad_bill = {"bill": {"id": "b2", "accountId": "a2"}, "account": {"id": "a2"}}
    mismatch = {
        "bill": {"id": "b3", "accountId": "a3", "currency": "GBP", "lineItems": []},
        "account": {"id": "a9"},
    }
    body = api.post("/api/bills:batch", {"items": [good, bad_bill, mismatch]}, expect=422)
    assert body == error(
        "validation_failed",
        "bills refused; none was submitted",
        [
            {"path": "/items/1/bill/currency", "message": "required field missing"},
            {"path": "/items/2/account/id", "message": "the bill is for account a3, but the "
             "account given is a9"},
        ],
    )  # fmt: skip
    assert engine.runs.count() == 0 and engine.skips.count() == 0
    conflict = {**good, "bill": {**good["bill"], "billTotal": 5}}
    api.post("/api/bills", good, expect=201)
    body = api.post("/api/bills", conflict, expect=409)
    assert body["code"] == "conflict"


def test_cors_is_off_by_default_and_follows_the_allow_list(sqlite_url: str, tmp_path: Path) -> None:
    preflight = {"Origin": "https://console.example", "Access-Control-Request-Method": "POST"}
    engine = make_engine(sqlite_url, tmp_path)
    api, server = serve_api(engine)
    try:
        response = api.http.options(api.url + "/api/integrations", headers=preflight)
        assert "access-control-allow-origin" not in response.headers
    finally:
        server.stop()
        api.http.close()
    api, server = serve_api(engine, ApiSettings(cors_origins=("https://console.example",)))
    try:
        response = api.http.options(api.url + "/api/integrations", headers=preflight)
        assert response.headers["access-control-allow-origin"] == "https://console.example"
        other = api.http.options(
            api.url + "/api/integrations", headers={**preflight, "Origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in other.headers
    finally:
        server.stop()
        api.http.close()
        engine.close()
