"""A minimal OAuth destination ("fakebooks") and its provider, for the core's credential tests.

The provider is billbridge's emulator OAuth server plus two API endpoints: ``/api/connections``
(the tenants a token covers, like Xero's ``/connections``) and ``/api/whoami`` (401 when the
token is not valid). Importable by worker processes (multiprocessing) as ``fakebooks_plugin``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import anyio
import anyio.to_thread
import attrs
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from billbridge import hookimpl
from billbridge.domain.clock import Clock
from billbridge.domain.models import Account, Bill, LedgerEntry, dumps, loads
from billbridge.errors import (
    AuthenticationFailed,
    DestinationValidationError,
    InvoiceAlreadyPaid,
    RateLimited,
    TokenExpired,
    TransientError,
)
from billbridge.plugin.contract import (
    Connection,
    Delivery,
    DeliveryOutcome,
    Destination,
    InvoiceState,
    InvoiceStatus,
    Limits,
    OAuthCallback,
    OAuthSpec,
    ResolvedMappings,
    SendResult,
    TenantChoice,
)
from billbridge.testing.emulation.faults import FaultMiddleware, FaultPlan
from billbridge.testing.emulation.limits import SlidingWindow
from billbridge.testing.emulation.oauth import OAuthServer

KEY = "fakebooks"
CLIENT_ID = "fake-client"
CLIENT_SECRET = "fake-client-secret-value"
TENANTS = {"t-uk": "Fake UK Ltd", "t-us": "Fake US Inc"}

PANEL = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Fakebooks",
    "description": "A fake destination for tests.",
    "type": "object",
    "properties": {
        "memo": {"type": "string", "title": "Memo", "description": "Printed on invoices."},
        "signature": {
            "type": "string",
            "title": "Signature",
            "description": "A secret the invoices are signed with (test only).",
            "writeOnly": True,
        },
    },
    "additionalProperties": False,
}


#: How the plugin connects; ``plugin(client_auth="body")`` declares the other client
#: authentication.
OAUTH = OAuthSpec(
    authorize_url="https://fakebooks.invalid/authorize",
    token_url="https://fakebooks.invalid/token",
    revoke_url="https://fakebooks.invalid/revoke",
    scopes=("offline_access", "accounting"),
    access_token_lifetime=1800,
    refresh_token_grace=1800,
)


def _destination(oauth: OAuthSpec) -> Destination:
    return Destination(
        key=KEY,
        title="Fakebooks",
        schema=PANEL,
        external_tables=("Customer",),
        oauth=oauth,
        api_base_url="https://fakebooks.invalid/api",
        account_table="Customer",
        limits=LIMITS,
    )


@hookimpl
def register_destinations() -> list[Destination]:
    """One OAuth destination whose real hosts do not exist (tests override them)."""
    return [_destination(OAUTH)]


#: Declared limits; the provider enforces the same on its clock.
LIMITS = Limits(requests_per_minute=120, batch_size=10, concurrency=2)


def _payload(
    bill: Bill, account: Account, config: Mapping[str, Any], mappings: ResolvedMappings
) -> dict[str, Any]:
    return {
        "customer": mappings.get("Account", account.id, "Customer"),
        "number": bill.sequential_invoice_number,
        "billId": bill.id,
        "version": bill.version,
        "lines": [
            {"description": li.description, "amount": li.subtotal, "type": li.line_item_type}
            for li in bill.line_items
        ],
        "memo": config.get("memo"),
        "signed": config.get("signature"),
    }


def _raise_for(response: httpx.Response) -> None:
    if response.status_code == 401:
        raise TokenExpired("access token refused")
    if response.status_code == 429:
        raise RateLimited(
            "throttled",
            retry_after=float(response.headers.get("Retry-After", "1")),
            scope=response.headers.get("X-Problem", "minute"),
        )
    if response.status_code == 409:
        raise InvoiceAlreadyPaid("the invoice is paid", detail=response.json().get("message"))
    if response.status_code == 400:
        raise DestinationValidationError("refused", detail=response.json().get("message"))
    if response.status_code >= 500:
        raise TransientError(f"fakebooks answered {response.status_code}")


def _result(document: Mapping[str, Any], created: bool) -> SendResult:
    return SendResult(
        external_id=str(document["id"]),
        number=document.get("number"),
        url=f"https://fakebooks.invalid/invoices/{document['id']}",
        state={"revision": document["revision"]},
        created=created,
    )


@hookimpl
def preview_bill(
    bill: Bill,
    account: Account,
    config: Mapping[str, Any],
    mappings: ResolvedMappings,
    previous: LedgerEntry | None,
) -> Mapping[str, Any]:
    """What send_bill would send."""
    path = f"/invoices/{previous.external_id}" if previous else "/invoices"
    return {"method": "POST", "path": path, "body": _payload(bill, account, config, mappings)}


@hookimpl
def send_bill(
    connection: Connection,
    bill: Bill,
    account: Account,
    config: Mapping[str, Any],
    mappings: ResolvedMappings,
    previous: LedgerEntry | None,
    idempotency_key: str,
) -> SendResult:
    """Create or update one invoice."""
    path = f"/invoices/{previous.external_id}" if previous else "/invoices"
    try:
        response = connection.http.post(
            f"{connection.api_base_url}{path}",
            content=dumps(_payload(bill, account, config, mappings)),
            headers={
                "Authorization": f"Bearer {connection.access_token.reveal()}",
                "Idempotency-Key": idempotency_key,
                "Content-Type": "application/json",
            },
            timeout=2.0,
        )
    except httpx.TransportError as exc:
        raise TransientError(f"fakebooks unreachable: {type(exc).__name__}") from None
    _raise_for(response)
    if "X-Left" in response.headers:
        connection.limit_left("minute", int(response.headers["X-Left"]))
    return _result(loads(response.text), created=previous is None)


def send_bills(
    connection: Connection, deliveries: Sequence[Delivery], idempotency_key: str
) -> Sequence[DeliveryOutcome]:
    """Many invoices in one request (a hook only in the plugin ``plugin(batch=True)`` builds)."""
    body = [
        {
            "key": d.idempotency_key,
            "id": d.previous.external_id if d.previous else None,
            "invoice": _payload(d.bill, d.account, d.config, d.mappings),
        }
        for d in deliveries
    ]
    try:
        response = connection.http.post(
            f"{connection.api_base_url}/batch",
            content=dumps(body),
            headers={
                "Authorization": f"Bearer {connection.access_token.reveal()}",
                "Idempotency-Key": idempotency_key,
                "Content-Type": "application/json",
            },
            timeout=2.0,
        )
    except httpx.TransportError as exc:
        raise TransientError(f"fakebooks unreachable: {type(exc).__name__}") from None
    _raise_for(response)
    outcomes: list[DeliveryOutcome] = []
    for item, delivery in zip(loads(response.text), deliveries, strict=True):
        if item.get("status") == 409:
            outcomes.append(InvoiceAlreadyPaid("the invoice is paid", detail=item["error"]))
        elif "error" in item:
            outcomes.append(DestinationValidationError("refused", detail=item["error"]))
        else:
            outcomes.append(_result(item, created=delivery.previous is None))
    return outcomes


def fetch_invoice_status(
    connection: Connection, documents: Sequence[LedgerEntry]
) -> Sequence[InvoiceStatus]:
    """Every document's state in one request (a hook only in ``plugin(status=True)``)."""
    ids = ",".join(d.external_id for d in documents)
    try:
        response = connection.http.get(
            f"{connection.api_base_url}/invoices",
            params={"ids": ids},
            headers={"Authorization": f"Bearer {connection.access_token.reveal()}"},
            timeout=2.0,
        )
    except httpx.TransportError as exc:
        raise TransientError(f"fakebooks unreachable: {type(exc).__name__}") from None
    _raise_for(response)
    found = []
    for item in loads(response.text):
        total = Decimal(str(item["total"]))
        state = InvoiceState(item["state"])
        settled = state is InvoiceState.PAID
        found.append(
            InvoiceStatus(
                external_id=str(item["id"]),
                state=state,
                total=total,
                amount_due=Decimal(0) if settled or state is InvoiceState.VOIDED else total,
                amount_paid=total if settled else Decimal(0),
                currency="GBP",
            )
        )
    return found


