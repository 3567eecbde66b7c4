"""External mappings: list with filters, create, import all-or-nothing, read, delete."""

from __future__ import annotations

from billbridge.api import serializers
from billbridge.api.endpoints import ADMIN, READ, Call, Endpoints, Param, Reply, ok
from billbridge.api.pagination import PAGE_PARAMS, offset_page, page_body
from billbridge.api.schemas import REQUESTS

__all__ = ["ROUTES"]

ROUTES = Endpoints("mappings")

_TEXT = {"type": "string"}
_EXAMPLE = {
    "m3terEntity": "Account",
    "m3terId": "28b1be8b-6a3c-4f5e-9a1d-3c2b1a0f9e8d",
    "externalTable": "Contact",
    "externalId": "5f1c0a2e-7b3d-4c8e-9f10-2a3b4c5d6e7f",
    "externalSystem": "xero",
}


@ROUTES.route(
    "GET",
    "/api/mappings",
    scope=READ,
    summary="List external mappings",
    params=[
        Param("m3terEntity", _TEXT, "Only this m3ter entity type (Account, Product...)."),
        Param("m3terId", _TEXT, "Only this m3ter id."),
        Param("externalSystem", _TEXT, "Only this destination."),
        Param("externalTable", _TEXT, "Only this destination table."),
        Param("externalId", _TEXT, "Only mappings pointing at this external id."),
        Param("integrationId", _TEXT, "Only mappings linked to this integration."),
        Param("linked", {"type": "boolean"}, "true: linked mappings only; false: global ones."),
        *PAGE_PARAMS,
    ],
    responses=[ok("MappingPage", "Mappings, oldest first")],
)
def list_mappings(call: Call) -> Reply:
    """Mappings matching every filter given, with the total."""
    q = call.query
    filters = {
        "entity": q.get("m3terEntity"),
        "entity_id": q.get("m3terId"),
        "external_system": q.get("externalSystem"),
        "external_table": q.get("externalTable"),
        "external_id": q.get("externalId"),
        "integration_id": q.get("integrationId"),
        "linked": q.get("linked"),
    }
    mappings = call.engine.mappings
    items, cursor = offset_page(
        call, lambda offset, limit: mappings.list(**filters, limit=limit, offset=offset)
    )
    total = mappings.count(**filters)
    return Reply(page_body([serializers.mapping(m) for m in items], total, cursor))


@ROUTES.route(
    "POST",
    "/api/mappings",
    scope=ADMIN,
    summary="Create an external mapping",
    body=REQUESTS["MappingCreate"],
    body_example=_EXAMPLE,
    responses=[ok("Mapping", "The mapping", status=201)],
    errors=[409, 422],
)
def create_mapping(call: Call) -> Reply:
    """Maps an m3ter entity to a destination record. ``externalSystem`` may be left out when
    ``integrationConfigId`` is given or one destination has the table. A duplicate is 409."""
    b = call.body
    created = call.engine.mappings.create(
        entity=b["m3terEntity"],
        entity_id=str(b["m3terId"]),
        external_table=b["externalTable"],
        external_id=str(b["externalId"]),
        external_system=b.get("externalSystem"),
        integration_id=b.get("integrationConfigId"),
    )
    return Reply(serializers.mapping(created), 201)


@ROUTES.route(
    "POST",
    "/api/mappings:import",
    scope=ADMIN,
    summary="Create many mappings, all or nothing",
    body=REQUESTS["MappingImport"],
    body_example=[_EXAMPLE],
    responses=[ok("MappingList", "Every mapping created", status=201)],
    errors=[409, 422],
)
def import_mappings(call: Call) -> Reply:
    """Creates every mapping or none: problems are reported by index (``/3/externalTable``),
    a duplicate (in the request or stored) is 409, and nothing is saved then."""
    created = call.engine.mappings.create_many(call.body)
    return Reply({"items": [serializers.mapping(m) for m in created]}, 201)


@ROUTES.route(
    "GET",
    "/api/mappings/{mappingId}",
    scope=READ,
    summary="One external mapping",
    responses=[ok("Mapping", "The mapping")],
    errors=[404],
)
def get_mapping(call: Call) -> Reply:
    """One mapping."""
    return Reply(serializers.mapping(call.engine.mappings.get(call.path["mappingId"])))


@ROUTES.route(
    "PUT",
    "/api/mappings/{mappingId}",
    scope=ADMIN,
    summary="Point a mapping at another external record",
    body=REQUESTS["MappingUpdate"],
    body_example={"externalId": "5f1c0a2e-7b3d-4c8e-9f10-2a3b4c5d6e70"},
    responses=[ok("Mapping", "The mapping, changed")],
    errors=[404, 409, 422],
)
def update_mapping(call: Call) -> Reply:
    """Changes the external side (id, table, system); the m3ter side and the link stay."""
    b = call.body
    changed = call.engine.mappings.update(
        call.path["mappingId"],
        external_id=str(b["externalId"]) if b.get("externalId") is not None else None,
        external_table=b.get("externalTable"),
        external_system=b.get("externalSystem"),
    )
    return Reply(serializers.mapping(changed))


@ROUTES.route(
    "DELETE",
    "/api/mappings/{mappingId}",
    scope=ADMIN,
    summary="Delete an external mapping",
    responses=[ok(None, "Deleted", status=204)],
    errors=[404],
)
def delete_mapping(call: Call) -> Reply:
    """Deletes one mapping."""
    call.engine.mappings.delete(call.path["mappingId"])
    return Reply(None, 204)
