"""Records of the destinations, for pickers and mappings (``engine.external``).

One page of a destination table (customers, items, accounts, tax codes...) through the
plugin's ``list_external_entities`` hook, by credential or by integration, kept for a short
time so that a UI typing into a picker does not call the destination on every keystroke; the
names of ids already mapped; and a connection test.

``engine.external.list(integration_id, "Customer", search="Acme")`` is the short form people
and the CLI use. OAuth destinations are reached through the integration's credential
(``Credentials.call``: a fresh token, one refresh and retry on ``TokenExpired``); destinations
without OAuth through a connection whose tenant is the integration, as deliveries are.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import datetime

import attrs
import httpx

from billbridge.domain.clock import Clock
from billbridge.domain.models import Credential, Integration, Secret
from billbridge.errors import (
    BillbridgeError,
    DestinationValidationError,
    FieldError,
    NotFound,
    ValidationFailed,
)
from billbridge.plugin.contract import Connection, ExternalEntityPage
from billbridge.plugin.manager import PluginRegistry
from billbridge.services.credentials import Credentials
from billbridge.store import UnitOfWorkFactory, atomically

__all__ = ["ConnectionTest", "ExternalEntities"]

_Key = tuple[str, str, str, str]
_Lister = Callable[[Connection], ExternalEntityPage]

#: Pages read at most to find the names of mapped ids (a table of 100,000 customers is not
#: walked on every request; ids not found are reported without a name).
MAX_NAME_PAGES = 20


@attrs.frozen
class ConnectionTest:
    """How a connection test went: ``ok``, and a sentence for people."""

    ok: bool
    message: str
    checked_at: datetime
    credential: Credential


class _PageCache:
    """Pages by ``(credential, table, search, cursor)`` for ``ttl`` seconds, at most ``size``."""

    def __init__(self, clock: Clock, ttl: float, size: int = 512) -> None:
        self._clock = clock
        self._ttl = ttl
        self._size = size
        self._pages: OrderedDict[_Key, tuple[float, ExternalEntityPage]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: _Key) -> ExternalEntityPage | None:
        with self._lock:
            found = self._pages.get(key)
            if found is None or found[0] <= self._clock.time():
                self._pages.pop(key, None)
                return None
            self._pages.move_to_end(key)
            return found[1]

    def put(self, key: _Key, page: ExternalEntityPage) -> None:
        if self._ttl <= 0:
            return
        with self._lock:
            self._pages[key] = (self._clock.time() + self._ttl, page)
            self._pages.move_to_end(key)
            while len(self._pages) > self._size:
                self._pages.popitem(last=False)

    def forget(self, credential_id: str) -> None:
        with self._lock:
            for key in [k for k in self._pages if k[0] == credential_id]:
                del self._pages[key]


class ExternalEntities:
    """``engine.external``: list destination tables, name mapped ids, test connections."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        plugins: PluginRegistry,
        credentials: Credentials,
        clock: Clock,
        http: httpx.Client,
        api_base_url: Callable[[str], str],
        ttl: float = 60.0,
    ) -> None:
        """
        :param http: and ``api_base_url`` (by destination key): the connection of destinations
            without OAuth, as delivery makes it.
        :param ttl: seconds a page is kept (0: never).
        """
        self._uow = uow
        self._plugins = plugins
        self._credentials = credentials
        self._clock = clock
        self._http = http
        self._api_base_url = api_base_url
        self._cache = _PageCache(clock, ttl)

    def list(
        self, integration_id: str, table: str, search: str | None = None, cursor: str | None = None
    ) -> ExternalEntityPage:
        """One page of ``table`` (``Customer``, ``Item``...) from the integration's destination.

        :param search: text the destination narrows the list by (by name), or ``None``.
        :param cursor: ``None`` for the first page, else the previous page's ``next_cursor``.
        :raises NotFound: no such integration.
        :raises DestinationValidationError: the destination does not list ``table``.
        :raises ValidationFailed: an OAuth destination's integration has no credential.
        """
        return self.page(table, integration_id=integration_id, search=search, cursor=cursor)

    def page(
        self,
        table: str,
        *,
        credential_id: str | None = None,
        integration_id: str | None = None,
        search: str | None = None,
        cursor: str | None = None,
    ) -> ExternalEntityPage:
        """One page of ``table`` through a credential, or the credential of an integration.

        :raises NotFound: the credential, integration or table does not exist.
        :raises ValidationFailed: the integration has no credential connected.
        :raises DestinationError: the destination refused or failed (e.g. reconnect needed).
        """
        destination, owner, call = self._reach(credential_id, integration_id)
        self._check_table(destination, table)
        search = (search or "").strip() or None
        key = (owner, table, search or "", cursor or "")
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        page = call(lambda connection: self._list(connection, table, search, cursor))
        self._cache.put(key, page)
        return page

    def names(
        self, table: str, ids: Iterable[str], *, integration_id: str | None = None,
        credential_id: str | None = None,
    ) -> dict[str, str | None]:  # fmt: skip
        """The names of these ids in ``table`` (``None`` for ids the destination does not list,
        e.g. archived records), reading at most :data:`MAX_NAME_PAGES` pages."""
        wanted = list(dict.fromkeys(ids))
        found: dict[str, str | None] = dict.fromkeys(wanted)
        missing = set(wanted)
        cursor: str | None = None
        for _ in range(MAX_NAME_PAGES):
            if not missing:
                break
            page = self.page(
                table, credential_id=credential_id, integration_id=integration_id, cursor=cursor
            )
            for entity in page.items:
                if entity.id in missing:
                    found[entity.id] = entity.name
                    missing.discard(entity.id)
            cursor = page.next_cursor
            if cursor is None:
                break
        return found

    def test(self, credential_id: str) -> ConnectionTest:
        """Try a credential: refresh its token if due and list one page of its account table.

        A refused or failing connection is reported in the result, not raised.
        """
        credential = self._credentials.get(credential_id)
        destination = self._plugins.destination(credential.destination)
        self._cache.forget(credential.id)
        try:
            page = self.page(destination.account_table, credential_id=credential.id)
        except NotFound:
            raise
        except BillbridgeError as exc:
            ok, message = False, f"the connection does not work: {exc}"
        else:
            shown = len(page.items)
            more = "+" if page.next_cursor else ""
            ok, message = (
                True,
                (
                    f"connected to {credential.tenant_name or credential.tenant_id}: listed "
                    f"{shown}{more} {destination.account_table} record(s)"
                ),
            )
        return ConnectionTest(ok, message, self._clock.now(), self._credentials.get(credential.id))

    def _reach(
        self, credential_id: str | None, integration_id: str | None
    ) -> tuple[
        str, str, Callable[[Callable[[Connection], ExternalEntityPage]], ExternalEntityPage]
    ]:
        """The destination key, whose pages these are (for the cache), and how to call it."""
        if integration_id is not None:
            integration = atomically(self._uow, lambda uow: uow.integrations.get(integration_id))
            if self._plugins.destination(integration.destination).oauth is None:
                connection = self._tenant_connection(integration)
                return integration.destination, integration.id, lambda work: work(connection)
            if integration.credential_id is None:
                raise ValidationFailed(
                    [FieldError("/credentialId", "no credential is connected: connect one first")],
                    summary=f"integration {integration.name!r} has no credential",
                )
            credential_id = integration.credential_id
        if credential_id is None:
            raise ValueError("give a credential_id or an integration_id")
        credential = self._credentials.get(credential_id)
        return (
            credential.destination,
            credential.id,
            lambda work: self._credentials.call(credential.id, work),
        )

    def _tenant_connection(self, integration: Integration) -> Connection:
        """A destination without OAuth: the integration is its own tenant, as in delivery."""
        return Connection(
            destination=integration.destination,
            tenant_id=integration.id,
            access_token=Secret(""),
            http=self._http,
            api_base_url=self._api_base_url(integration.destination),
        )

    def _check_table(self, destination_key: str, table: str) -> None:
        destination = self._plugins.destination(destination_key)
        if table not in destination.external_tables:
            listed = ", ".join(destination.external_tables) or "none"
            raise DestinationValidationError(
                f"{destination_key} does not list {table!r}; the tables it lists are: {listed}"
            )
        if not self._plugins.has_hook(destination_key, "list_external_entities"):
            raise NotFound(f"{destination_key} cannot list its tables")

    def _list(
        self, connection: Connection, table: str, search: str | None, cursor: str | None
    ) -> ExternalEntityPage:
        key = connection.destination
        page = self._plugins.call(
            "list_external_entities",
            key,
            connection=connection,
            table=table,
            search=search,
            cursor=cursor,
        )
        if not isinstance(page, ExternalEntityPage):
            raise BillbridgeError(
                f"the {key} plugin's list_external_entities returned {type(page).__name__}, "
                "not an ExternalEntityPage"
            )
        return page
