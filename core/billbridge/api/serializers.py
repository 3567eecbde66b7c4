"""Every object the HTTP API returns, as JSON: camelCase like the published schemas.

Rules kept here, in one place:

* unset fields are left out (never ``null`` where a schema says string), so a saved
  integration read back validates against its own panels unchanged;
* a secret never leaves: tokens are not part of any shape, and a sealed destination secret
  reads back as the sentinel ``"********"``, which an update sends back to keep it;
* times are ISO 8601 in UTC (``2026-01-31T12:00:00Z``); money and quantities are JSON numbers
  written exactly as stored (never through a float).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from billbridge.domain.access import ApiKey
from billbridge.domain.activity import WebhookDelivery, WebhookEndpoint
from billbridge.domain.models import (
    BillEntityConfig,
    Credential,
    DocumentStatus,
    Event,
    ExternalMapping,
    GlobalConfig,
    Integration,
    Run,
    RunAttempt,
    Skip,
    converter,
    loads,
    thaw,
)
from billbridge.domain.schemas import REDACTED, SEALED
from billbridge.plugin.contract import Destination, ExternalEntityPage
from billbridge.services.explain import Explanation
from billbridge.services.external import ConnectionTest
from billbridge.services.filters import FilterCheck
from billbridge.services.submission import SubmitResult

__all__ = [
    "api_key",
    "attempt",
    "connection_test",
    "credential",
    "destination",
    "event",
    "explanation",
    "external_page",
    "filter_check",
    "integration",
    "invoice_status",
    "mapping",
    "masked",
    "present",
    "run",
    "skip",
    "submit_result",
    "webhook",
    "webhook_delivery",
]


def present(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` without the keys whose value is ``None``."""
    return {k: v for k, v in values.items() if v is not None}


def _config(config: GlobalConfig | BillEntityConfig) -> dict[str, Any]:
    return present(converter.unstructure(config))


def masked(config: Mapping[str, Any]) -> dict[str, Any]:
    """A destination configuration with every sealed secret shown as the sentinel."""
    shown: dict[str, Any] = thaw(config)
    for name, value in shown.items():
        if isinstance(value, dict) and set(value) == {SEALED}:
            shown[name] = REDACTED
    return shown


def integration(item: Integration, installed: Iterable[str]) -> dict[str, Any]:
    """An integration with its three configuration parts (secrets masked)."""
    return present(
        {
            "id": item.id,
            "name": item.name,
            "destination": item.destination,
            "pluginInstalled": item.destination in set(installed),
            "entityType": item.entity_type,
            "enabled": item.enabled,
            "connected": item.connected,
            "credentialId": item.credential_id,
            "version": item.version,
            "consecutiveErrors": item.consecutive_errors,
            "config": _config(item.config),
            "entityConfig": _config(item.entity_config),
            "destinationConfig": masked(item.destination_config),
            "createdAt": item.created_at,
            "updatedAt": item.updated_at,
        }
    )


def credential(item: Credential) -> dict[str, Any]:
    """A credential as ``schemas/credential.schema.json`` describes it: never a token."""
    return present(
        {
            "id": item.id,
            "name": item.name,
            "displayName": item.display_name,
            "destination": item.destination,
            "entityType": item.entity_type,
            "status": item.status.value,
            "createdAt": item.created_at,
            "expiresAt": item.expires_at,
            "tenantId": item.tenant_id,
            "tenantName": item.tenant_name,
            "scopes": list(item.scopes),
            "accessTokenExpiresAt": item.access_token_expires_at,
            "refreshTokenExpiresAt": item.refresh_token_expires_at,
        }
    )


def tenant_choices(item: Credential) -> list[dict[str, Any]]:
    """The tenants a consent covered, while the user still has to pick one."""
    offered = item.data.get("tenant_choices") or []
    return [present({"tenantId": c.get("tenantId"), "name": c.get("name")}) for c in offered]


def connection_test(result: ConnectionTest) -> dict[str, Any]:
    """How a connection test went, with the credential as it is now."""
    return {
        "ok": result.ok,
        "message": result.message,
        "checkedAt": result.checked_at,
        "credential": credential(result.credential),
    }


def mapping(item: ExternalMapping) -> dict[str, Any]:
    """An external mapping as ``schemas/external-mapping.schema.json`` describes it."""
    return present(
        {
            "id": item.id,
            "m3terEntity": item.m3ter_entity,
            "m3terId": item.m3ter_id,
            "externalSystem": item.external_system,
            "externalTable": item.external_table,
            "externalId": item.external_id,
            "integrationConfigId": item.integration_id,
            "createdAt": item.created_at,
        }
    )


def destination(item: Destination, hooks: Iterable[str]) -> dict[str, Any]:
    """A destination: key, title, tables, limits, auth, and which optional hooks it has."""
    return {**item.describe(), "hooks": sorted(hooks)}


def external_page(page: ExternalEntityPage) -> dict[str, Any]:
    """One page of a destination table."""
    return present(
        {
            "items": [
                present({"id": e.id, "name": e.name, "extra": thaw(e.extra) or None})
                for e in page.items
            ],
            "nextCursor": page.next_cursor,
        }
    )


