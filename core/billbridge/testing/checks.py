"""The static checks of the conformance kit: a plugin's declaration, hooks and panel schema.

Each function returns a list of problems, one sentence each, that says where the problem is and
how to fix it; an empty list means the check passed. The conformance suite
(:class:`billbridge.testing.suite.DestinationConformance`) turns them into test failures; they
are plain functions so that tools (a CI script, a plugin's own tests) can call them too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import attrs
import pluggy
from jsonschema import Draft7Validator

from billbridge.domain.models import thaw
from billbridge.domain.schemas import check_panel_schema
from billbridge.plugin.contract import Destination, Limits
from billbridge.plugin.manager import create_plugin_manager
from billbridge.plugin.validation import hook_problems, implementations, parameters

__all__ = [
    "GUIDE",
    "NEEDED_ARGUMENTS",
    "SECRET_WORDS",
    "declaration_problems",
    "default_problems",
    "external_table_problems",
    "hook_argument_problems",
    "label_problems",
    "meta_schema_problems",
    "missing_hooks",
    "needed_argument_problems",
    "panel_external_tables",
    "secret_problems",
    "title_problems",
]

SECRET_WORDS = frozenset(
    {"secret", "password", "passwd", "passphrase", "token", "key", "apikey", "credential"}
)
"""Words that make a property name look like a secret (``apiKey``, ``client_secret``...)."""

#: The JSON Pointers (inside a panel) of the properties the core redacts: properties of
#: properties, all the way down from the panel (see billbridge.domain.schemas.redact).
_REDACTED_PATH = re.compile(r"(/properties/[^/]+)+")

_DRAFT_07 = ("http://json-schema.org/draft-07/schema#", "http://json-schema.org/draft-07/schema")


# --- walking a panel ------------------------------------------------------------------------------


@attrs.frozen
class _Node:
    pointer: str
    schema: Mapping[str, Any]
    #: The property name when the node is a field (reached through ``properties``).
    name: str | None = None
    #: True for the panel's own top-level properties.
    top_level: bool = False


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _walk(schema: Mapping[str, Any]) -> Iterator[_Node]:
    """Every sub-schema of a panel with its JSON Pointer inside the schema document."""

    def visit(node: Any, pointer: str, name: str | None = None) -> Iterator[_Node]:
        if not isinstance(node, Mapping):
            return
        yield _Node(pointer, node, name, top_level=name is not None and pointer.count("/") == 2)
        for key, sub in (node.get("properties") or {}).items():
            yield from visit(sub, f"{pointer}/properties/{_escape(key)}", key)
        items = node.get("items")
        if isinstance(items, list):
            for index, sub in enumerate(items):
                yield from visit(sub, f"{pointer}/items/{index}")
        else:
            yield from visit(items, f"{pointer}/items")
        for key in ("additionalItems", "additionalProperties", "contains", "propertyNames"):
            yield from visit(node.get(key), f"{pointer}/{key}")
        for key in ("oneOf", "anyOf", "allOf"):
            for index, sub in enumerate(node.get(key) or ()):
                yield from visit(sub, f"{pointer}/{key}/{index}")
        for key in ("if", "then", "else", "not"):
            yield from visit(node.get(key), f"{pointer}/{key}")
        for key in ("definitions", "$defs", "dependencies", "patternProperties"):
            for entry, sub in (node.get(key) or {}).items():
                yield from visit(sub, f"{pointer}/{key}/{_escape(entry)}")

    yield from visit(schema, "")


def _words(name: str) -> set[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return {word.lower() for word in re.split(r"[^A-Za-z0-9]+", spaced) if word}


def _looks_secret(name: str) -> bool:
    return bool(_words(name) & SECRET_WORDS)


# --- the panel ------------------------------------------------------------------------------------


def meta_schema_problems(schema: Mapping[str, Any]) -> list[str]:
    """The panel is a valid draft-07 schema and satisfies billbridge's panel meta-schema."""
    problems = []
    if schema.get("$schema") not in _DRAFT_07:
        problems.append(
            f'"$schema" is {schema.get("$schema")!r}: declare draft-07 '
            '("http://json-schema.org/draft-07/schema#")'
        )
    problems += [
        f"{error.path or '/'}: {error.message} (panel meta-schema)"
        for error in check_panel_schema(schema)
    ]
    return problems


