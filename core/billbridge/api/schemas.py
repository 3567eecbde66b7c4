"""JSON Schemas of the HTTP API: request bodies (validated on every request) and responses
(in the OpenAPI document, and checked against live answers by the tests).

Request schemas are self-contained (no ``$ref``) so one validator checks them; response
schemas refer to each other as OpenAPI components (``#/components/schemas/<Name>``). Both use
only keywords draft-07 and JSON Schema 2020-12 (OpenAPI 3.1) read alike.
"""

from __future__ import annotations

from typing import Any

from billbridge.domain.activity import FEED_TYPES
from billbridge.domain.models import CredentialStatus, EventType, InvoiceState, RunStatus

__all__ = ["COMPONENTS", "REQUESTS", "page_of", "ref"]

Schema = dict[str, Any]

TIME: Schema = {"type": "string", "format": "date-time"}
TEXT: Schema = {"type": "string"}
ID: Schema = {"type": "string", "minLength": 1}
COUNT: Schema = {"type": "integer", "minimum": 0}
FLAG: Schema = {"type": "boolean"}
ANY_OBJECT: Schema = {"type": "object"}


def ref(name: str) -> Schema:
    """A reference to component ``name``."""
    return {"$ref": f"#/components/schemas/{name}"}


def obj(
    properties: dict[str, Schema], required: tuple[str, ...] = (), *, description: str = "",
    extra: bool = False,
) -> Schema:  # fmt: skip
    """An object schema; unknown properties refused unless ``extra``."""
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if not extra:
        schema["additionalProperties"] = False
    if description:
        schema["description"] = description
    return schema


def items(schema: Schema) -> Schema:
    """An array of ``schema``."""
    return {"type": "array", "items": schema}


def choices(values: list[str], description: str = "") -> Schema:
    """A string that is one of ``values``."""
    schema: Schema = {"type": "string", "enum": values}
    if description:
        schema["description"] = description
    return schema


def page_of(name: str) -> Schema:
    """A page of ``name`` items."""
    return obj(
        {"items": items(ref(name)), "total": COUNT, "nextCursor": TEXT},
        ("items",),
        description=f"One page of {name} items; `nextCursor` is present when more follow.",
    )


# --- requests -------------------------------------------------------------------------------------

_ID_OR_NUMBER: Schema = {"type": ["string", "number"]}
_MAPPING_CREATE = obj(
    {
        "m3terEntity": {**ID, "description": "The m3ter entity type (Account, Product...)."},
        "m3terId": {**_ID_OR_NUMBER, "description": "The m3ter id."},
        "externalSystem": {**ID, "description": "The destination key (may be left out)."},
        "externalTable": {**ID, "description": "The destination table (Customer, Item...)."},
        "externalId": {**_ID_OR_NUMBER, "description": "The record's id in the destination."},
        "integrationConfigId": {
            **ID,
            "description": "Link the mapping to one integration (it then wins there).",
        },
    },
    ("m3terEntity", "m3terId", "externalTable", "externalId"),
)
_BILL_PAIR = obj(
    {
        "bill": {**ANY_OBJECT, "description": "m3ter's Bill JSON (schemas/bill.schema.json)."},
        "account": {
            **ANY_OBJECT,
            "description": "The bill's account (schemas/account.schema.json).",
        },
    },
    ("bill", "account"),
)
_CONFIG_PARTS: dict[str, Schema] = {
    "config": {
        **ANY_OBJECT,
        "description": "The global panel's values (schemas/global-config.schema.json).",
    },
    "entityConfig": {
        **ANY_OBJECT,
        "description": "The Bill entity panel's values (schemas/bill-entity-config.schema.json).",
    },
    "destinationConfig": {
        **ANY_OBJECT,
        "description": "The destination panel's values (GET /api/destinations/{key}); a secret "
        'sent as "********" keeps the stored one.',
    },
}
_NAME: Schema = {"type": "string", "minLength": 1, "maxLength": 200}
_EVENT_TYPES: Schema = {**items(choices(list(FEED_TYPES))), "uniqueItems": True}

