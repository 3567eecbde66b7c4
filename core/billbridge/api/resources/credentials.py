"""Credentials: create (→ consent URL), the OAuth callback, list, tenants, test, delete."""

from __future__ import annotations

import html
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, Response

from billbridge.api import serializers
from billbridge.api.endpoints import (
    ADMIN,
    PUBLIC,
    READ,
    Call,
    Endpoints,
    Param,
    Reply,
    error_response,
    json_response,
    ok,
)
from billbridge.api.errors import from_exception
from billbridge.api.pagination import PAGE_PARAMS, offset_page, page_body
from billbridge.api.resources.common import CURSOR, SEARCH
from billbridge.api.schemas import REQUESTS, obj, ref
from billbridge.errors import BillbridgeError, TenantChoiceRequired

__all__ = ["CALLBACK_PATH", "ROUTES"]

ROUTES = Endpoints("credentials")

CALLBACK_PATH = "/api/oauth/callback"


def _callback_url(call: Call) -> str:
    base = call.settings.public_url or str(call.request.base_url).rstrip("/")
    return base + CALLBACK_PATH


@ROUTES.route(
    "GET",
    "/api/credentials",
    scope=READ,
    summary="List credentials",
    params=[
        Param("destination", {"type": "string"}, "Only this destination's credentials."),
        *PAGE_PARAMS,
    ],
    responses=[ok("CredentialPage", "Credentials, oldest first; never a token")],
)
def list_credentials(call: Call) -> Reply:
    """Credentials with their status: an unfinished consent shows as "NAME (Incomplete)" (and
    disappears when its 10 minutes are up), a refused refresh as "NAME (Reconnect needed)"."""
    found = call.engine.credentials.list(destination=call.query.get("destination"))
    items, cursor = offset_page(call, lambda offset, limit: found[offset : offset + limit])
    return Reply(page_body([serializers.credential(c) for c in items], len(found), cursor))


@ROUTES.route(
    "POST",
    "/api/credentials",
    scope=ADMIN,
    summary="Create a credential and get its consent URL",
    body=REQUESTS["CredentialCreate"],
    body_example={"name": "Xero UK", "destination": "xero"},
    responses=[
        ok("CredentialCreated", "The INCOMPLETE credential and its consent URL", status=201)
    ],
    errors=[409, 422],
)
def create_credential(call: Call) -> Reply:
    """Creates an INCOMPLETE credential (it expires after 10 minutes) and returns the
    provider's consent URL. Send the user there; the provider sends them back to
    ``/api/oauth/callback`` (or ``redirectUri``), which completes the credential."""
    engine = call.engine
    credential = engine.credentials.create(call.body["name"], call.body["destination"])
    try:
        url = engine.credentials.authorization_url(
            credential.id, call.body.get("redirectUri") or _callback_url(call)
        )
    except BillbridgeError:
        # No consent can start (no OAuth app, a refused redirect URI): keep nothing behind.
        engine.credentials.delete(credential.id, revoke=False)
        raise
    body = {"credential": serializers.credential(credential), "authorizationUrl": url}
    return Reply(body, 201)


@ROUTES.route(
    "GET",
    "/api/credentials/{credentialId}",
    scope=READ,
    summary="One credential",
    responses=[ok("Credential", "The credential; never a token")],
    errors=[404],
)
def get_credential(call: Call) -> Reply:
    """One credential."""
    return Reply(serializers.credential(call.engine.credentials.get(call.path["credentialId"])))


@ROUTES.route(
    "DELETE",
    "/api/credentials/{credentialId}",
    scope=ADMIN,
    summary="Delete a credential (its tokens are revoked)",
    params=[
        Param("revoke", {"type": "boolean"}, "Revoke the tokens at the provider (default true).")
    ],
    responses=[ok(None, "Deleted", status=204)],
    errors=[404],
)
def delete_credential(call: Call) -> Reply:
    """Revokes the tokens at the provider (best effort) and deletes the credential; the
    integrations that used it are disconnected."""
    call.engine.credentials.delete(call.path["credentialId"], revoke=call.query.get("revoke", True))
    return Reply(None, 204)


@ROUTES.route(
    "POST",
    "/api/credentials/{credentialId}/authorize",
    scope=ADMIN,
    summary="A new consent URL for an incomplete credential",
    body=obj({"redirectUri": {"type": "string"}}),
    body_example={},
    responses=[ok("AuthorizationUrl", "The consent URL (a new state; older ones stop working)")],
    errors=[400, 404, 409],
)
def authorize_credential(call: Call) -> Reply:
    """Start the consent again (the user closed the provider's page, say)."""
    url = call.engine.credentials.authorization_url(
        call.path["credentialId"], call.body.get("redirectUri") or _callback_url(call)
    )
    return Reply({"authorizationUrl": url})


