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
    "CUSTOM_KEYWORDS",
    "REDACTED",
    "SCHEMA_BASE_URL",
    "SEALED",
    "check_panel_schema",
    "core_schema",
    "core_schema_files",
    "custom_field_name_errors",
    "human_message",
    "published_panel",
    "published_schemas",
    "redact",
    "secret_options",
    "unusable_panel_schema",
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
"""The secret sentinel: what a stored ``writeOnly`` value reads back as. Sent back unchanged in
an update, it means "keep the stored secret"; published panels accept it (see
:func:`published_panel`)."""
SEALED = "$sealed"
"""Key of a secret's encrypted form in stored configuration: ``{"$sealed": token}``."""


SCHEMA_BASE_URL = "https://billbridge.dev/schemas"
"""Where the published schemas' ``$id`` values live (identifiers, not necessarily fetched)."""

CUSTOM_KEYWORDS: dict[str, dict[str, Any]] = {
    "x-external-table": {
        "schemaType": "string",
        "description": "The option's value is the id of a record in this table of the destination "
        "(Item, Customer, Contact, Account, TaxCode...), listed by the destination's "
        "list_external_entities hook: a UI offers a picker filled from it.",
    },
    "x-m3ter-entity": {
        "schemaType": "string",
        "description": "The option's values are ids of this m3ter entity (Account, Product, "
        "Aggregation...), as m3ter's own console offers them.",
    },
    "x-filter-expression": {
        "schemaType": "boolean",
        "description": "The option is an account filter expression (billbridge's filter "
        "language): a UI offers an editor that checks its syntax.",
    },
}
"""billbridge's annotation keywords in published schemas. They never change what is valid;
validators in strict mode (Ajv) must be told about them (``ajv.addKeyword``)."""


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


def validate(
    instance: Any,
    schema: Mapping[str, Any],
    *,
    base_path: str = "",
    unknown: str = "is not a known setting",
) -> list[FieldError]:
    """Validate ``instance`` against a draft-07 ``schema`` (formats checked).

    Paths are JSON Pointers prefixed with ``base_path``. A missing required property or an
    unexpected one is reported at the property's own path, where a form shows it (``unknown``
    is what is said of an unexpected one). Messages are written for people: choices by their
    titles, types in words, never a Python value.
    """
    validator = _validator(json.dumps(thaw(schema), sort_keys=True))
    secrets = _secret_paths(schema)
    errors: list[FieldError] = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.path))):
        errors.extend(_field_errors(error, base_path, secrets, unknown))
    return errors


def _field_errors(
    error: jsonschema.ValidationError, base: str, secrets: set[str], unknown: str
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
            FieldError(f"{base}{path}/{_escape(name)}", unknown)
            for name in error.instance
            if name not in allowed
        ]
    if path in secrets or any(path.startswith(s + "/") for s in secrets):
        # The message of most validators quotes the value: for a secret that is a leak.
        return [FieldError(f"{base}{path}", f"is not valid ({error.validator})")]
    return [FieldError(f"{base}{path}", human_message(error))]


def _escape(name: str) -> str:
    return str(name).replace("~", "~0").replace("/", "~1")


_TYPE_WORDS = {
    "string": "text",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "array": "a list",
    "object": "an object",
    "null": "null",
}
_FORMAT_WORDS = {
    "email": "an email address",
    "uri": "a URL",
    "uuid": "a UUID",
    "date": "a date (YYYY-MM-DD)",
    "date-time": "a date and time (ISO 8601, e.g. 2026-01-31T12:00:00Z)",
}


def _choice(option: Any) -> str | None:
    if not isinstance(option, Mapping) or "const" not in option:
        return None
    value = json.dumps(option["const"])
    return f"{option['title']} ({value})" if option.get("title") else value