REQUESTS: dict[str, Schema] = {
    "CredentialCreate": obj(
        {
            "name": _NAME,
            "destination": ID,
            "redirectUri": {
                **TEXT,
                "description": "Where the provider sends the user back; default: this "
                "service's /api/oauth/callback.",
            },
        },
        ("name", "destination"),
    ),
    "TenantChoice": obj({"tenantId": ID}, ("tenantId",)),
    "IntegrationCreate": obj(
        {
            "name": _NAME,
            "destination": ID,
            **_CONFIG_PARTS,
            "enabled": FLAG,
            "credentialId": {**ID, "description": "Connect this COMPLETE credential at once."},
        },
        ("name", "destination"),
    ),
    "IntegrationUpdate": obj(
        {
            "version": {
                "type": "integer",
                "minimum": 1,
                "description": "The version you read (optimistic locking): a newer one "
                "answers 409 stale_version.",
            },
            "name": _NAME,
            **_CONFIG_PARTS,
        },
        ("version",),
        description="Parts left out stay as they are.",
    ),
    "IntegrationValidate": obj(
        {"destination": ID, "name": _NAME, **_CONFIG_PARTS, "entityType": ID}, ("destination",)
    ),
    "Connect": obj({"credentialId": ID}, ("credentialId",)),
    "MappingCreate": _MAPPING_CREATE,
    "MappingUpdate": obj(
        {
            "externalSystem": ID,
            "externalTable": ID,
            "externalId": _ID_OR_NUMBER,
        },
        description="The external side to point at; parts left out stay.",
    ),
    "MappingImport": {**items(_MAPPING_CREATE), "minItems": 1, "maxItems": 10000},
    "BillSubmission": _BILL_PAIR,
    "BillBatch": obj({"items": {**items(_BILL_PAIR), "minItems": 1, "maxItems": 500}}, ("items",)),
    "EventAction": obj(
        {
            "by": {
                **TEXT,
                "maxLength": 200,
                "description": "Who dealt with it (default: the key's name).",
            }
        }
    ),
    "FilterCheckRequest": obj(
        {
            "expression": {**TEXT, "maxLength": 4000},
            "account": {**ANY_OBJECT, "description": "An account to test the expression on."},
        },
        ("expression",),
    ),
    "ApiKeyCreate": obj({"name": _NAME, "scope": choices(["read", "admin"])}, ("name",)),
    "WebhookCreate": obj(
        {
            "url": {**TEXT, "maxLength": 2000, "description": "https (http only on loopback)."},
            "eventTypes": {**_EVENT_TYPES, "description": "Types to send; empty or absent: all."},
            "description": {**TEXT, "maxLength": 500},
        },
        ("url",),
    ),
    "WebhookUpdate": obj(
        {
            "url": {**TEXT, "maxLength": 2000},
            "eventTypes": _EVENT_TYPES,
            "description": {**TEXT, "maxLength": 500},
            "enabled": FLAG,
        }
    ),
}

# --- responses ------------------------------------------------------------------------------------