def title_problems(schema: Mapping[str, Any]) -> list[str]:
    """The panel and every field have a title; the panel and its options have a description.

    A UI labels a field with its ``title`` and explains it with its ``description``; without
    them a generated form shows raw property names.
    """
    problems = []
    for key in ("title", "description"):
        if not _text(schema.get(key)):
            problems.append(f"the panel has no {key}")
    for node in _walk(schema):
        if node.name is None:
            continue
        if not _text(node.schema.get("title")):
            problems.append(f"{node.pointer}: field {node.name!r} has no title")
        if node.top_level and not _text(node.schema.get("description")):
            problems.append(f"{node.pointer}: option {node.name!r} has no description")
    return problems


def label_problems(schema: Mapping[str, Any]) -> list[str]:
    """Choices are labelled: ``oneOf: [{"const": ..., "title": ...}]``, never a bare ``enum``."""
    problems = []
    for node in _walk(schema):
        if "enum" in node.schema:
            problems.append(
                f"{node.pointer or '/'}: bare enum {list(node.schema['enum'])!r}; label each "
                'choice: "oneOf": [{"const": ..., "title": ...}, ...]'
            )
        if "const" in node.schema and not _text(node.schema.get("title")):
            problems.append(
                f"{node.pointer or '/'}: choice {node.schema['const']!r} has no title (its label)"
            )
    return problems


def secret_problems(schema: Mapping[str, Any], not_secrets: Sequence[str] = ()) -> list[str]:
    """Secrets are ``writeOnly`` top-level-reachable strings with no default or example.

    A property whose name contains secret, password, token or key (``apiKey``,
    ``clientSecret``...) must be ``writeOnly: true`` so that the core never prints, logs or
    returns it; list deliberate exceptions (by name or by pointer) in ``not_secrets``.
    """
    problems = []
    exempt = set(not_secrets)
    for node in _walk(schema):
        write_only = node.schema.get("writeOnly") is True
        if (
            node.name is not None
            and _looks_secret(node.name)
            and not write_only
            and node.name not in exempt
            and node.pointer not in exempt
        ):
            problems.append(
                f"{node.pointer}: {node.name!r} looks like a secret but is not "
                '"writeOnly": true (if it is not a secret, list it in not_secrets)'
            )
        if not write_only:
            continue
        for leak in ("default", "examples", "const", "enum"):
            if leak in node.schema:
                problems.append(
                    f"{node.pointer}: a writeOnly value must not carry {leak!r}: the schema is "
                    "published, so the secret would be too"
                )
        if not _REDACTED_PATH.fullmatch(node.pointer):
            problems.append(
                f"{node.pointer}: writeOnly inside an array, a map, a condition or a definition "
                "is not redacted by the core; make the secret a property reached from the panel "
                "through properties only"
            )
    return problems


def panel_external_tables(schema: Mapping[str, Any]) -> dict[str, str]:
    """Every ``x-external-table`` hint of a panel: JSON Pointer → table name."""
    return {
        node.pointer: str(node.schema["x-external-table"])
        for node in _walk(schema)
        if "x-external-table" in node.schema
    }


def external_table_problems(schema: Mapping[str, Any], destination: Destination) -> list[str]:
    """Every ``x-external-table`` names a table the destination declares it can list."""
    declared = set(destination.external_tables)
    return [
        f"{pointer}: x-external-table {table!r} is not one of the destination's "
        f"external_tables ({', '.join(destination.external_tables) or 'none'})"
        for pointer, table in panel_external_tables(schema).items()
        if table not in declared
    ]