def human_message(error: jsonschema.ValidationError) -> str:
    """What is wrong, in words a person reading a form understands (no Python values)."""
    kind, limit = str(error.validator), error.validator_value
    if kind == "type":
        wanted = [limit] if isinstance(limit, str) else list(cast(list[str], limit))
        return "must be " + " or ".join(_TYPE_WORDS.get(t, t) for t in wanted)
    if kind in ("oneOf", "anyOf") and isinstance(limit, list):
        choices = [_choice(option) for option in limit]
        if choices and all(c is not None for c in choices):
            return "must be one of: " + ", ".join(c for c in choices if c)
        return "does not match any of the allowed forms"
    if kind == "enum" and isinstance(limit, list):
        return "must be one of: " + ", ".join(json.dumps(v) for v in limit)
    if kind == "const":
        return f"must be {json.dumps(limit)}"
    if kind == "format":
        return f"must be {_FORMAT_WORDS.get(str(limit), str(limit))}"
    return _size_message(kind, limit) or "is not valid here"


def _size_message(kind: str, limit: Any) -> str | None:
    plural = "" if limit == 1 else "s"
    messages = {
        "minLength": "must not be empty" if limit == 1 else f"must be at least {limit} characters",
        "maxLength": f"must be at most {limit} character{plural}",
        "minimum": f"must be at least {limit}",
        "maximum": f"must be at most {limit}",
        "exclusiveMinimum": f"must be more than {limit}",
        "exclusiveMaximum": f"must be less than {limit}",
        "minItems": f"must have at least {limit} item{plural}",
        "maxItems": f"must have at most {limit} item{plural}",
        "uniqueItems": "must not list the same value twice",
        "minProperties": f"must have at least {limit} entr{'y' if limit == 1 else 'ies'}",
        "maxProperties": f"must have at most {limit} entr{'y' if limit == 1 else 'ies'}",
        "pattern": "is not in the expected form",
        "multipleOf": f"must be a multiple of {limit}",
    }
    return messages.get(kind)


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
    problems = unusable_panel_schema(schema)
    if problems:
        return problems
    return validate(thaw(schema), core_schema("destination-panel.meta"))


def unusable_panel_schema(schema: Mapping[str, Any]) -> list[FieldError]:
    """Why a panel cannot be used at all: not a valid draft-07 schema of an object.

    A plugin with such a panel is refused when it loads (configurations could not be checked
    against it); the finer rules of the panel meta-schema (titles, labelled choices) are the
    conformance kit's to report.
    """
    try:
        Draft7Validator.check_schema(thaw(schema))
    except jsonschema.SchemaError as exc:
        return [FieldError(_pointer(exc.path), f"not a valid draft-07 schema: {exc.message}")]
    if schema.get("type") != "object":
        return [FieldError("/type", 'must be "object": a panel is a form of options')]
    return []


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


def published_panel(key: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    """A destination's panel as published for UIs: its own ``$id``, and secrets that accept
    the sentinel.

    * ``$id`` is ``.../destinations/<key>.schema.json``, so two destinations sharing a plugin's
      schema (``quickbooks`` and ``quickbooks_sandbox``) can be loaded into one validator.
    * A ``writeOnly`` option reads back as :data:`REDACTED`; its value constraints move into an
      ``else`` branch of ``if: {const: "********"}``, so a saved integration read back validates
      against the published panel unchanged, while a new value is still checked in full.
    """
    published: dict[str, Any] = thaw(schema)
    published["$id"] = f"{SCHEMA_BASE_URL}/destinations/{key}.schema.json"
    properties = published.get("properties") or {}
    for name in secret_options(published):
        properties[name] = _accepting_sentinel(properties[name])
    return published


def published_schemas(panels: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every schema a UI builder needs, by name: the core's, then ``destinations/<key>`` for
    each destination's panel in ``panels`` (by key); every ``$id`` is unique."""
    schemas = {name: core_schema(name) for name in CORE_SCHEMAS}
    for key in sorted(panels):
        schemas[f"destinations/{key}"] = published_panel(key, panels[key])
    return schemas


# What a secret's value must satisfy; annotations (title, writeOnly...) stay where UIs read them.
_VALUE_CONSTRAINTS = ("minLength", "maxLength", "pattern", "format")


def _accepting_sentinel(option: Mapping[str, Any]) -> dict[str, Any]:
    kept = {k: v for k, v in option.items() if k not in _VALUE_CONSTRAINTS}
    constraints = {k: option[k] for k in _VALUE_CONSTRAINTS if k in option}
    if not constraints:
        return kept
    return {**kept, "if": {"const": REDACTED}, "then": True, "else": constraints}
