"""Reading JSON the user hands in: inline, ``@file``, ``-`` for standard input, or a file path."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import simplejson

from billbridge.cli.guard import fail
from billbridge.domain.models import loads

__all__ = ["CONFIG_HELP", "read_json_arg", "read_json_file"]

CONFIG_HELP = "JSON object, @file.json, or - for standard input."


def read_json_arg(value: str | None, what: str) -> dict[str, Any]:
    """A JSON object given inline, as ``@path``, or ``-`` for standard input."""
    if value is None:
        return {}
    try:
        if value == "-":
            text = sys.stdin.read()
        elif value.startswith("@"):
            text = Path(value[1:]).read_text(encoding="utf-8")
        else:
            text = value
    except OSError as exc:
        fail(f"cannot read {what}: {exc.strerror}: {exc.filename}")
    try:
        data = loads(text)
    except simplejson.JSONDecodeError as exc:
        fail(f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    if not isinstance(data, dict):
        fail(f"{what} must be a JSON object")
    return data


def read_json_file(path: Path, what: str) -> Any:
    """The JSON document in ``path`` (``what`` names it in errors: "bill", "account"...)."""
    try:
        return loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        fail(f"cannot read {what} {path}: {exc.strerror}")
    except simplejson.JSONDecodeError as exc:
        fail(f"{what} {path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