def default_problems(schema: Mapping[str, Any]) -> list[str]:
    """Every ``default`` and ``examples`` value is valid for the field that declares it.

    The core fills panel defaults in before ``send_bill`` sees a configuration, so an invalid
    default is an invalid configuration nobody typed.
    """
    try:
        root = Draft7Validator(thaw(schema), format_checker=Draft7Validator.FORMAT_CHECKER)
    except Exception as exc:  # a broken schema is meta_schema_problems' to report
        return [f"cannot build a validator for the panel: {exc}"]
    problems = []
    for node in _walk(schema):
        if node.pointer == "":
            continue
        values = []
        if "default" in node.schema:
            values.append(("default", node.schema["default"]))
        examples = node.schema.get("examples")
        if isinstance(examples, list):
            values += [(f"examples[{i}]", example) for i, example in enumerate(examples)]
        for label, value in values:
            # evolve keeps the root's resolver, so "$ref": "#/definitions/..." still resolves.
            validator = root.evolve(schema=thaw(node.schema))
            for error in validator.iter_errors(thaw(value)):
                problems.append(f"{node.pointer}: {label} {value!r} is invalid: {error.message}")
    return problems


# --- the declaration and the hooks ------------------------------------------------------------


def declaration_problems(destination: Destination, key: str) -> list[str]:
    """What ``register_destinations`` declared for ``key`` is complete and consistent."""
    problems = []
    if destination.key != key:
        problems.append(f"the destination's key is {destination.key!r}, not {key!r}")
    if not re.fullmatch(r"[a-z][a-z0-9_]*", destination.key):
        problems.append(
            f"key {destination.key!r}: use lower-case letters, digits and underscores "
            "(it is an entry point name, a database value and a CLI argument)"
        )
    if not _text(destination.title):
        problems.append("the destination has no title")
    if "Bill" not in destination.entity_types:
        problems.append(f"entity_types {destination.entity_types!r} does not include 'Bill'")
    tables = destination.external_tables
    if len(set(tables)) != len(tables) or not all(_text(t) for t in tables):
        problems.append(f"external_tables {tables!r} must be distinct, non-empty names")
    problems += _limit_problems(destination.limits)
    oauth = destination.oauth
    if oauth is not None:
        if not destination.api_base_url:
            problems.append(
                "an OAuth destination must declare api_base_url (the real API root); tests and "
                "demos override it per deployment"
            )
        for name in ("authorize_url", "token_url"):
            url = getattr(oauth, name)
            if not str(url).startswith("https://"):
                problems.append(f"oauth.{name} {url!r} must be https")
        if not oauth.scopes or not all(_text(s) for s in oauth.scopes):
            problems.append("oauth.scopes must list the scopes to ask for")
    try:
        json.dumps(destination.describe())
    except (TypeError, ValueError) as exc:
        problems.append(f"describe() is not JSON-able: {exc}")
    return problems


