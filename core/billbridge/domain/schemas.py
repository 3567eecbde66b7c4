"""Loading the published JSON Schemas and validating documents against them.

The core's schemas live in the repository's top-level ``schemas/`` directory and are shipped
inside the wheel as ``billbridge/_schemas``. Validation errors come back as
:class:`~billbridge.errors.FieldError` with JSON-Pointer paths a UI can place next to fields,
and never echo the value of a ``writeOnly`` (secret) field.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, cast

import jsonschema
from jsonschema import Draft7Validator

from billbridge.domain.models import thaw
from billbridge.errors import FieldError

__all__ = [
    "CORE_SCHEMAS",
    "REDACTED",
    "SEALED",
    "check_panel_schema",
    "core_schema",
    "core_schema_files",
    "custom_field_name_errors",
    "redact",
    "secret_options",
    "validate",
]

CORE_SCHEMAS = (
    "bill",
    "account",
    "global-config",
    "bill-entity-config",
    "external-mapping",
    "credential",
    "destination-panel.meta",
)
"""The names of the core's schemas (file ``schemas/<name>.schema.json``)."""

REDACTED = "********"
SEALED = "$sealed"
"""Key of a secret's encrypted form in stored configuration: ``{"$sealed": token}``."""


def secret_options(schema: Mapping[str, Any]) -> list[str]:
    """Top-level panel options marked ``writeOnly`` (secrets)."""
    return [
        name
        for name, spec in (schema.get("properties") or {}).items()
        if isinstance(spec, Mapping) and spec.get("writeOnly") is True
    ]


def _schema_dir() -> Traversable:
    shipped = resources.files("billbridge").joinpath("_schemas")
    if shipped.is_dir():
        return shipped
    # Editable installs and source checkouts: the top-level schemas/ directory is the source of
    # truth and the wheel copies it, so there is exactly one copy to edit.
    source = Path(__file__).resolve().parents[3] / "schemas"
    if source.is_dir():
        return source
    raise FileNotFoundError("billbridge's JSON schemas are missing from this installation")


def core_schema_files() -> dict[str, Traversable]:
    """Every core schema file by name."""
    base = _schema_dir()
    return {name: base.joinpath(f"{name}.schema.json") for name in CORE_SCHEMAS}


@functools.cache
def _load(name: str) -> str:
    if name not in CORE_SCHEMAS:
        raise KeyError(f"no core schema named {name!r}; known: {', '.join(CORE_SCHEMAS)}")
    return core_schema_files()[name].read_text(encoding="utf-8")


def core_schema(name: str) -> dict[str, Any]:
    """A fresh copy of the core schema ``name`` (see :data:`CORE_SCHEMAS`)."""
    loaded: dict[str, Any] = json.loads(_load(name))
    return loaded


@functools.lru_cache(maxsize=64)
def _validator(schema_text: str) -> Draft7Validator:
    return Draft7Validator(json.loads(schema_text), format_checker=Draft7Validator.FORMAT_CHECKER)


def _pointer(parts: Iterable[Any]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _secret_paths(schema: Mapping[str, Any]) -> set[str]:
    """Top-level and nested property paths marked ``writeOnly`` (values never shown)."""
    found: set[str] = set()

    def walk(node: Any, path: str) -> None:
        if not isinstance(node, Mapping):
            return
        if node.get("writeOnly") is True:
            found.add(path)
        for key, sub in (node.get("properties") or {}).items():
            walk(sub, f"{path}/{key}")

    walk(schema, "")
    return found


def validate(instance: Any, schema: Mapping[str, Any], *, base_path: str = "") -> list[FieldError]:
    """Validate ``instance`` against a draft-07 ``schema`` (formats checked).

    Paths are JSON Pointers prefixed with ``base_path``. A missing required property or an
    unexpected one is reported at the property's own path, where a form shows it.
    """
    validator = _validator(json.dumps(thaw(schema), sort_keys=True))
    secrets = _secret_paths(schema)
    errors: list[FieldError] = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.path))):
        errors.extend(_field_errors(error, base_path, secrets))
    return errors


def _field_errors(
    error: jsonschema.ValidationError, base: str, secrets: set[str]
) -> list[FieldError]:
    path = _pointer(error.path)
    if error.validator == "required" and isinstance(error.instance, Mapping):
        return [
            FieldError(f"{base}{path}/{name}", "is required")
            for name in cast(list[str], error.validator_value)
            if name not in error.instance
        ]
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        allowed = set(
            (error.schema.get("properties") or {}) if isinstance(error.schema, Mapping) else ()
        )
        return [
            FieldError(f"{base}{path}/{name}", "is not a known setting")
            for name in error.instance
            if name not in allowed
        ]
    if path in secrets or any(path.startswith(s + "/") for s in secrets):
        # The message of most validators quotes the value: for a secret that is a leak.
        return [FieldError(f"{base}{path}", f"is not valid ({error.validator})")]
    if error.validator == "oneOf" and isinstance(error.validator_value, list):
        choices = [c.get("const") for c in error.validator_value if isinstance(c, Mapping)]
        if choices and all(c is not None for c in choices):
            listed = ", ".join(json.dumps(c) for c in choices)
            return [FieldError(f"{base}{path}", f"must be one of {listed}")]
    return [FieldError(f"{base}{path}", error.message)]


def redact(config: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` with every ``writeOnly`` value replaced by ``"********"``."""
    secrets = _secret_paths(schema)

    def walk(node: Any, path: str) -> Any:
        if path in secrets and node is not None:
            return REDACTED
        if isinstance(node, Mapping):
            return {k: walk(v, f"{path}/{k}") for k, v in node.items()}
        return node

    redacted: dict[str, Any] = walk(dict(config), "")
    return redacted


def check_panel_schema(schema: Mapping[str, Any]) -> list[FieldError]:
    """Problems with a destination's panel schema: valid draft-07, and the panel meta-schema."""
    try:
        Draft7Validator.check_schema(thaw(schema))
    except jsonschema.SchemaError as exc:
        return [FieldError(_pointer(exc.path), f"not a valid draft-07 schema: {exc.message}")]
    return validate(thaw(schema), core_schema("destination-panel.meta"))


def custom_field_name_errors(config: Mapping[str, Any], key: str) -> list[FieldError]:
    """Check that ``config[key]`` names an account custom field rather than holding a value.

    Panels ask for the *name* of a custom field (e.g. ``accountManagerEmail``); people often type
    the email address itself, which would silently never match.
    """
    value = config.get(key)
    if value is None:
        return []
    if not isinstance(value, str) or not value.strip():
        return [FieldError(f"/{key}", "must be the name of an account custom field")]
    if "@" in value:
        return [
            FieldError(
                f"/{key}",
                "looks like an email address; enter the NAME of the account custom field that "
                "holds the email (for example accountManagerEmail)",
            )
        ]
    if any(ch.isspace() for ch in value):
        return [FieldError(f"/{key}", "a custom field name has no spaces")]
    return []