class _Hooks:
    """A plugin object holding hook functions as attributes (pluggy needs a hashable one)."""

    def __init__(self, **hooks: Any) -> None:
        self.__dict__.update(hooks)


def plugin(
    *, batch: bool, status: bool = False, client_auth: str = "basic", **replaced: Any
) -> object:
    """The plugin object: this module's hooks, with the batch hook when ``batch`` and the
    status read-back hook when ``status``, declaring ``client_auth`` as its OAuth client
    authentication; hook functions in ``replaced`` take the place of the ones of the same
    attribute name."""
    declared = attrs.evolve(OAUTH, client_auth=client_auth)

    @hookimpl(specname="register_destinations")
    def declare() -> list[Destination]:
        return [_destination(declared)]

    hooks = _Hooks(
        register_destinations=declare,
        authenticate=authenticate,
        preview_bill=preview_bill,
        send_bill=send_bill,
    )
    if status:

        @hookimpl(specname="fetch_invoice_status")
        def status_hook(
            connection: Connection, documents: Sequence[LedgerEntry]
        ) -> Sequence[InvoiceStatus]:
            return fetch_invoice_status(connection, documents)

        hooks.status_hook = status_hook
    if batch:

        @hookimpl(specname="send_bills")
        def batch_hook(
            connection: Connection, deliveries: Sequence[Delivery], idempotency_key: str
        ) -> Sequence[DeliveryOutcome]:
            return send_bills(connection, deliveries, idempotency_key)

        hooks.batch_hook = batch_hook
    hooks.__dict__.update(replaced)
    return hooks


