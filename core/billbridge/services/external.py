"""External entities: the destination's own records, listed for an integration.

``engine.external.list(integration_id, "Customer", search="Acme")`` asks the integration's
destination plugin (the ``list_external_entities`` hook) for one page of records, so that
people (and UIs) can pick the external id of a mapping or a panel option. OAuth destinations
are reached through the integration's credential (``Credentials.call``: a fresh token, one
refresh and retry on ``TokenExpired``); destinations without OAuth through a connection whose
tenant is the integration, as deliveries are.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from billbridge.domain.models import Integration, Secret
from billbridge.errors import AuthenticationFailed, BillbridgeError, DestinationValidationError
from billbridge.plugin.contract import Connection, ExternalEntityPage
from billbridge.plugin.manager import PluginRegistry
from billbridge.services.credentials import Credentials
from billbridge.store import UnitOfWorkFactory, atomically

__all__ = ["ExternalEntities"]


class ExternalEntities:
    """One page of a destination's records for an integration (``engine.external``)."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        plugins: PluginRegistry,
        credentials: Credentials,
        http: httpx.Client,
        api_base_url: Callable[[str], str],
    ) -> None:
        self._uow = uow
        self._plugins = plugins
        self._credentials = credentials
        self._http = http
        self._api_base_url = api_base_url

    def list(
        self,
        integration_id: str,
        table: str,
        search: str | None = None,
        cursor: str | None = None,
    ) -> ExternalEntityPage:
        """One page of ``table`` (``Customer``, ``Item``...) from the integration's destination.

        :param search: text the destination narrows the list by (by name), or ``None``.
        :param cursor: ``None`` for the first page, else the previous page's ``next_cursor``.
        :raises NotFound: no such integration.
        :raises UnknownDestination: its plugin is not installed.
        :raises DestinationValidationError: the destination does not list ``table``.
        :raises AuthenticationFailed: an OAuth destination's integration has no usable
            credential.
        """
        integration = atomically(self._uow, lambda uow: uow.integrations.get(integration_id))
        key = integration.destination
        destination = self._plugins.destination(key)
        if table not in destination.external_tables:
            listed = ", ".join(destination.external_tables) or "none"
            raise DestinationValidationError(
                f"{key} does not list {table!r}; the tables it lists are: {listed}"
            )
        if not self._plugins.has_hook(key, "list_external_entities"):
            raise BillbridgeError(f"the {key} plugin cannot list its records")

        def page(connection: Connection) -> ExternalEntityPage:
            answer = self._plugins.call(
                "list_external_entities",
                key,
                connection=connection,
                table=table,
                search=search,
                cursor=cursor,
            )
            if not isinstance(answer, ExternalEntityPage):
                raise BillbridgeError(
                    f"the {key} plugin's list_external_entities returned "
                    f"{type(answer).__name__}, not an ExternalEntityPage"
                )
            return answer

        if destination.oauth is None:
            return page(self._tenant_connection(integration))
        if integration.credential_id is None:
            raise AuthenticationFailed(
                f"integration {integration.name!r} has no credential: connect one "
                "(billbridge integrations connect INTEGRATION_ID CREDENTIAL_ID)"
            )
        return self._credentials.call(integration.credential_id, page)

    def _tenant_connection(self, integration: Integration) -> Connection:
        """A destination without OAuth: the integration is its own tenant, as in delivery."""
        return Connection(
            destination=integration.destination,
            tenant_id=integration.id,
            access_token=Secret(""),
            http=self._http,
            api_base_url=self._api_base_url(integration.destination),
        )
