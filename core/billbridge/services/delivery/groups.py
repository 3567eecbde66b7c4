"""Which due runs go out together: tenant groups, and parking runs that cannot be sent.

A tenant (a QuickBooks realm, a Xero organisation) is the unit whose limits matter, so due runs
are grouped by tenant: every integration connected to the same tenant shares one group, one
lease and one rate limiter. Runs that cannot be sent at all (integration disabled, plugin not
installed, no usable credential) are parked with a reason and, where a person must act, an
event.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import attrs

from billbridge.domain.clock import Clock
from billbridge.domain.models import (
    Credential,
    CredentialStatus,
    Event,
    EventType,
    Integration,
    RunStatus,
)
from billbridge.domain.ratelimit import in_seconds
from billbridge.errors import NotFound
from billbridge.plugin.manager import PluginRegistry
from billbridge.services.delivery.record import count_errors, tell_disabled
from billbridge.store import UnitOfWork, UnitOfWorkFactory, atomically, new_id

__all__ = ["Grouper", "TenantGroup"]


@attrs.frozen
class TenantGroup:
    """The integrations whose due runs go to one destination tenant."""

    key: str
    destination: str
    #: ``None`` for destinations without OAuth.
    credential_id: str | None
    integrations: tuple[Integration, ...]

    @property
    def integration_ids(self) -> list[str]:
        """The ids of the group's integrations."""
        return [i.id for i in self.integrations]


class Grouper:
    """Builds tenant groups from the due runs, parking what cannot be sent."""

    def __init__(self, *, uow: UnitOfWorkFactory, plugins: PluginRegistry, clock: Clock) -> None:
        self._uow = uow
        self._plugins = plugins
        self._clock = clock

    def due_groups(self) -> list[TenantGroup]:
        """One group per tenant with runs due now."""
        now = self._clock.now()

        def due(uow: UnitOfWork) -> list[Integration]:
            counts = uow.runs.due_counts(now)
            return [i for i in uow.integrations.list() if i.id in counts] if counts else []

        return self.groups_of(atomically(self._uow, due))

    def groups_of(self, integrations: Sequence[Integration]) -> list[TenantGroup]:
        """One group per tenant of ``integrations``, parking the runs of those that cannot
        send (as :meth:`group_for` does)."""
        groups: dict[str, TenantGroup] = {}
        for integration in integrations:
            group = self.group_for(integration)
            if group is None:
                continue
            existing = groups.get(group.key)
            if existing is not None:
                group = attrs.evolve(
                    existing, integrations=existing.integrations + group.integrations
                )
            groups[group.key] = group
        return list(groups.values())

    def group_for(self, integration: Integration) -> TenantGroup | None:
        """The tenant group of an integration, or ``None`` after parking runs it cannot send."""
        if not integration.enabled:
            self.park(integration, RunStatus.DISABLED, "the integration is disabled")
            return None
        if integration.destination not in self._plugins.destinations:
            self.park(
                integration,
                RunStatus.AWAITING_RETRY,
                f"the plugin for {integration.destination} is not installed; runs wait until it is",
                next_attempt_at=in_seconds(self._clock.now(), 3600),
                event=EventType.PERFORM_ERROR,
            )
            return None
        destination = self._plugins.destination(integration.destination)
        if destination.oauth is None:
            # No authentication (e.g. a signed webhook): each integration is its own "tenant".
            return TenantGroup(
                key=f"{integration.destination}:{integration.id}",
                destination=integration.destination,
                credential_id=None,
                integrations=(integration,),
            )
        credential = self._usable_credential(integration)
        if isinstance(credential, str):
            self.park(
                integration, RunStatus.AUTH_FAILED, credential, event=EventType.AUTHENTICATION_ERROR
            )
            return None
        return TenantGroup(
            key=f"{integration.destination}:{credential.tenant_id}",
            destination=integration.destination,
            credential_id=credential.id,
            integrations=(integration,),
        )

    def tenant_of(self, integration: Integration) -> TenantGroup | str:
        """The integration's tenant group, or why it cannot be reached; parks nothing (for
        work beside delivery, such as reading statuses back)."""
        if not integration.enabled:
            return "the integration is disabled"
        if integration.destination not in self._plugins.destinations:
            return f"the plugin for {integration.destination} is not installed"
        destination = self._plugins.destination(integration.destination)
        if destination.oauth is None:
            return TenantGroup(
                key=f"{integration.destination}:{integration.id}",
                destination=integration.destination,
                credential_id=None,
                integrations=(integration,),
            )
        credential = self._usable_credential(integration)
        if isinstance(credential, str):
            return credential
        return TenantGroup(
            key=f"{integration.destination}:{credential.tenant_id}",
            destination=integration.destination,
            credential_id=credential.id,
            integrations=(integration,),
        )

    def _usable_credential(self, integration: Integration) -> Credential | str:
        """The integration's credential when it can be used, else what is wrong with it."""
        if integration.credential_id is None:
            return "no credential is connected: connect one, then replay these runs"
        credential_id = integration.credential_id
        try:
            credential = atomically(self._uow, lambda uow: uow.credentials.get(credential_id))
        except NotFound:
            return "its credential was deleted: connect another one, then replay these runs"
        if credential.status is not CredentialStatus.COMPLETE or credential.tenant_id is None:
            return (
                f"its credential {credential.display_name} cannot be used: reconnect it, then "
                "replay these runs"
            )
        return credential

    def park(
        self,
        integration: Integration,
        status: RunStatus,
        why: str,
        *,
        next_attempt_at: datetime | None = None,
        event: EventType | None = None,
    ) -> None:
        """Move the integration's due runs to ``status`` with ``why``; raise ``event`` if any."""
        now = self._clock.now()

        def work(uow: UnitOfWork) -> Sequence[Integration]:
            moved = uow.runs.set_status(
                integration_id=integration.id,
                status=status,
                error=why,
                now=now,
                next_attempt_at=next_attempt_at,
            )
            if not moved or event is None:
                return []
            uow.events.add(
                Event(
                    id=new_id(),
                    type=event,
                    message=f"{integration.name}: {moved} run(s) not delivered: {why}",
                    created_at=now,
                    integration_id=integration.id,
                    details={"runs": moved, "status": status.value},
                )
            )
            disabled = count_errors(uow, integration.id, [True], now)
            return [disabled] if disabled is not None else []

        tell_disabled(self._plugins, atomically(self._uow, work))