@hookimpl
def authenticate(
    destination: str, callback: OAuthCallback, http: httpx.Client, api_base_url: str
) -> Sequence[TenantChoice]:
    """Tenants from ``/connections``, as Xero does it."""
    response = http.get(
        f"{api_base_url}/connections",
        headers={"Authorization": f"Bearer {callback.access_token.reveal()}"},
    )
    if response.status_code != 200:
        raise AuthenticationFailed(f"/connections answered {response.status_code}")
    return [TenantChoice(t["tenantId"], t["tenantName"]) for t in response.json()]


def whoami(connection: Connection) -> dict[str, Any]:
    """An API call that raises TokenExpired on 401, as a plugin client would."""
    response = connection.http.get(
        f"{connection.api_base_url}/whoami",
        headers={"Authorization": f"Bearer {connection.access_token.reveal()}"},
    )
    if response.status_code == 401:
        raise TokenExpired("access token refused")
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


class Provider:
    """The fake provider: an OAuthServer, tenants, and an invoice API with idempotency keys."""

    def __init__(
        self, clock: Clock, *, rate_limit: int = 120, client_auth: Sequence[str] = ("basic",)
    ) -> None:
        self.clock = clock
        self.tenants: list[str] = ["t-uk"]
        self.oauth = OAuthServer(
            clock=clock,
            access_lifetime=1800,
            refresh_lifetime=60 * 86400,
            refresh_grace=1800,
            consent_tenants=lambda query: list(self.tenants),
            allowed_scopes=["offline_access", "accounting"],
            client_auth=client_auth,
        )
        self.oauth.add_client(CLIENT_ID, CLIENT_SECRET)
        #: When set, the token endpoint answers this instead (status, body, content type).
        self.token_override: tuple[int, str, str] | None = None
        #: When true, refusals quote the request's Authorization header (as careless APIs do).
        self.echo_authorization = False
        #: When set, the token endpoint answers only once this event is set (a slow provider).
        self.token_gate: threading.Event | None = None
        #: Set while a token request waits at the gate.
        self.token_waiting = threading.Event()
        #: Invoices by id; ``keys`` maps idempotency keys to the answer first given.
        self.invoices: dict[str, dict[str, Any]] = {}
        self.keys: dict[str, dict[str, Any]] = {}
        self.paid: set[str] = set()
        self.voided: set[str] = set()
        #: The idempotency keys of each batch request, in arrival order.
        self.batches: list[list[str]] = []
        self.refuse_customers: set[str] = set()
        self.window = SlidingWindow(rate_limit, 60, clock)
        self.requests = 0
        self.throttled = 0
        self._lock = threading.Lock()
        self.faults = FaultPlan(path_prefixes=("/api/invoices", "/api/batch"), seed=7)
        self.app = FaultMiddleware(
            Starlette(
                routes=[
                    Route("/authorize", self.oauth.authorize),
                    Route("/token", self._token, methods=["POST"]),
                    Route("/revoke", self.oauth.revoke, methods=["POST"]),
                    Route("/api/connections", self._connections),
                    Route("/api/whoami", self._whoami),
                    Route("/api/invoices", self._create, methods=["POST"]),
                    Route("/api/invoices", self._statuses, methods=["GET"]),
                    Route("/api/invoices/{id}", self._update, methods=["POST"]),
                    Route("/api/batch", self._batch, methods=["POST"]),
                ]
            ),
            self.faults,
        )

    def _admit(self, request: Request) -> Response | None:
        if self.oauth.bearer(request) is None:
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        with self._lock:
            self.requests += 1
        wait = self.window.acquire("tenant")
        if wait:
            with self._lock:
                self.throttled += 1
            return JSONResponse(
                {"error": "throttled"},
                status_code=429,
                headers={"Retry-After": str(max(1, round(wait)))},
            )
        return None

    def _write(
        self,
        invoice: dict[str, Any],
        key: str | None,
        existing: str | None,
        authorization: str | None = None,
    ) -> dict[str, Any]:
        with self._lock:
            if key and key in self.keys:
                return self.keys[key]
            if invoice.get("customer") in self.refuse_customers:
                answer: dict[str, Any] = {"error": f"customer {invoice['customer']} is archived"}
                if self.echo_authorization:
                    answer["error"] += f" (request sent with Authorization: {authorization})"
            elif existing is not None:
                if existing in self.paid:
                    answer = {"error": "paid", "status": 409}
                else:
                    current = self.invoices[existing]
                    current.update(invoice)
                    current["revision"] += 1
                    answer = dict(current)
            else:
                new_id = str(len(self.invoices) + 1)
                document = {**invoice, "id": new_id, "revision": 1}
                self.invoices[new_id] = document
                answer = dict(document)
            if key and "error" not in answer:
                self.keys[key] = answer
            return answer

    async def _create(self, request: Request) -> Response:
        refused = self._admit(request)
        if refused is not None:
            return refused
        answer = self._write(
            loads(await request.body()),
            request.headers.get("Idempotency-Key"),
            None,
            request.headers.get("Authorization"),
        )
        return self._answer(answer)

    async def _update(self, request: Request) -> Response:
        refused = self._admit(request)
        if refused is not None:
            return refused
        answer = self._write(
            loads(await request.body()),
            request.headers.get("Idempotency-Key"),
            request.path_params["id"],
            request.headers.get("Authorization"),
        )
        return self._answer(answer)

    async def _statuses(self, request: Request) -> Response:
        refused = self._admit(request)
        if refused is not None:
            return refused
        wanted = [i for i in request.query_params.get("ids", "").split(",") if i]
        with self._lock:
            answers = [
                {
                    "id": invoice_id,
                    "total": sum(Decimal(str(line["amount"])) for line in invoice["lines"]),
                    "state": "voided"
                    if invoice_id in self.voided
                    else "paid"
                    if invoice_id in self.paid
                    else "unpaid",
                }
                for invoice_id, invoice in self.invoices.items()
                if invoice_id in wanted
            ]
        return Response(dumps(answers), media_type="application/json")

    def _answer(self, answer: dict[str, Any]) -> Response:
        left = {"X-Left": str(self.window.remaining("tenant"))}
        if "error" in answer:
            return Response(
                dumps({"message": answer["error"]}),
                status_code=answer.get("status", 400),
                media_type="application/json",
                headers=left,
            )
        return Response(dumps(answer), media_type="application/json", headers=left)

    async def _batch(self, request: Request) -> Response:
        refused = self._admit(request)
        if refused is not None:
            return refused
        items = loads(await request.body())
        with self._lock:
            self.batches.append([item["key"] for item in items])
        authorization = request.headers.get("Authorization")
        answers = [
            self._write(item["invoice"], item["key"], item["id"], authorization) for item in items
        ]
        return Response(dumps(answers), media_type="application/json")

    def invoices_for(self, bill_id: str) -> list[dict[str, Any]]:
        """Every invoice made for one bill (to check that nothing was made twice)."""
        return [i for i in self.invoices.values() if i["billId"] == bill_id]

    async def _token(self, request: Request) -> Response:
        if self.token_gate is not None:
            self.token_waiting.set()
            gate = self.token_gate
            await anyio.to_thread.run_sync(lambda: gate.wait(30))
        if self.token_override is not None:
            status, body, content_type = self.token_override
            return Response(body, status_code=status, media_type=content_type)
        return await self.oauth.token(request)

    async def _connections(self, request: Request) -> Response:
        info = self.oauth.bearer(request)
        if info is None:
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        return JSONResponse(
            [{"tenantId": t, "tenantName": TENANTS[t]} for t in info.authorization.tenants]
        )

    async def _whoami(self, request: Request) -> Response:
        info = self.oauth.bearer(request)
        if info is None:
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        return JSONResponse({"tenants": list(info.authorization.tenants)})


