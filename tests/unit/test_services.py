"""Service rules on an in-memory unit of work: fast, and the same rules the store enforces."""

from __future__ import annotations

import pytest
from builders import DESTINATION, T0, integration
from fakes import FakeUnitOfWork, FixedClock, registry_with

from billbridge.domain.clock import SystemClock
from billbridge.domain.models import EventType, RunStatus
from billbridge.errors import StaleVersion, ValidationFailed
from billbridge.secrets import SecretBox, generate_key
from billbridge.services.config_secrets import ConfigSecrets
from billbridge.services.delivery.record import count_errors
from billbridge.services.integrations import Integrations
from billbridge.services.mappings import Mappings


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


@pytest.fixture
def integrations(uow: FakeUnitOfWork) -> Integrations:
    plugins = registry_with(DESTINATION)
    box = SecretBox([generate_key()])
    secrets = ConfigSecrets(uow=uow, plugins=plugins, secret_box=lambda: box)
    return Integrations(uow=uow, plugins=plugins, secrets=secrets, clock=FixedClock(T0))


def test_an_integration_is_validated_sealed_and_saved(
    uow: FakeUnitOfWork, integrations: Integrations
) -> None:
    made = integrations.create(
        name="Books UK",
        destination="books",
        config={"accountFilter": "address.country == UK"},
        destination_config={"memo": "hello", "token": "s3cret"},
    )
    assert uow.integrations.get(made.id) == made
    assert made.config.account_filter == "address.country == UK"
    assert "s3cret" not in repr(made.destination_config)  # sealed before it is stored
    assert uow.commits == 2  # the key check before sealing, then the save


def test_every_problem_is_reported_and_nothing_saved(
    uow: FakeUnitOfWork, integrations: Integrations
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        integrations.create(
            name="Bad",
            destination="books",
            config={"accountFilter": "address.country =="},
            destination_config={"memo": 5},
        )
    paths = [e.path for e in refused.value.errors]
    assert "/config/accountFilter" in paths and "/destinationConfig/memo" in paths
    assert uow.integrations.rows == {}


def test_a_schedule_that_does_not_parse_is_refused_with_its_position(
    uow: FakeUnitOfWork, integrations: Integrations
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        integrations.create(
            name="Hourly",
            destination="books",
            config={"deliverySchedule": "0 24 * * *", "scheduleTimezone": "Mars/Olympus"},
        )
    assert [e.to_dict() for e in refused.value.errors] == [
        {
            "path": "/config/deliverySchedule",
            "message": "the hour field '24' is out of range (0-23) at column 3",
        },
        {
            "path": "/config/scheduleTimezone",
            "message": "unknown time zone 'Mars/Olympus': use an IANA name such as "
            "Europe/London or UTC",
        },
    ]
    assert uow.integrations.rows == {}
    made = integrations.create(
        name="Hourly",
        destination="books",
        config={"deliverySchedule": "0 * * * *", "scheduleTimezone": "Europe/London"},
    )
    assert made.config.delivery_schedule == "0 * * * *"
    assert made.config.schedule_timezone == "Europe/London"


def test_updates_are_refused_on_a_stale_version(integrations: Integrations) -> None:
    made = integrations.create(name="Books UK", destination="books")
    integrations.update(made.id, version=made.version, name="Books GB")
    with pytest.raises(StaleVersion):
        integrations.update(made.id, version=made.version, name="Books Wales")
    assert integrations.get(made.id).name == "Books GB"


def test_enabling_resets_the_successive_error_count(
    uow: FakeUnitOfWork, integrations: Integrations
) -> None:
    made = integrations.create(name="Books UK", destination="books", enabled=False)
    uow.integrations.set_consecutive_errors(made.id, 19)
    assert integrations.enable(made.id).consecutive_errors == 0


def test_a_mapping_takes_its_system_from_the_only_destination_with_the_table(
    uow: FakeUnitOfWork,
) -> None:
    mappings = Mappings(uow=uow, plugins=registry_with(DESTINATION), clock=FixedClock(T0))
    made = mappings.create(
        entity="Account", entity_id="acc-1", external_table="Customer", external_id="42"
    )
    assert made.external_system == "books"
    with pytest.raises(ValidationFailed) as refused:
        mappings.create_many(
            [{"m3terEntity": "Account", "m3terId": "a", "externalTable": "Nope", "externalId": 1}]
        )
    assert refused.value.to_list()[0]["path"] == "/0/externalSystem"


def test_the_threshold_disables_the_integration_with_one_event(uow: FakeUnitOfWork) -> None:
    uow.integrations.add(integration(consecutive_errors=18, config={"auto_disable_threshold": 20}))
    assert count_errors(uow, "int-1", [True], T0) is None  # type: ignore[arg-type]
    assert uow.integrations.get("int-1").consecutive_errors == 19
    disabled = count_errors(uow, "int-1", [True], T0)  # type: ignore[arg-type]
    assert disabled is not None and not disabled.enabled
    assert [e.type for e in uow.events.rows] == [EventType.DISABLED]
    assert uow.runs.moved == [("int-1", RunStatus.DISABLED)]
    # A success starts the count again.
    uow.integrations.add(integration(id="int-2", consecutive_errors=7))
    count_errors(uow, "int-2", [True, False], T0)  # type: ignore[arg-type]
    assert uow.integrations.get("int-2").consecutive_errors == 0


def test_external_records_of_a_destination_without_oauth_come_through_its_integration(
    uow: FakeUnitOfWork,
) -> None:
    from collections.abc import Sequence
    from typing import Any

    import httpx

    from billbridge import hookimpl
    from billbridge.errors import DestinationValidationError
    from billbridge.plugin.contract import Connection, ExternalEntity, ExternalEntityPage
    from billbridge.plugin.manager import load_plugins
    from billbridge.services.external import ExternalEntities

    seen: list[Connection] = []

    class Plugin:
        @hookimpl
        def register_destinations(self) -> Sequence[Any]:
            return [DESTINATION]

        @hookimpl
        def list_external_entities(
            self, connection: Connection, table: str, search: str | None, cursor: str | None
        ) -> ExternalEntityPage:
            seen.append(connection)
            return ExternalEntityPage(
                items=(ExternalEntity(id="c1", name=f"{table} {search} {cursor}"),),
                next_cursor="2" if cursor is None else None,
            )

    plugins = load_plugins(entry_points=False, extra=[("books", Plugin())], blocked=())
    uow.integrations.add(integration())
    with httpx.Client() as http:
        external = ExternalEntities(
            uow=uow,
            plugins=plugins,
            credentials=None,  # type: ignore[arg-type]  # never needed without OAuth
            clock=SystemClock(),
            http=http,
            api_base_url=lambda key: f"https://{key}.example",
        )
        first = external.list("int-1", "Customer", search="Acme")
        assert [(e.id, e.name) for e in first.items] == [("c1", "Customer Acme None")]
        assert external.list("int-1", "Customer", cursor=first.next_cursor).next_cursor is None
        with pytest.raises(DestinationValidationError, match="the tables it lists are"):
            external.list("int-1", "Invoice")
    assert [(c.tenant_id, c.api_base_url, c.access_token.reveal()) for c in seen] == [
        ("int-1", "https://books.example", ""),
        ("int-1", "https://books.example", ""),
    ]
