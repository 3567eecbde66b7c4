"""Integrations: create, read, update, delete, enable, disable, connect (``engine.integrations``).

Every change is validated before anything is saved; refused input raises
:class:`~billbridge.errors.ValidationFailed` whose ``errors`` are ``{path, message}`` pairs a UI
places next to fields.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import attrs

from billbridge.domain import filter_expr, schedule
from billbridge.domain.clock import Clock
from billbridge.domain.models import BillEntityConfig, GlobalConfig, Integration, converter, thaw
from billbridge.domain.schemas import REDACTED, core_schema, validate
from billbridge.errors import BillbridgeError, FieldError, UnknownDestination, ValidationFailed
from billbridge.plugin.contract import Destination
from billbridge.plugin.manager import PluginRegistry
from billbridge.services.config_secrets import ConfigSecrets
from billbridge.store import UnitOfWork, UnitOfWorkFactory, atomically, new_id

__all__ = ["Integrations"]


def _keep_redacted(given: Mapping[str, Any], stored: Mapping[str, Any]) -> dict[str, Any]:
    kept = dict(given)
    for name, value in given.items():
        if value == REDACTED and name in stored:
            kept[name] = stored[name]
    return kept


def _config_dict(config: GlobalConfig | BillEntityConfig) -> dict[str, Any]:
    """A configuration as its panel's values (unset options left out, as a UI sends them)."""
    return {k: v for k, v in converter.unstructure(config).items() if v is not None}


