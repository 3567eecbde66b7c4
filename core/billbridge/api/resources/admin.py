"""API keys and webhook endpoints (with their delivery log)."""

from __future__ import annotations

from billbridge.api import serializers
from billbridge.api.endpoints import ADMIN, READ, Call, Endpoints, Param, Reply, ok
from billbridge.api.pagination import PAGE_PARAMS, keyset_page, offset_page, page_body
from billbridge.api.schemas import REQUESTS

__all__ = ["ROUTES"]

ROUTES = Endpoints("admin")


@ROUTES.route(
    "GET",
    "/api/keys",
    scope=ADMIN,
    summary="List API keys",
    params=list(PAGE_PARAMS),
    responses=[ok("ApiKeyPage", "Keys (revoked ones too); never the key itself")],
)
def list_api_keys(call: Call) -> Reply:
    """Every key with its name, scope and first characters."""
    found = call.engine.api_keys.list()
    items, cursor = offset_page(call, lambda offset, limit: found[offset : offset + limit])
    return Reply(page_body([serializers.api_key(k) for k in items], len(found), cursor))


@ROUTES.route(
    "POST",
    "/api/keys",
    scope=ADMIN,
    summary="Create an API key",
    body=REQUESTS["ApiKeyCreate"],
    body_example={"name": "console", "scope": "read"},
    responses=[ok("ApiKeyCreated", "The key; its text is shown this once", status=201)],
    errors=[422],
)
def create_api_key(call: Call) -> Reply:
    """Makes a key (``read`` by default). Only its hash is stored: keep the text now."""
    key, text = call.engine.api_keys.create(call.body["name"], call.body.get("scope", "read"))
    return Reply({"apiKey": serializers.api_key(key), "key": text}, 201)


@ROUTES.route(
    "DELETE",
    "/api/keys/{keyId}",
    scope=ADMIN,
    summary="Revoke an API key",
    responses=[ok("ApiKey", "The key, revoked: it opens nothing from now on")],
    errors=[404],
)
def revoke_api_key(call: Call) -> Reply:
    """Revokes a key at once (the next request with it is 401)."""
    return Reply(serializers.api_key(call.engine.api_keys.revoke(call.path["keyId"])))


@ROUTES.route(
    "GET",
    "/api/webhooks",
    scope=READ,
    summary="List webhook endpoints",
    params=list(PAGE_PARAMS),
    responses=[ok("WebhookPage", "Endpoints, oldest first")],
)
def list_webhooks(call: Call) -> Reply:
    """Every endpoint with the types it receives."""
    found = call.engine.webhooks.list()
    items, cursor = offset_page(call, lambda offset, limit: found[offset : offset + limit])
    return Reply(page_body([serializers.webhook(w) for w in items], len(found), cursor))


@ROUTES.route(
    "POST",
    "/api/webhooks",
    scope=ADMIN,
    summary="Add a webhook endpoint",
    body=REQUESTS["WebhookCreate"],
    body_example={
        "url": "https://ops.example.com/hooks/billbridge",
        "eventTypes": ["integration.disabled.error", "run.error"],
    },
    responses=[
        ok("WebhookCreated", "The endpoint and its signing secret (shown once)", status=201)
    ],
    errors=[422],
)
def create_webhook(call: Call) -> Reply:
    """From now on, every feed item of the given types (all when none) is POSTed to the URL,
    signed with the secret returned here (HMAC-SHA256 of ``timestamp.body``)."""
    endpoint, secret = call.engine.webhooks.create(
        call.body["url"],
        event_types=call.body.get("eventTypes", ()),
        description=call.body.get("description", ""),
    )
    return Reply({"webhook": serializers.webhook(endpoint), "secret": secret}, 201)


@ROUTES.route(
    "GET",
    "/api/webhooks/{webhookId}",
    scope=READ,
    summary="One webhook endpoint",
    responses=[ok("Webhook", "The endpoint")],
    errors=[404],
)
def get_webhook(call: Call) -> Reply:
    """One endpoint."""
    return Reply(serializers.webhook(call.engine.webhooks.get(call.path["webhookId"])))


@ROUTES.route(
    "PATCH",
    "/api/webhooks/{webhookId}",
    scope=ADMIN,
    summary="Change a webhook endpoint",
    body=REQUESTS["WebhookUpdate"],
    body_example={"enabled": False},
    responses=[ok("Webhook", "The endpoint (its secret is unchanged)")],
    errors=[404, 422],
)
def update_webhook(call: Call) -> Reply:
    """Changes the URL, types, description or enabled flag."""
    b = call.body
    endpoint = call.engine.webhooks.update(
        call.path["webhookId"],
        url=b.get("url"),
        event_types=b.get("eventTypes"),
        description=b.get("description"),
        enabled=b.get("enabled"),
    )
    return Reply(serializers.webhook(endpoint))


@ROUTES.route(
    "DELETE",
    "/api/webhooks/{webhookId}",
    scope=ADMIN,
    summary="Delete a webhook endpoint",
    responses=[ok(None, "Deleted, with its delivery log", status=204)],
    errors=[404],
)
def delete_webhook(call: Call) -> Reply:
    """Deletes the endpoint and its delivery log."""
    call.engine.webhooks.delete(call.path["webhookId"])
    return Reply(None, 204)


@ROUTES.route(
    "GET",
    "/api/webhooks/{webhookId}/deliveries",
    scope=READ,
    summary="A webhook endpoint's delivery log",
    params=[
        Param(
            "status",
            {"type": "string", "enum": ["PENDING", "DELIVERED", "FAILED"]},
            "Only deliveries in this state.",
        ),
        *PAGE_PARAMS,
    ],
    responses=[ok("WebhookDeliveryPage", "Deliveries, newest first: what was sent, how it went")],
    errors=[404],
)
def list_webhook_deliveries(call: Call) -> Reply:
    """Each notification with its attempts, last HTTP status and error, and its payload."""
    webhooks, endpoint_id = call.engine.webhooks, call.path["webhookId"]
    status = call.query.get("status")
    items, cursor = keyset_page(
        call,
        lambda before, limit: webhooks.deliveries(
            endpoint_id, status=status, limit=limit, before=before
        ),
        lambda delivery: (delivery.created_at, delivery.id),
    )
    total = webhooks.count_deliveries(endpoint_id, status=status)
    return Reply(page_body([serializers.webhook_delivery(d) for d in items], total, cursor))


@ROUTES.route(
    "POST",
    "/api/webhooks/deliveries/{deliveryId}/redeliver",
    scope=ADMIN,
    summary="Send a webhook delivery again",
    responses=[ok("WebhookDelivery", "The delivery, pending again")],
    errors=[404],
)
def redeliver_webhook(call: Call) -> Reply:
    """Queues a delivery again (one that failed, or one the receiver lost)."""
    return Reply(
        serializers.webhook_delivery(call.engine.webhooks.redeliver(call.path["deliveryId"]))
    )
