"""Integrations: CRUD with optimistic ``version``, enable/disable, connect, validate, panels,
external entities and names, preview."""

from __future__ import annotations

from typing import Any

from billbridge.api import serializers
from billbridge.api.endpoints import ADMIN, READ, Call, Endpoints, Param, Reply, ok
from billbridge.api.pagination import PAGE_PARAMS, offset_page, page_body
from billbridge.api.resources.common import CURSOR, FILTER_CHECK, SEARCH, installed
from billbridge.api.schemas import REQUESTS

__all__ = ["ROUTES"]

ROUTES = Endpoints("integrations")

_EXAMPLE_CONFIG = {
    "name": "Xero UK",
    "destination": "xero",
    "config": {"accountFilter": 'customFields.country == "UK"'},
    "entityConfig": {"onlySendOnApproval": True},
    "destinationConfig": {"invoiceStatus": "AUTHORISED", "defaultAccountCode": "200"},
}


_PARTS = ("config", "entityConfig", "destinationConfig")


def _json(call: Call, integration: Any) -> dict[str, Any]:
    return serializers.integration(integration, installed(call))


@ROUTES.route(
    "GET",
    "/api/integrations",
    scope=READ,
    summary="List integrations",
    params=[
        Param("destination", {"type": "string"}, "Only this destination's integrations."),
        Param("enabled", {"type": "boolean"}, "Only enabled (true) or disabled (false) ones."),
        *PAGE_PARAMS,
    ],
    responses=[ok("IntegrationPage", "Integrations, oldest first")],
)
def list_integrations(call: Call) -> Reply:
    """Integrations with their configuration (secrets as ``"********"``)."""
    found = call.engine.integrations.list(
        destination=call.query.get("destination"), enabled=call.query.get("enabled")
    )
    items, cursor = offset_page(call, lambda offset, limit: found[offset : offset + limit])
    return Reply(page_body([_json(call, i) for i in items], len(found), cursor))


@ROUTES.route(
    "POST",
    "/api/integrations",
    scope=ADMIN,
    summary="Create an integration",
    body=REQUESTS["IntegrationCreate"],
    body_example=_EXAMPLE_CONFIG,
    responses=[ok("Integration", "The saved integration (version 1)", status=201)],
    errors=[422],
)
def create_integration(call: Call) -> Reply:
    """Validates all three panels (and the plugin's own checks) and saves; every problem comes
    back at once as ``{path, message}``, and nothing is saved then."""
    body = call.body
    created = call.engine.integrations.create(
        name=body["name"],
        destination=body["destination"],
        config=body.get("config"),
        entity_config=body.get("entityConfig"),
        destination_config=body.get("destinationConfig"),
        enabled=body.get("enabled", True),
    )
    return Reply(_json(call, created), 201)


@ROUTES.route(
    "POST",
    "/api/integrations:validate",
    scope=READ,
    summary="Validate an integration's configuration without saving",
    body=REQUESTS["IntegrationValidate"],
    body_example=_EXAMPLE_CONFIG,
    responses=[ok("Valid", "The configuration would be accepted", {"valid": True})],
    errors=[422],
)
def validate_integration(call: Call) -> Reply:
    """The checks of create, reporting every problem; nothing is saved either way."""
    body = call.body
    call.engine.integrations.validate(
        destination=body["destination"],
        config={**(body.get("config") or {}), "name": body.get("name", "unnamed")},
        entity_config=body.get("entityConfig") or {},
        destination_config=body.get("destinationConfig") or {},
        entity_type=body.get("entityType", "Bill"),
    )
    return Reply({"valid": True})


@ROUTES.route(
    "GET",
    "/api/integrations/{integrationId}",
    scope=READ,
    summary="One integration",
    responses=[ok("Integration", "The integration; its parts validate against their panels")],
    errors=[404],
)
def get_integration(call: Call) -> Reply:
    """The integration as saved: unset options are left out, secrets read as ``"********"``."""
    return Reply(_json(call, call.engine.integrations.get(call.path["integrationId"])))


@ROUTES.route(
    "PUT",
    "/api/integrations/{integrationId}",
    scope=ADMIN,
    summary="Change an integration (optimistic locking on version)",
    body=REQUESTS["IntegrationUpdate"],
    body_example={"version": 1, "name": "Xero GB", "destinationConfig": {"invoiceStatus": "DRAFT"}},
    responses=[ok("Integration", "The integration with its new version")],
    errors=[404, 409, 422],
)
def update_integration(call: Call) -> Reply:
    """Replaces the parts given; ``version`` is the one you read, and if someone saved since,
    the answer is 409 ``stale_version`` and nothing changes. A secret sent back as
    ``"********"`` keeps the stored one."""
    body = call.body
    updated = call.engine.integrations.update(
        call.path["integrationId"],
        version=body["version"],
        name=body.get("name"),
        config=body.get("config"),
        entity_config=body.get("entityConfig"),
        destination_config=body.get("destinationConfig"),
    )
    return Reply(_json(call, updated))


@ROUTES.route(
    "DELETE",
    "/api/integrations/{integrationId}",
    scope=ADMIN,
    summary="Delete an integration",
    responses=[ok(None, "Deleted, with its linked mappings, runs and events", status=204)],
    errors=[404],
)
def delete_integration(call: Call) -> Reply:
    """Deletes the integration with its linked mappings, runs, events and delivery ledger."""
    call.engine.integrations.delete(call.path["integrationId"])
    return Reply(None, 204)