# --- test helpers shared by the credential and delivery tests -----------------------------------

REDIRECT = "http://127.0.0.1:9/callback"


def destination_settings(server_url: str) -> Any:
    """Settings pointing the ``fakebooks`` destination at a running provider."""
    from billbridge.domain.models import Secret
    from billbridge.settings import DestinationSettings

    return DestinationSettings(
        client_id=CLIENT_ID,
        client_secret=Secret(CLIENT_SECRET),
        redirect_uri=REDIRECT,
        api_base_url=f"{server_url}/api",
        authorize_url=f"{server_url}/authorize",
        token_url=f"{server_url}/token",
        revoke_url=f"{server_url}/revoke",
    )


def make_engine(
    database_url: str,
    server_url: str,
    clock: Clock,
    home: Any,
    key: str,
    *,
    batch: bool = False,
    status: bool = False,
    extra: Sequence[tuple[str, object]] = (),
    hooks: Mapping[str, Any] | None = None,
    **settings: Any,
) -> Any:
    """An engine with the ``fakebooks`` plugin, on ``clock``, talking to the provider.

    ``hooks`` replace hook implementations of the plugin object by attribute name
    (``send_bill``, ``batch_hook`` for ``send_bills``): each a ``hookimpl``-marked function.
    """
    from billbridge import Engine
    from billbridge.plugin.manager import load_plugins
    from billbridge.secrets import SecretBox
    from billbridge.settings import Settings

    engine = Engine(
        database_url,
        settings=Settings(
            home=home, destinations={KEY: destination_settings(server_url)}, **settings
        ),
        plugins=load_plugins(
            entry_points=True,
            extra=[(KEY, plugin(batch=batch, status=status, **(hooks or {}))), *extra],
            blocked=(),
        ),
        clock=clock,
        secret_box=SecretBox([key]),
    )
    engine.credentials.configure_app(KEY, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    return engine


def visit_consent(url: str) -> dict[str, str]:
    """The user approves on the consent page; returns the callback's query parameters."""
    from urllib.parse import parse_qs, urlsplit

    response = httpx.get(url)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def connect(engine: Any, name: str = "Fake UK") -> Any:
    """Create a credential and complete its consent; returns the COMPLETE credential."""
    credential = engine.credentials.create(name, KEY)
    params = visit_consent(engine.credentials.authorization_url(credential.id, REDIRECT))
    return engine.credentials.complete(params["state"], params["code"])