class Integrations:
    """Create, read, update, delete, enable and disable integrations (``engine.integrations``)."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        plugins: PluginRegistry,
        secrets: ConfigSecrets,
        clock: Clock,
    ) -> None:
        self._uow = uow
        self._plugins = plugins
        self._secrets = secrets
        self._clock = clock

    def create(
        self,
        *,
        name: str,
        destination: str,
        config: Mapping[str, Any] | None = None,
        entity_config: Mapping[str, Any] | None = None,
        destination_config: Mapping[str, Any] | None = None,
        entity_type: str = "Bill",
        enabled: bool = True,
    ) -> Integration:
        """Validate and save a new integration.

        :param name: the integration's name (also ``config["name"]``).
        :param destination: an installed destination key.
        :param config: the global configuration panel's values.
        :param entity_config: the Bill entity configuration panel's values.
        :param destination_config: the destination's own panel values.
        :raises ValidationFailed: with every problem found; nothing is saved.
        """
        global_config, bill_config, dest_config = self.validate(
            destination=destination,
            config={**(config or {}), "name": name},
            entity_config=entity_config or {},
            destination_config=destination_config or {},
            entity_type=entity_type,
        )
        now = self._clock.now()
        integration = Integration(
            id=new_id(),
            destination=destination,
            entity_type=entity_type,
            config=global_config,
            entity_config=bill_config,
            destination_config=self._secrets.seal(destination, dest_config),
            enabled=enabled,
            created_at=now,
            updated_at=now,
        )
        return atomically(self._uow, lambda uow: uow.integrations.add(integration))

    def get(self, integration_id: str) -> Integration:
        """One integration; raises :class:`~billbridge.errors.NotFound`."""
        return atomically(self._uow, lambda uow: uow.integrations.get(integration_id))

    def list(
        self, *, destination: str | None = None, enabled: bool | None = None
    ) -> list[Integration]:
        """Integrations, oldest first, optionally of one destination or enabled state."""
        return atomically(
            self._uow, lambda uow: uow.integrations.list(destination=destination, enabled=enabled)
        )

    def update(
        self,
        integration_id: str,
        *,
        version: int,
        name: str | None = None,
        config: Mapping[str, Any] | None = None,
        entity_config: Mapping[str, Any] | None = None,
        destination_config: Mapping[str, Any] | None = None,
    ) -> Integration:
        """Replace the given parts of an integration's configuration.

        :param version: the version the caller read (optimistic locking): if the integration
            changed since, :class:`~billbridge.errors.StaleVersion` is raised and nothing saved.
        :raises ValidationFailed: the new configuration is refused as a whole.
        """
        current = self.get(integration_id)
        new_config = dict(config) if config is not None else _config_dict(current.config)
        new_config["name"] = name if name is not None else new_config.get("name", current.name)
        global_config, bill_config, dest_config = self.validate(
            destination=current.destination,
            config=new_config,
            entity_config=(
                entity_config if entity_config is not None else _config_dict(current.entity_config)
            ),
            destination_config=self._secrets.unseal(
                # "********" for a secret means "keep the one stored": UIs never see it.
                _keep_redacted(destination_config, current.destination_config)
                if destination_config is not None
                else current.destination_config
            ),
            entity_type=current.entity_type,
        )
        now = self._clock.now()
        changed = attrs.evolve(
            current,
            config=global_config,
            entity_config=bill_config,
            destination_config=self._secrets.seal(current.destination, dest_config),
            updated_at=now,
        )
        minutes = global_config.status_check_minutes
        # Reading statuses back turned on again: what was delivered meanwhile and is not
        # settled is read one interval from now (while off, nothing was scheduled).
        resume = current.config.status_check_minutes <= 0 < minutes

        def work(uow: UnitOfWork) -> Integration:
            updated = uow.integrations.update(changed, expected_version=version)
            if resume:
                uow.ledger.resume_status_checks(integration_id, now + timedelta(minutes=minutes))
            return updated

        return atomically(self._uow, work)

    def delete(self, integration_id: str) -> None:
        """Delete an integration with its linked mappings, runs, events and ledger."""
        atomically(self._uow, lambda uow: uow.integrations.delete(integration_id))

    def connect(self, integration_id: str, credential_id: str) -> Integration:
        """Connect a credential to an integration (connecting another one changes it).

        The credential must be COMPLETE and for the integration's destination.
        """
        current_destination = self.get(integration_id).destination
        if self._plugins.destination(current_destination).oauth is None:
            raise ValidationFailed(
                [FieldError("/credentialId", f"{current_destination} needs no credential")],
                summary="cannot connect the credential",
            )

        def work(uow: UnitOfWork) -> Integration:
            repo = uow.integrations
            current = repo.get(integration_id)
            # Locked: a credential deleted meanwhile must not be linked.
            credential = uow.credentials.get(credential_id, for_update=True)
            errors = []
            if credential.destination != current.destination:
                errors.append(
                    FieldError(
                        "/credentialId",
                        f"credential {credential.name!r} is for {credential.destination}, "
                        f"this integration delivers to {current.destination}",
                    )
                )
            if credential.status.value != "COMPLETE":
                errors.append(
                    FieldError(
                        "/credentialId",
                        f"credential {credential.display_name} is not complete: finish its "
                        "consent first",
                    )
                )
            if errors:
                raise ValidationFailed(errors, summary="cannot connect the credential")
            return repo.update(
                attrs.evolve(current, credential_id=credential_id, updated_at=self._clock.now())
            )

        return atomically(self._uow, work)

    def disconnect(self, integration_id: str) -> Integration:
        """Disconnect the integration's credential (the credential itself stays)."""

        def work(uow: UnitOfWork) -> Integration:
            repo = uow.integrations
            current = repo.get(integration_id)
            if current.credential_id is None:
                raise BillbridgeError(f"integration {current.name!r} is not connected")
            return repo.update(
                attrs.evolve(current, credential_id=None, updated_at=self._clock.now())
            )

        return atomically(self._uow, work)

    def enable(self, integration_id: str) -> Integration:
        """Enable an integration; the successive-error count starts again from zero."""
        return self._set_enabled(integration_id, enabled=True)

    def disable(self, integration_id: str) -> Integration:
        """Disable an integration: its bills are no longer routed or delivered."""
        return self._set_enabled(integration_id, enabled=False)

    def _set_enabled(self, integration_id: str, *, enabled: bool) -> Integration:
        def work(uow: UnitOfWork) -> Integration:
            repo = uow.integrations
            current = repo.get(integration_id)
            changed = attrs.evolve(
                current,
                enabled=enabled,
                consecutive_errors=0 if enabled else current.consecutive_errors,
                updated_at=self._clock.now(),
            )
            return repo.update(changed)

        return atomically(self._uow, work)

    # -- validation -------------------------------------------------------------------------------

    def validate(
        self,
        *,
        destination: str,
        config: Mapping[str, Any],
        entity_config: Mapping[str, Any],
        destination_config: Mapping[str, Any],
        entity_type: str = "Bill",
    ) -> tuple[GlobalConfig, BillEntityConfig, dict[str, Any]]:
        """Validate a whole integration configuration without saving anything.

        Checks, and reports together: the destination is installed and takes the entity type;
        the global and entity configuration against the core's panels; the account filter's
        syntax (with its position); the destination configuration against the plugin's panel
        and then the plugin's ``validate_config``.

        :returns: the parsed global and entity configuration and the destination configuration.
        :raises ValidationFailed: listing every problem with its path.
        """
        errors, plugin_destination = self._destination_errors(destination, entity_type)
        errors += _global_errors(config)
        errors += validate(
            dict(entity_config), core_schema("bill-entity-config"), base_path="/entityConfig"
        )
        if plugin_destination is not None:
            errors += self._panel_errors(plugin_destination, destination_config)
        if errors:
            raise ValidationFailed(errors, summary="integration configuration refused")
        return (
            converter.structure(dict(config), GlobalConfig),
            converter.structure(dict(entity_config), BillEntityConfig),
            thaw(destination_config),
        )

    def _destination_errors(
        self, key: str, entity_type: str
    ) -> tuple[builtins.list[FieldError], Destination | None]:
        try:
            destination = self._plugins.destination(key)
        except UnknownDestination as exc:
            return [FieldError("/destination", str(exc))], None
        if entity_type not in destination.entity_types:
            message = f"{key} does not take {entity_type!r}; it takes " + ", ".join(
                destination.entity_types
            )
            return [FieldError("/entityType", message)], destination
        return [], destination

    def _panel_errors(
        self, destination: Destination, config: Mapping[str, Any]
    ) -> builtins.list[FieldError]:
        """The destination panel's schema, then (only if that passes) the plugin's own checks."""
        errors = validate(dict(config), destination.schema, base_path="/destinationConfig")
        if errors or not self._plugins.has_hook(destination.key, "validate_config"):
            return errors
        semantic = self._plugins.call("validate_config", destination.key, config=dict(config))
        return [
            FieldError(f"/destinationConfig{e.path if e.path != '/' else ''}", e.message)
            for e in semantic or ()
        ]