@ROUTES.route(
    "GET",
    "/api/credentials/{credentialId}/tenants",
    scope=READ,
    summary="The tenants a consent covered, to choose from",
    responses=[ok("TenantChoices", "Empty unless the callback answered tenant_choice_required")],
    errors=[404],
)
def list_tenant_choices(call: Call) -> Reply:
    """When a consent covers several organisations (Xero), the callback answers 409
    ``tenant_choice_required``; these are the choices, for ``POST .../tenant``."""
    credential = call.engine.credentials.get(call.path["credentialId"])
    return Reply({"items": serializers.tenant_choices(credential)})


@ROUTES.route(
    "POST",
    "/api/credentials/{credentialId}/tenant",
    scope=ADMIN,
    summary="Choose the tenant of a consent that covered several",
    body=REQUESTS["TenantChoice"],
    body_example={"tenantId": "b1b2c3d4-0000-4000-8000-0000000000a1"},
    responses=[ok("Credential", "The credential, now COMPLETE")],
    errors=[400, 404, 422],
)
def choose_tenant(call: Call) -> Reply:
    """Completes the credential with one of the tenants the consent covered."""
    credential = call.engine.credentials.choose_tenant(
        call.path["credentialId"], call.body["tenantId"]
    )
    return Reply(serializers.credential(credential))


@ROUTES.route(
    "POST",
    "/api/credentials/{credentialId}/test",
    scope=READ,
    summary="Test a connection",
    responses=[ok("ConnectionTest", "Whether the destination answered; a failure is not an error")],
    errors=[404],
)
def test_credential(call: Call) -> Reply:
    """Refreshes the token if due and lists one page of the destination's account table."""
    return Reply(serializers.connection_test(call.engine.external.test(call.path["credentialId"])))


@ROUTES.route(
    "GET",
    "/api/credentials/{credentialId}/external/{table}",
    scope=READ,
    summary="List a destination table through a credential",
    params=[SEARCH, CURSOR],
    responses=[ok("ExternalEntityPage", "One page of records (id, name)")],
    errors=[404, 409, 502],
)
def list_credential_entities(call: Call) -> Reply:
    """For pickers while an integration is being set up: one page of customers, items,
    accounts... as the destination lists them (kept for a minute)."""
    page = call.engine.external.page(
        call.path["table"],
        credential_id=call.path["credentialId"],
        search=call.query.get("search"),
        cursor=call.query.get("cursor"),
    )
    return Reply(serializers.external_page(page))


# --- the OAuth callback ------------------------------------------------------------------------

_CALLBACK_PARAMS = [
    Param("state", {"type": "string"}, "The state the consent URL carried."),
    Param("code", {"type": "string"}, "The authorization code."),
    Param("realmId", {"type": "string"}, "QuickBooks: the company connected."),
    Param("error", {"type": "string"}, "The provider's refusal (e.g. access_denied)."),
    Param("error_description", {"type": "string"}, "The provider's words for it."),
    Param("tenantId", {"type": "string"}, "The tenant, when the consent covers several."),
]


@ROUTES.route(
    "GET",
    CALLBACK_PATH,
    scope=PUBLIC,
    summary="The OAuth callback (the provider redirects the user here)",
    params=_CALLBACK_PARAMS,
    open_query=True,
    raw=True,
    responses=[
        ok(
            obj({"credential": ref("Credential")}, ("credential",)),
            "The credential is COMPLETE (an HTML page for browsers)",
        )
    ],
    errors=[400, 404, 409],
)
async def oauth_callback(call: Call) -> Response:
    """Completes the credential whose consent this is: refuses an unknown, used or expired
    ``state`` (nothing is saved), and a refused consent. Needs no API key: the single-use
    state is what authenticates it. Browsers get an HTML page, programs JSON."""
    query = dict(call.request.query_params)
    browser = "text/html" in call.request.headers.get("accept", "")
    try:
        credential = await run_in_threadpool(
            call.engine.credentials.complete,
            query.get("state", ""),
            query.get("code"),
            realm_id=query.get("realmId"),
            error=query.get("error"),
            error_description=query.get("error_description"),
            tenant_id=query.get("tenantId"),
            params=query,
        )
    except Exception as exc:
        error = from_exception(exc)
        if not browser:
            return error_response(error)
        # A consent that covered several organisations goes back to the console to choose.
        back = (
            f"/credentials?choose={quote(exc.credential_id)}"
            if isinstance(exc, TenantChoiceRequired)
            else None
        )
        return _page(error.message, error.status, back)
    if browser:
        message = f"{credential.name} is connected to {credential.tenant_name}."
        return _page(message, 200, f"/credentials?connected={quote(credential.id)}")
    return json_response({"credential": serializers.credential(credential)})


def _page(message: str, status: int, back: str | None = None) -> Response:
    """The page the provider's redirect lands on: the outcome, and the way back to the console
    (at once when there is nothing to read)."""
    text = html.escape(message)
    link = html.escape(back or "/credentials")
    refresh = f"<meta http-equiv='refresh' content='0;url={link}'>" if back else ""
    return HTMLResponse(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>billbridge</title>{refresh}</head>"
        f"<body><p>{text}</p><p><a href='{link}'>Back to billbridge</a></p></body></html>",
        status_code=status,
    )
