"""What several resource modules share: path templates for the console's widgets, parameters."""

from __future__ import annotations

from typing import Any

from billbridge.api.endpoints import Call, Param

__all__ = [
    "CREDENTIAL_ENTITIES",
    "FILTER_CHECK",
    "INTEGRATION_ENTITIES",
    "installed",
    "path_param",
]

CREDENTIAL_ENTITIES = "/api/credentials/{credentialId}/external/{table}"
"""Where a picker lists a table before the integration exists (the console fills in the
credential it is connecting)."""
INTEGRATION_ENTITIES = "/api/integrations/{integrationId}/external/{table}"
"""Where a picker lists a table of a saved integration."""
FILTER_CHECK = "/api/filters:check"
"""Where the filter widget checks an expression."""

SEARCH = Param("search", {"type": "string", "maxLength": 200}, "Text the names must contain.")
CURSOR = Param("cursor", {"type": "string", "minLength": 1}, "The page's cursor (`nextCursor`).")


def path_param(name: str, description: str) -> Param:
    """A path parameter."""
    return Param(name, {"type": "string"}, description, required=True, location="path")


def installed(call: Call) -> Any:
    """The keys of the installed destinations."""
    return call.engine.plugins.destinations.keys()