def _global_errors(config: Mapping[str, Any]) -> list[FieldError]:
    """The global panel's schema, a blank name, the account filter's syntax, and the delivery
    schedule and its time zone."""
    errors = validate(dict(config), core_schema("global-config"), base_path="/config")
    name = config.get("name")
    if isinstance(name, str) and name and not name.strip():
        errors.append(FieldError("/config/name", "must not be blank"))
    expression = config.get("accountFilter")
    if isinstance(expression, str) and expression.strip():
        try:
            filter_expr.parse(expression)
        except filter_expr.FilterSyntaxError as exc:
            # One line, where a UI shows it; the position is what a person needs.
            where = f"at line {exc.line}, column {exc.column}"
            hint = f" ({exc.hint})" if exc.hint else ""
            errors.append(FieldError("/config/accountFilter", f"{exc.message} {where}{hint}"))
    cron = config.get("deliverySchedule")
    if isinstance(cron, str):
        try:
            schedule.check_schedule(cron)
        except schedule.ScheduleError as exc:
            errors.append(FieldError("/config/deliverySchedule", str(exc)))
    zone = config.get("scheduleTimezone")
    if isinstance(zone, str) and zone:
        try:
            schedule.check_timezone(zone)
        except schedule.ScheduleError as exc:
            errors.append(FieldError("/config/scheduleTimezone", str(exc)))
    return errors