_DESTINATION_PROPERTIES: dict[str, Schema] = {
    "key": ID,
    "title": TEXT,
    "description": TEXT,
    "entityTypes": items(TEXT),
    "externalTables": items(TEXT),
    "accountTable": TEXT,
    "itemTable": TEXT,
    "limits": {"type": "object", "additionalProperties": {"type": ["integer", "null"]}},
    "auth": choices(["oauth2", "none"]),
    "scopes": items(TEXT),
    "hooks": {**items(TEXT), "description": "Hooks the destination's plugin implements."},
}
_FORM = obj(
    {
        "schema": {**ANY_OBJECT, "description": "The panel's JSON Schema (draft-07)."},
        "uiSchema": {**ANY_OBJECT, "description": "Its react-jsonschema-form uiSchema."},
    },
    ("schema", "uiSchema"),
)
_RUN_STATUS = choices([s.value for s in RunStatus])
_CREDENTIAL = obj(
    {
        "id": ID,
        "name": TEXT,
        "displayName": {
            **TEXT,
            "description": 'The name with " (Incomplete)" or " (Reconnect needed)".',
        },
        "destination": TEXT,
        "entityType": TEXT,
        "status": choices([s.value for s in CredentialStatus]),
        "createdAt": TIME,
        "expiresAt": TIME,
        "tenantId": TEXT,
        "tenantName": TEXT,
        "scopes": items(TEXT),
        "accessTokenExpiresAt": TIME,
        "refreshTokenExpiresAt": TIME,
    },
    ("id", "name", "displayName", "destination", "status", "createdAt"),
    description="A connection to one destination tenant; tokens are never part of it.",
)
_INTEGRATION = obj(
    {
        "id": ID,
        "name": TEXT,
        "destination": TEXT,
        "pluginInstalled": FLAG,
        "entityType": TEXT,
        "enabled": FLAG,
        "connected": FLAG,
        "credentialId": TEXT,
        "version": {"type": "integer", "minimum": 1},
        "consecutiveErrors": COUNT,
        "config": ANY_OBJECT,
        "entityConfig": ANY_OBJECT,
        "destinationConfig": {
            **ANY_OBJECT,
            "description": 'Secrets read back as "********"; send that back to keep them.',
        },
        "createdAt": TIME,
        "updatedAt": TIME,
    },
    ("id", "name", "destination", "enabled", "connected", "version", "config", "entityConfig",
     "destinationConfig", "createdAt", "updatedAt"),
)  # fmt: skip
_MAPPING = obj(
    {
        "id": ID,
        "m3terEntity": TEXT,
        "m3terId": TEXT,
        "externalSystem": TEXT,
        "externalTable": TEXT,
        "externalId": TEXT,
        "integrationConfigId": TEXT,
        "createdAt": TIME,
    },
    ("id", "m3terEntity", "m3terId", "externalSystem", "externalTable", "externalId", "createdAt"),
)
_MONEY: Schema = {"type": "number", "description": "Exact, in the invoice's currency."}
_PAYMENT = obj(
    {
        "amount": _MONEY,
        "date": {"type": "string", "format": "date"},
        "kind": choices(["payment", "credit"], "A payment, or a credit note / memo applied."),
        "externalId": TEXT,
        "method": {**TEXT, "description": "The destination's id of how it was paid."},
        "methodName": TEXT,
        "reportedAs": {**TEXT, "description": "The panel's payment method mapping's label."},
        "reference": TEXT,
    },
    ("amount", "kind"),
)
_INVOICE_STATUS = obj(
    {
        "state": choices(
            [s.value for s in InvoiceState], "Absent until the invoice was first read back."
        ),
        "total": _MONEY,
        "amountDue": _MONEY,
        "amountPaid": _MONEY,
        "amountCredited": _MONEY,
        "currency": TEXT,
        "paidOn": {"type": "string", "format": "date"},
        "payments": items(ref("InvoicePayment")),
        "checkedAt": TIME,
        "nextCheckAt": {**TIME, "description": "Absent once settled (paid, voided, deleted)."},
        "error": {**TEXT, "description": "Why the last read-back failed."},
    },
    description="What the delivered invoice was last read back as from the destination.",
)
_RUN = obj(
    {
        "id": ID,
        "integrationId": ID,
        "billId": TEXT,
        "billVersion": {"type": "integer"},
        "accountId": TEXT,
        "status": _RUN_STATUS,
        "final": {**FLAG, "description": "Nothing more happens to the run without a replay."},
        "attempts": COUNT,
        "externalId": TEXT,
        "externalUrl": TEXT,
        "error": TEXT,
        "replayedFrom": TEXT,
        "nextAttemptAt": TIME,
        "createdAt": TIME,
        "updatedAt": TIME,
        "invoice": ref("InvoiceStatus"),
    },
    ("id", "integrationId", "billId", "billVersion", "status", "final", "attempts", "createdAt",
     "updatedAt"),
)  # fmt: skip
_ATTEMPT = obj(
    {
        "runId": ID,
        "number": {"type": "integer", "minimum": 1},
        "status": _RUN_STATUS,
        "startedAt": TIME,
        "finishedAt": TIME,
        "worker": TEXT,
        "error": TEXT,
    },
    ("runId", "number", "status", "startedAt"),
)
_SKIP = obj(
    {
        "id": ID,
        "integrationId": ID,
        "billId": TEXT,
        "billVersion": {"type": "integer"},
        "accountId": TEXT,
        "reason": TEXT,
        "createdAt": TIME,
    },
    ("id", "integrationId", "billId", "billVersion", "reason", "createdAt"),
)
_EVENT = obj(
    {
        "id": ID,
        "type": choices([t.value for t in EventType]),
        "message": TEXT,
        "integrationId": TEXT,
        "runId": TEXT,
        "details": ANY_OBJECT,
        "createdAt": TIME,
        "actioned": FLAG,
        "actionedAt": TIME,
        "actionedBy": TEXT,
    },
    ("id", "type", "message", "details", "createdAt", "actioned"),
)
_FIELD_ERROR = obj({"path": TEXT, "message": TEXT}, ("path", "message"))
_WEBHOOK = obj(
    {
        "id": ID,
        "url": TEXT,
        "description": TEXT,
        "eventTypes": items(TEXT),
        "enabled": FLAG,
        "createdAt": TIME,
        "updatedAt": TIME,
    },
    ("id", "url", "eventTypes", "enabled", "createdAt", "updatedAt"),
)
_API_KEY = obj(
    {
        "id": ID,
        "name": TEXT,
        "prefix": {**TEXT, "description": "The key's first characters (the key is shown once)."},
        "scope": choices(["read", "admin"]),
        "active": FLAG,
        "createdAt": TIME,
        "revokedAt": TIME,
    },
    ("id", "name", "prefix", "scope", "active", "createdAt"),
)