def invoice_status(item: DocumentStatus) -> dict[str, Any]:
    """What a delivered invoice was last read back as (status read-back)."""
    return present(
        {
            "state": item.state.value if item.state is not None else None,
            "total": item.total,
            "amountDue": item.amount_due,
            "amountPaid": item.amount_paid,
            "amountCredited": item.amount_credited,
            "currency": item.currency,
            "paidOn": item.paid_on.isoformat() if item.paid_on is not None else None,
            "payments": [thaw(p) for p in item.payments] or None,
            "checkedAt": item.checked_at,
            "nextCheckAt": item.next_check_at,
            "error": item.error,
        }
    )


def run(item: Run, invoice: DocumentStatus | None = None) -> dict[str, Any]:
    """A delivery run, with what its invoice was last read back as (``invoice``) if known."""
    return present(
        {
            "id": item.id,
            "integrationId": item.integration_id,
            "billId": item.bill_id,
            "billVersion": item.bill_version,
            "accountId": item.account_id,
            "status": item.status.value,
            "final": item.status.is_final,
            "attempts": item.attempts,
            "externalId": item.external_id,
            "externalUrl": item.external_url,
            "error": item.error,
            "replayedFrom": item.replayed_from,
            "nextAttemptAt": item.next_attempt_at,
            "createdAt": item.created_at,
            "updatedAt": item.updated_at,
            "invoice": invoice_status(invoice) if invoice is not None else None,
        }
    )


def attempt(item: RunAttempt) -> dict[str, Any]:
    """One try at delivering a run."""
    return present(
        {
            "runId": item.run_id,
            "number": item.number,
            "status": item.status.value,
            "startedAt": item.started_at,
            "finishedAt": item.finished_at,
            "worker": item.worker,
            "error": item.error,
        }
    )


def skip(item: Skip) -> dict[str, Any]:
    """A routing decision not to send, with its reason."""
    return present(
        {
            "id": item.id,
            "integrationId": item.integration_id,
            "billId": item.bill_id,
            "billVersion": item.bill_version,
            "accountId": item.account_id,
            "reason": item.reason,
            "createdAt": item.created_at,
        }
    )


def event(item: Event) -> dict[str, Any]:
    """Something a person must act on."""
    return present(
        {
            "id": item.id,
            "type": item.type.value,
            "message": item.message,
            "integrationId": item.integration_id,
            "runId": item.run_id,
            "details": thaw(item.details),
            "createdAt": item.created_at,
            "actioned": item.actioned,
            "actionedAt": item.actioned_at,
            "actionedBy": item.actioned_by,
        }
    )


def submit_result(result: SubmitResult) -> dict[str, Any]:
    """What submitting bills decided."""
    return {
        "bills": result.bills,
        "runs": [run(r) for r in result.runs],
        "skips": [skip(s) for s in result.skips],
    }


def explanation(result: Explanation) -> dict[str, Any]:
    """Which integrations would take a bill, and why the others would not."""
    return {
        "billId": result.bill.id,
        "billVersion": result.bill.version,
        "accountId": result.account.id,
        "wouldSend": len(result.taken_by),
        "integrations": [
            present(
                {
                    "integrationId": d.integration.id,
                    "name": d.integration.name,
                    "destination": d.integration.destination,
                    "enabled": d.integration.enabled,
                    "decision": "send" if d.take else "skip",
                    "reason": d.reason,
                }
            )
            for d in result.decisions
        ],
    }


def filter_check(result: FilterCheck) -> dict[str, Any]:
    """Whether a filter expression is valid (and matches the account given)."""
    return present(
        {
            "valid": result.valid,
            "errors": [e.to_dict() for e in result.errors],
            "matches": result.matches,
        }
    )


def api_key(item: ApiKey) -> dict[str, Any]:
    """An API key as listed: never the key itself, only its first characters."""
    return present(
        {
            "id": item.id,
            "name": item.name,
            "prefix": item.prefix,
            "scope": item.scope.value,
            "active": item.active,
            "createdAt": item.created_at,
            "revokedAt": item.revoked_at,
        }
    )


def webhook(item: WebhookEndpoint) -> dict[str, Any]:
    """A webhook endpoint (its secret is shown once, when it is made)."""
    return present(
        {
            "id": item.id,
            "url": item.url,
            "description": item.description or None,
            "eventTypes": list(item.event_types),
            "enabled": item.enabled,
            "createdAt": item.created_at,
            "updatedAt": item.updated_at,
        }
    )


def webhook_delivery(item: WebhookDelivery) -> dict[str, Any]:
    """One notification to one endpoint, with how it went and what was sent."""
    return present(
        {
            "id": item.id,
            "webhookId": item.endpoint_id,
            "type": item.event_type,
            "status": item.status.value,
            "attempts": item.attempts,
            "createdAt": item.created_at,
            "nextAttemptAt": item.next_attempt_at,
            "responseStatus": item.response_status,
            "error": item.error,
            "deliveredAt": item.delivered_at,
            "payload": loads(item.payload),
        }
    )