def _limit_problems(limits: Limits) -> list[str]:
    problems = []
    for field in attrs.fields(Limits):
        value = getattr(limits, field.name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            problems.append(f"limits.{field.name} is {value!r}: a positive integer, or None")
    return problems


def missing_hooks(
    destination: Destination, implemented: Sequence[str], schema: Mapping[str, Any]
) -> list[str]:
    """Hooks the destination must implement but does not, and hooks that contradict its limits.

    Always: ``register_destinations`` and ``send_bill``. ``authenticate`` when the destination
    uses OAuth (the core calls it to complete every consent). ``list_external_entities`` when
    the panel names an ``x-external-table`` (a UI fills that option list from it).
    ``send_bills`` only makes sense with ``Limits.batch_size`` above 1.
    """
    have = set(implemented)
    problems = []
    required = {
        "register_destinations": "every plugin declares its destinations",
        "send_bill": "the core delivers every bill through it",
    }
    if destination.oauth is not None:
        required["authenticate"] = "the destination uses OAuth; the core completes consents with it"
    tables = panel_external_tables(schema)
    if tables:
        where = ", ".join(sorted(tables))
        required["list_external_entities"] = f"the panel fills option lists from it ({where})"
    for hook, why in required.items():
        if hook not in have:
            problems.append(f"hook {hook} is not implemented: {why}")
    if "fetch_invoice_status" in have and destination.limits.status_batch_size < 1:
        problems.append(
            "fetch_invoice_status is implemented but Limits.status_batch_size is "
            f"{destination.limits.status_batch_size}: declare how many documents one call reads"
        )
    if "send_bills" in have and destination.limits.batch_size < 2:
        problems.append(
            "send_bills is implemented but Limits.batch_size is "
            f"{destination.limits.batch_size}: declare how many bills one request may carry"
        )
    return problems


#: The arguments a hook cannot keep the contract without, and what goes wrong when an
#: implementation leaves one out (pluggy then never passes it, and nothing else says so).
NEEDED_ARGUMENTS: Mapping[str, Mapping[str, str]] = {
    "authenticate": {
        "callback": "it carries the consent's token and parameters, the only way to learn "
        "which tenant the connection is for",
    },
    "list_external_entities": {
        "table": "it says which of the destination's external tables to list",
    },
    "validate_config": {"config": "it is the configuration to check"},
    "send_bill": {
        "bill": "it is the bill version to deliver",
        "previous": "without it every new version of a bill creates another invoice instead "
        "of updating the one made for the earlier version",
        "idempotency_key": "a delivery whose answer was lost is sent again with the same key, "
        "and only that key lets the destination answer the retry with the invoice it already "
        "made instead of making a second one; send it as the destination's idempotency key",
    },
    "send_bills": {
        "deliveries": "they are the bill versions to deliver",
        "idempotency_key": "a batch whose outcome is unknown is sent again with the same "
        "deliveries and the same key, and only that key lets the destination answer with what "
        "it did the first time instead of doing it twice; send it as the batch request's "
        "idempotency key",
    },
    "preview_bill": {
        "bill": "it is the bill version to preview",
        "previous": "without it the preview shows a create where send_bill would update",
    },
    "fetch_invoice_status": {
        "documents": "they are the delivered documents to read back",
    },
}

#: Where the arguments are explained, named in every problem about them.
GUIDE = "docs/writing-a-destination.md"


def hook_argument_problems(plugin: object, pm: pluggy.PluginManager | None = None) -> list[str]:
    """Every hook implementation of ``plugin`` names a hook and only the contract's arguments.

    pluggy passes an implementation only the arguments it names, by name, so a misspelt
    argument would never be passed; a keyword-only parameter, ``*args`` or ``**kwargs`` is
    never filled at all. Hook wrappers are refused: the core calls one implementation per
    destination directly.
    """
    pm = pm or create_plugin_manager()
    problems = hook_problems(plugin, pm)
    for found in implementations(plugin, pm):
        if isinstance(found, str):
            continue  # reported by hook_problems
        hook_name = found.hook
        if found.opts.get("hookwrapper") or found.opts.get("wrapper"):
            problems.append(
                f"{found.attribute}: hook wrappers are not supported; implement {hook_name}"
            )
        for parameter in parameters(found.function) or ():
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                problems.append(
                    f"{hook_name}: *{parameter.name} / **{parameter.name} are never filled; "
                    "name the arguments you need"
                )
            elif parameter.kind is parameter.KEYWORD_ONLY:
                problems.append(
                    f"{hook_name}: keyword-only argument {parameter.name!r} is never passed by "
                    "pluggy; make it a plain argument"
                )
    return problems


def needed_argument_problems(plugin: object, pm: pluggy.PluginManager | None = None) -> list[str]:
    """Every hook implementation of ``plugin`` takes the arguments it cannot do without.

    An implementation may leave out arguments it does not use, and pluggy then silently does
    not pass them; for the arguments in :data:`NEEDED_ARGUMENTS` that silence breaks the
    contract (``send_bill`` and ``send_bills`` without ``idempotency_key`` make documents twice
    when an answer is lost). Hooks that name no hook are :func:`hook_argument_problems`' to
    report.
    """
    pm = pm or create_plugin_manager()
    problems = []
    for found in implementations(plugin, pm):
        if isinstance(found, str):
            continue
        taken = parameters(found.function)
        if taken is None:
            continue
        named = {p.name for p in taken if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)}
        for argument, why in NEEDED_ARGUMENTS.get(found.hook, {}).items():
            if argument not in named:
                problems.append(
                    f"{found.hook}: the implementation does not take {argument!r}, so pluggy "
                    f"never passes it, and it is needed: {why}. Add it to the implementation's "
                    f"arguments (see {GUIDE}, `{found.hook}`)"
                )
    return problems


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())