@ROUTES.route(
    "POST",
    "/api/integrations/{integrationId}/enable",
    scope=ADMIN,
    summary="Enable an integration",
    responses=[ok("Integration", "Enabled; the successive-error count starts again")],
    errors=[404],
)
def enable_integration(call: Call) -> Reply:
    """Enables it; its successive-error count (auto-disable) starts again from zero."""
    return Reply(_json(call, call.engine.integrations.enable(call.path["integrationId"])))


@ROUTES.route(
    "POST",
    "/api/integrations/{integrationId}/disable",
    scope=ADMIN,
    summary="Disable an integration",
    responses=[ok("Integration", "Disabled: its bills are no longer routed or delivered")],
    errors=[404],
)
def disable_integration(call: Call) -> Reply:
    """Disables it: bills are no longer routed to it and its waiting runs are parked."""
    return Reply(_json(call, call.engine.integrations.disable(call.path["integrationId"])))


@ROUTES.route(
    "PUT",
    "/api/integrations/{integrationId}/credential",
    scope=ADMIN,
    summary="Connect a credential",
    body=REQUESTS["Connect"],
    body_example={"credentialId": "5b0c6a51-3f0e-4f55-9d54-8f4a7f0b1c2d"},
    responses=[ok("Integration", "Connected")],
    errors=[404, 422],
)
def connect_credential(call: Call) -> Reply:
    """Connects a COMPLETE credential of the same destination (replacing any other)."""
    connected = call.engine.integrations.connect(
        call.path["integrationId"], call.body["credentialId"]
    )
    return Reply(_json(call, connected))


@ROUTES.route(
    "DELETE",
    "/api/integrations/{integrationId}/credential",
    scope=ADMIN,
    summary="Disconnect the credential",
    responses=[ok("Integration", "Disconnected (the credential itself stays)")],
    errors=[400, 404],
)
def disconnect_credential(call: Call) -> Reply:
    """Disconnects the integration's credential; the credential is kept."""
    return Reply(_json(call, call.engine.integrations.disconnect(call.path["integrationId"])))


@ROUTES.route(
    "GET",
    "/api/integrations/{integrationId}/panel",
    scope=READ,
    summary="The integration's panels: schemas, uiSchemas and current values",
    responses=[ok("IntegrationPanel", "Everything needed to render the saved integration")],
    errors=[404],
)
def get_integration_panel(call: Call) -> Reply:
    """The three panels (JSON Schema + react-jsonschema-form uiSchema) with the integration's
    values as ``formData``. Pickers list through the integration's own credential."""
    integration_id = call.path["integrationId"]
    integration = call.engine.integrations.get(integration_id)
    entities = f"/api/integrations/{integration_id}/external/{{table}}"
    shown = _json(call, integration)
    return Reply(
        {
            "integration": shown,
            "forms": call.engine.forms(
                integration.destination, entity_endpoint=entities, filter_endpoint=FILTER_CHECK
            ),
            "formData": {
                part: shown[part] for part in ("config", "entityConfig", "destinationConfig")
            },
        }
    )


@ROUTES.route(
    "GET",
    "/api/integrations/{integrationId}/external/{table}",
    scope=READ,
    summary="List a destination table through the integration's credential",
    params=[SEARCH, CURSOR],
    responses=[ok("ExternalEntityPage", "One page of records (id, name)")],
    errors=[404, 409, 422, 502],
)
def list_integration_entities(call: Call) -> Reply:
    """One page of customers, items, accounts... (kept for a minute), for pickers."""
    page = call.engine.external.page(
        call.path["table"],
        integration_id=call.path["integrationId"],
        search=call.query.get("search"),
        cursor=call.query.get("cursor"),
    )
    return Reply(serializers.external_page(page))


@ROUTES.route(
    "GET",
    "/api/integrations/{integrationId}/external/{table}/names",
    scope=READ,
    summary="The names of external ids (e.g. of mapped records)",
    params=[
        Param(
            "ids",
            {"type": "string", "minLength": 1},
            "An id to name (repeat it).",
            required=True,
            many=True,
        ),
    ],
    responses=[ok("ExternalNames", "Each id's name, or null when the destination has none")],
    errors=[404, 409, 422, 502],
)
def name_integration_entities(call: Call) -> Reply:
    """Names of records already mapped, to show "Acme Ltd" rather than "58" in lists."""
    names = call.engine.external.names(
        call.path["table"], call.query["ids"], integration_id=call.path["integrationId"]
    )
    return Reply({"names": names})


@ROUTES.route(
    "POST",
    "/api/integrations/{integrationId}/preview",
    scope=READ,
    summary="The exact request the integration would send for a bill",
    body=REQUESTS["BillSubmission"],
    body_example={
        "bill": {"id": "bill-1", "accountId": "acc-1", "currency": "GBP", "lineItems": []},
        "account": {"id": "acc-1", "name": "Acme Ltd"},
    },
    responses=[ok("Preview", "The destination's request; nothing is sent or stored")],
    errors=[400, 404, 409, 422, 502],
)
def preview_bill(call: Call) -> Reply:
    """Builds the delivery exactly as the worker would and asks the plugin for its request."""
    payload = call.engine.preview(
        call.body["bill"], call.body["account"], call.path["integrationId"], base_path=""
    )
    return Reply(payload)