_PAGED = (
    "Credential", "Integration", "Mapping", "Run", "Skip", "Event", "ApiKey", "Webhook",
    "WebhookDelivery",
)  # fmt: skip

COMPONENTS: dict[str, Schema] = {
    "Error": obj(
        {
            "code": {**TEXT, "description": "Stable, for programs (validation_failed, ...)."},
            "message": {**TEXT, "description": "One sentence for people."},
            "errors": items(ref("FieldError")),
        },
        ("code", "message", "errors"),
        description="Every error answer has this shape; some codes add fields (`choices`).",
        extra=True,
    ),
    "FieldError": _FIELD_ERROR,
    "Destination": obj(_DESTINATION_PROPERTIES, ("key", "title", "externalTables", "auth")),
    "DestinationDetail": obj(
        {**_DESTINATION_PROPERTIES, "forms": ref("Forms")},
        ("key", "title", "externalTables", "auth", "forms"),
    ),
    "DestinationList": obj({"items": items(ref("Destination"))}, ("items",)),
    "Form": _FORM,
    "Forms": obj(
        {"config": ref("Form"), "entityConfig": ref("Form"), "destinationConfig": ref("Form")},
        ("config", "entityConfig", "destinationConfig"),
        description="The three panels of an integration, ready for react-jsonschema-form.",
    ),
    "Credential": _CREDENTIAL,
    "CredentialCreated": obj(
        {"credential": ref("Credential"), "authorizationUrl": TEXT},
        ("credential", "authorizationUrl"),
    ),
    "AuthorizationUrl": obj({"authorizationUrl": TEXT}, ("authorizationUrl",)),
    "TenantChoices": obj(
        {"items": items(obj({"tenantId": TEXT, "name": TEXT}, ("tenantId",)))}, ("items",)
    ),
    "ConnectionTest": obj(
        {"ok": FLAG, "message": TEXT, "checkedAt": TIME, "credential": ref("Credential")},
        ("ok", "message", "checkedAt", "credential"),
    ),
    "Integration": _INTEGRATION,
    "IntegrationPanel": obj(
        {"integration": ref("Integration"), "forms": ref("Forms"), "formData": ANY_OBJECT},
        ("integration", "forms", "formData"),
        description="Everything a console needs to render an integration's panels filled in.",
    ),
    "Valid": obj({"valid": {"const": True}}, ("valid",)),
    "Mapping": _MAPPING,
    "MappingList": obj({"items": items(ref("Mapping"))}, ("items",)),
    "ExternalEntityPage": obj(
        {
            "items": items(obj({"id": TEXT, "name": TEXT, "extra": ANY_OBJECT}, ("id", "name"))),
            "nextCursor": TEXT,
        },
        ("items",),
    ),
    "ExternalNames": obj(
        {"names": {"type": "object", "additionalProperties": {"type": ["string", "null"]}}},
        ("names",),
        description="Each id's name in the destination; null when it lists no such record.",
    ),
    "SubmitResult": obj(
        {"bills": COUNT, "runs": items(ref("Run")), "skips": items(ref("Skip"))},
        ("bills", "runs", "skips"),
    ),
    "Explanation": obj(
        {
            "billId": TEXT,
            "billVersion": {"type": "integer"},
            "accountId": TEXT,
            "wouldSend": COUNT,
            "integrations": items(
                obj(
                    {
                        "integrationId": ID,
                        "name": TEXT,
                        "destination": TEXT,
                        "enabled": FLAG,
                        "decision": choices(["send", "skip"]),
                        "reason": TEXT,
                    },
                    ("integrationId", "name", "destination", "enabled", "decision"),
                )
            ),
        },
        ("billId", "billVersion", "accountId", "wouldSend", "integrations"),
    ),
    "Preview": {**ANY_OBJECT, "description": "The destination's request, exactly, never sent."},
    "Run": _RUN,
    "InvoiceStatus": _INVOICE_STATUS,
    "InvoicePayment": _PAYMENT,
    "RunAttemptList": obj({"items": items(ref("RunAttempt"))}, ("items",)),
    "RunAttempt": _ATTEMPT,
    "Skip": _SKIP,
    "Event": _EVENT,
    "FilterCheck": obj(
        {"valid": FLAG, "errors": items(ref("FieldError")), "matches": FLAG}, ("valid", "errors")
    ),
    "ApiKey": _API_KEY,
    "ApiKeyCreated": obj(
        {"apiKey": ref("ApiKey"), "key": {**TEXT, "description": "Shown this once."}},
        ("apiKey", "key"),
    ),
    "Webhook": _WEBHOOK,
    "WebhookCreated": obj(
        {"webhook": ref("Webhook"), "secret": {**TEXT, "description": "Shown this once."}},
        ("webhook", "secret"),
    ),
    "WebhookDelivery": obj(
        {
            "id": ID,
            "webhookId": ID,
            "type": TEXT,
            "status": choices(["PENDING", "DELIVERED", "FAILED"]),
            "attempts": COUNT,
            "createdAt": TIME,
            "nextAttemptAt": TIME,
            "responseStatus": {"type": "integer"},
            "error": TEXT,
            "deliveredAt": TIME,
            "payload": ANY_OBJECT,
        },
        ("id", "webhookId", "type", "status", "attempts", "createdAt", "payload"),
    ),
    "SchemaIndex": obj(
        {
            "keywords": {
                "type": "object",
                "description": "billbridge's annotation keywords, to declare in Ajv strict mode.",
            },
            "schemas": {"type": "object", "additionalProperties": TEXT},
        },
        ("keywords", "schemas"),
    ),
    "Health": obj({"status": {"const": "ok"}}, ("status",)),
    "Readiness": obj(
        {
            "ready": FLAG,
            "database": TEXT,
            "migration": {"type": ["string", "null"]},
            "expectedMigration": TEXT,
        },
        ("ready", "database", "expectedMigration"),
    ),
    **{
        f"{name}Page": page_of(name)
        for name in (
            "Credential",
            "Integration",
            "Mapping",
            "Run",
            "Skip",
            "Event",
            "ApiKey",
            "Webhook",
            "WebhookDelivery",
        )
    },
}
