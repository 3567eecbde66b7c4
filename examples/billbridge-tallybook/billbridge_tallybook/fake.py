"""A fake Tallybook, for tests and for trying the destination out; never imported at run time.

One Starlette app serves what the plugin and the core talk to, on the real service's paths:

* OAuth 2.0 (billbridge's :class:`~billbridge.testing.emulation.oauth.OAuthServer`): consent at
  ``/oauth/authorize``, tokens at ``/oauth/token`` (client credentials in the form body only,
  as Tallybook documents it), revocation at ``/oauth/revoke``;
* the API under ``/v1``: ``GET /me`` (the accounts a token reaches), ``GET
  /accounts/{id}/clients`` and ``/items`` (pages, ``search`` by name), ``POST
  /accounts/{id}/invoices`` and ``PUT /accounts/{id}/invoices/{invoice}`` with an
  ``Idempotency-Key`` answered once. Invoice numbers are unique per account (a taken one is
  refused: ``Invoice number already exists``) and a paid invoice cannot change (409);
* 120 requests a minute per account (429 with ``Retry-After``).

Serve it on loopback and point billbridge at it::

    tallybook = FakeTallybook()
    tallybook.oauth.add_client("app-id", "app-secret")
    with serve(tallybook.app) as server:
        endpoints = tallybook.endpoints(server.url)  # api_base_url, authorize_url, ...
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from billbridge.domain.clock import Clock, SystemClock
from billbridge.domain.models import dumps, loads
from billbridge.testing.emulation.limits import SlidingWindow
from billbridge.testing.emulation.oauth import OAuthServer

__all__ = ["CLIENTS", "ITEMS", "FakeTallybook", "TallybookAccount"]

#: The clients every account starts with: enough for two pages of 25 when searching for all.
CLIENTS: tuple[str, ...] = (
    "Conformance Customer Ltd",
    "Acme Ltd",
    "Globex Corporation",
    "Initech",
    *(f"Client {n:02d}" for n in range(1, 27)),
)
#: The items every account starts with.
ITEMS: tuple[str, ...] = ("Platform", "API", "API Calls", "Events", "Seats", "Storage")

_PAGE_LIMIT = 100


class TallybookAccount:
    """One Tallybook account: its clients, items and invoices."""

    def __init__(self, account_id: str, name: str) -> None:
        self.id = account_id
        self.name = name
        self.clients = {
            str(n): {"id": str(n), "organization": name, "email": f"billing{n}@client.example"}
            for n, name in enumerate(CLIENTS, 1)
        }
        self.items = {str(n): {"id": str(n), "name": name} for n, name in enumerate(ITEMS, 1)}
        #: Invoices by id, each the ``invoice`` object last sent, plus ``id`` and ``status``.
        self.invoices: dict[str, dict[str, Any]] = {}
        #: Invoice ids that are paid: updates answer 409.
        self.paid: set[str] = set()

    def client_id(self, organization: str) -> str:
        """The id of the client called ``organization``."""
        return next(c["id"] for c in self.clients.values() if c["organization"] == organization)

    def item_id(self, name: str) -> str:
        """The id of the item called ``name``."""
        return next(i["id"] for i in self.items.values() if i["name"] == name)


class FakeTallybook:
    """The fake service; :attr:`app` is the Starlette application to serve.

    :param clock: time for tokens and the rate limit (a ``ManualClock`` in tests).
    :param accounts: the accounts every consent connects, ``{id: name}``.
    :param requests_per_minute: the rate limit per account.
    """

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        accounts: Mapping[str, str] | None = None,
        requests_per_minute: int = 120,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self.accounts = {
            account_id: TallybookAccount(account_id, name)
            for account_id, name in (accounts or {"acct-1": "Bright Ideas Ltd"}).items()
        }
        self.oauth = OAuthServer(
            clock=self.clock,
            access_lifetime=12 * 3600,
            refresh_lifetime=90 * 86400,
            client_auth=("body",),
            consent_tenants=lambda _query: list(self.accounts),
            allowed_scopes=("user:profile:read", "user:clients:read", "user:invoices:write"),
        )
        self.window = SlidingWindow(requests_per_minute, 60, self.clock)
        self._answers: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self.app = Starlette(
            routes=[
                Route("/oauth/authorize", self.oauth.authorize),
                Route("/oauth/token", self.oauth.token, methods=["POST"]),
                Route("/oauth/revoke", self.oauth.revoke, methods=["POST"]),
                Route("/v1/me", self._me),
                Route("/v1/accounts/{account}/clients", self._clients),
                Route("/v1/accounts/{account}/items", self._items),
                Route("/v1/accounts/{account}/invoices", self._create, methods=["POST"]),
                Route("/v1/accounts/{account}/invoices/{invoice}", self._update, methods=["PUT"]),
            ]
        )

    @staticmethod
    def endpoints(base_url: str) -> dict[str, str]:
        """The URLs to configure for a fake served at ``base_url`` (``DestinationSettings``)."""
        base = base_url.rstrip("/")
        return {
            "api_base_url": f"{base}/v1",
            "authorize_url": f"{base}/oauth/authorize",
            "token_url": f"{base}/oauth/token",
            "revoke_url": f"{base}/oauth/revoke",
        }

    def account(self, account_id: str = "acct-1") -> TallybookAccount:
        """One account, to seed or inspect."""
        return self.accounts[account_id]

    # -- the API ------------------------------------------------------------------------------

    async def _me(self, request: Request) -> Response:
        token = self.oauth.bearer(request)
        if token is None:
            return _error(401, "the access token is missing, expired or revoked")
        accounts = [self.accounts[t] for t in token.authorization.tenants if t in self.accounts]
        return JSONResponse(
            {"user": "you", "accounts": [{"id": a.id, "name": a.name} for a in accounts]}
        )

    async def _clients(self, request: Request) -> Response:
        return self._listing(request, "clients", "organization")

    async def _items(self, request: Request) -> Response:
        return self._listing(request, "items", "name")

    def _listing(self, request: Request, kind: str, name_field: str) -> Response:
        account = self._admit(request)
        if isinstance(account, Response):
            return account
        search = request.query_params.get("search", "").lower()
        page = max(int(request.query_params.get("page", "1")), 1)
        per_page = min(max(int(request.query_params.get("per_page", "25")), 1), _PAGE_LIMIT)
        rows: Sequence[dict[str, Any]] = list(getattr(account, kind).values())
        rows = [r for r in rows if search in str(r[name_field]).lower()]
        pages = max((len(rows) + per_page - 1) // per_page, 1)
        chunk = rows[(page - 1) * per_page : page * per_page]
        return JSONResponse({kind: chunk, "page": page, "pages": pages, "total": len(rows)})

    async def _create(self, request: Request) -> Response:
        return await self._write(request, None)

    async def _update(self, request: Request) -> Response:
        return await self._write(request, request.path_params["invoice"])

    async def _write(self, request: Request, invoice_id: str | None) -> Response:
        account = self._admit(request)
        if isinstance(account, Response):
            return account
        key = request.headers.get("idempotency-key")
        try:
            document = loads(await request.body())
        except ValueError:
            return _json(_errors("body", "the body is not JSON"), 400)
        with self._lock:
            if key and (account.id, key) in self._answers:
                status, body = self._answers[(account.id, key)]
                return _json(body, status)
            status, body = self._apply(request, account, document, invoice_id)
            if key and status < 500:
                self._answers[(account.id, key)] = (status, body)
        return _json(body, status)

    def _apply(
        self,
        request: Request,
        account: TallybookAccount,
        document: Any,
        invoice_id: str | None,
    ) -> tuple[int, dict[str, Any]]:
        invoice = document.get("invoice") if isinstance(document, dict) else None
        if not isinstance(invoice, dict):
            return 422, _errors("invoice", 'the body must be {"invoice": {...}}')
        if str(invoice.get("clientid")) not in account.clients:
            return 422, _errors("clientid", f"no client {invoice.get('clientid')}")
        number = invoice.get("invoice_number")
        taken = [
            i
            for i, doc in account.invoices.items()
            if number and doc.get("invoice_number") == number and i != invoice_id
        ]
        if taken:
            return 422, _errors("invoice_number", "Invoice number already exists")
        if invoice_id is None:
            invoice_id = str(len(account.invoices) + 1)
        elif invoice_id not in account.invoices:
            return 404, _errors("id", f"no invoice {invoice_id}")
        elif invoice_id in account.paid:
            return 409, _errors("status", "the invoice is paid and cannot be changed")
        account.invoices[invoice_id] = {**invoice, "id": invoice_id, "status": "draft"}
        base = str(request.base_url).rstrip("/")
        answer = {
            **account.invoices[invoice_id],
            "links": {"client_view": f"{base}/view/{account.id}/{invoice_id}"},
        }
        return 200, {"invoice": answer}

    def _admit(self, request: Request) -> TallybookAccount | Response:
        token = self.oauth.bearer(request)
        if token is None:
            return _error(401, "the access token is missing, expired or revoked")
        account_id = request.path_params["account"]
        if account_id not in token.authorization.tenants or account_id not in self.accounts:
            return _error(403, f"the token does not give access to account {account_id}")
        wait = self.window.acquire(account_id)
        if wait:
            return JSONResponse(
                _errors("rate", "too many requests"),
                status_code=429,
                headers={"Retry-After": str(max(1, round(wait)))},
            )
        return self.accounts[account_id]


def _errors(field: str, message: str) -> dict[str, Any]:
    return {"errors": [{"field": field, "message": message}]}


def _error(status: int, message: str) -> Response:
    return JSONResponse(_errors("auth", message), status_code=status)


def _json(body: Mapping[str, Any], status: int) -> Response:
    # billbridge's dumps keeps Decimal amounts exact.
    return Response(dumps(body), status_code=status, media_type="application/json")
