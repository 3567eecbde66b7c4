"""Destinations with their panels (schema + uiSchema), published schemas, the filter check."""

from __future__ import annotations

from billbridge.api import serializers
from billbridge.api.endpoints import READ, Call, Endpoints, Reply, ok
from billbridge.api.resources.common import CREDENTIAL_ENTITIES, FILTER_CHECK
from billbridge.api.schemas import REQUESTS
from billbridge.domain.schemas import CUSTOM_KEYWORDS, core_schema
from billbridge.errors import NotFound

__all__ = ["ROUTES"]

ROUTES = Endpoints("destinations")

_OPTIONAL_HOOKS = ("list_external_entities", "validate_config", "preview_bill", "send_bills")


def _hooks(call: Call, key: str) -> list[str]:
    plugins = call.engine.plugins
    return [hook for hook in _OPTIONAL_HOOKS if plugins.has_hook(key, hook)]


@ROUTES.route(
    "GET",
    "/api/destinations",
    scope=READ,
    summary="List the installed destinations",
    responses=[ok("DestinationList", "Every installed destination, by key")],
)
def list_destinations(call: Call) -> Reply:
    """Every destination a plugin serves: tables it lists, limits, auth, optional hooks."""
    return Reply(
        {
            "items": [
                serializers.destination(d, _hooks(call, d.key)) for d in call.engine.destinations()
            ]
        }
    )


@ROUTES.route(
    "GET",
    "/api/destinations/{key}",
    scope=READ,
    summary="One destination with its three panels (schema and uiSchema)",
    responses=[ok("DestinationDetail", "The destination and the forms of a new integration")],
    errors=[404],
)
def get_destination(call: Call) -> Reply:
    """The destination, and the panels of a new integration to it: ``config`` (global),
    ``entityConfig`` (Bill) and ``destinationConfig``, each a JSON Schema with its
    react-jsonschema-form uiSchema. Pickers (``x-external-table``) list through the credential
    being connected: ``/api/credentials/{credentialId}/external/{table}``."""
    key = call.path["key"]
    destination = call.engine.destination(key)
    forms = call.engine.forms(
        key, entity_endpoint=CREDENTIAL_ENTITIES, filter_endpoint=FILTER_CHECK
    )
    return Reply({**serializers.destination(destination, _hooks(call, key)), "forms": forms})


@ROUTES.route(
    "GET",
    "/api/destinations/{key}/schema",
    scope=READ,
    summary="A destination's panel schema as published",
    responses=[ok({"type": "object"}, "The JSON Schema (draft-07), with its own $id")],
    errors=[404],
)
def get_destination_schema(call: Call) -> Reply:
    """The destination's panel: a unique ``$id`` (``quickbooks_sandbox`` included), and secret
    options that accept the sentinel ``"********"``."""
    return Reply(call.engine.panel_schema(call.path["key"]))


@ROUTES.route(
    "GET",
    "/api/schemas",
    scope=READ,
    summary="Index of the published schemas and custom keywords",
    responses=[ok("SchemaIndex", "Schema names with their $id, and the custom keywords")],
)
def list_schemas(call: Call) -> Reply:
    """Every published schema by name (``destinations/<key>`` for panels) with its ``$id``, and
    billbridge's custom annotation keywords, to declare in Ajv strict mode
    (``ajv.addKeyword({keyword, schemaType})``)."""
    schemas = call.engine.published_schemas()
    return Reply(
        {
            "keywords": CUSTOM_KEYWORDS,
            "schemas": {name: str(schema.get("$id", "")) for name, schema in schemas.items()},
        }
    )


@ROUTES.route(
    "GET",
    "/api/schemas/{name}",
    scope=READ,
    summary="One of the core's published schemas",
    responses=[ok({"type": "object"}, "The JSON Schema (draft-07)")],
    errors=[404],
)
def get_schema(call: Call) -> Reply:
    """A core schema by name (``bill``, ``account``, ``global-config``, ...); destination panels
    are at ``/api/destinations/{key}/schema``."""
    try:
        return Reply(core_schema(call.path["name"]))
    except KeyError:
        raise NotFound(f"no schema named {call.path['name']!r}") from None


@ROUTES.route(
    "POST",
    FILTER_CHECK,
    scope=READ,
    summary="Check an account filter expression",
    body=REQUESTS["FilterCheckRequest"],
    body_example={
        "expression": 'customFields.country == "UK"',
        "account": {"id": "acc-1", "customFields": {"country": "UK"}},
    },
    responses=[
        ok(
            "FilterCheck",
            "Whether it parses (errors with line and column), and matches the account",
            {"valid": True, "errors": [], "matches": True},
        )
    ],
    errors=[422],
)
def check_filter(call: Call) -> Reply:
    """Parse an expression as saving an integration would; with an account, evaluate it."""
    result = call.engine.check_filter(call.body["expression"], call.body.get("account"))
    return Reply(serializers.filter_check(result))
