"""A small interpreter for Xero's ``where`` query parameter, for the emulator.

Xero filters most lists with a C#-like expression, e.g. ``Class=="REVENUE"``,
``Name.Contains("Acme") AND Status=="ACTIVE"`` or ``ContactID==Guid("…")``. The emulator supports
the forms integrations use: comparisons (``== != < <= > >=``) of a dotted field path with a
string, number, ``true``/``false``/``null`` or ``Guid("…")``; the string methods ``Contains``,
``StartsWith`` and ``EndsWith``; ``AND``/``&&``, ``OR``/``||``, ``NOT``/``!`` and parentheses.
String comparisons ignore case, as Xero's do. Anything else raises ``ValueError`` (the
emulator answers 400, as Xero does for a filter it cannot parse).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

__all__ = ["compile_where"]

Predicate = Callable[[Mapping[str, Any]], bool]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<op>==|!=|<=|>=|<|>|&&|\|\||!|\(|\)|,|\.)
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)
_METHODS = ("Contains", "StartsWith", "EndsWith")


def _tokens(text: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise ValueError(f"cannot parse the where filter at position {position}: {text!r}")
        kind = match.lastgroup or ""
        found.append((kind, match.group(kind)))
        position = match.end()
    return found


def _unquote(token: str) -> str:
    return re.sub(r"\\(.)", r"\1", token[1:-1])


def _lookup(record: Mapping[str, Any], path: list[str]) -> Any:
    value: Any = record
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


_Ordered = TypeVar("_Ordered", str, Decimal)


def _apply(op: str, a: _Ordered, b: _Ordered) -> bool:
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    return a >= b


def _compare(left: Any, op: str, right: Any) -> bool:
    if isinstance(right, str):
        if left is None:
            return op == "!="
        return _apply(op, str(left).casefold(), right.casefold())
    if isinstance(right, bool) or right is None:
        if op not in ("==", "!="):
            return False
        return bool((left == right) == (op == "=="))
    try:
        number = Decimal(str(left))
    except (InvalidOperation, ValueError):
        return op == "!="
    if not number.is_finite():
        return op == "!="
    return _apply(op, number, Decimal(right))


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.position = 0
        self.text = text

    def peek(self) -> tuple[str, str] | None:
        """The next token, not consumed."""
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        """Consume the next token (which must be ``value`` when given)."""
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            raise ValueError(f"unexpected end or token in the where filter: {self.text!r}")
        self.position += 1
        return token

    def keyword(self, *words: str) -> bool:
        """True when the next token is one of ``words`` (any case)."""
        token = self.peek()
        return token is not None and token[1].upper() in words

    def parse(self) -> Predicate:
        """The whole expression."""
        predicate = self.disjunction()
        if self.peek() is not None:
            raise ValueError(f"unexpected text in the where filter: {self.text!r}")
        return predicate

    def disjunction(self) -> Predicate:
        """``a OR b OR …`` (lowest precedence)."""
        parts = [self.conjunction()]
        while self.keyword("OR", "||"):
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda r: any(p(r) for p in parts))

    def conjunction(self) -> Predicate:
        """``a AND b AND …``."""
        parts = [self.negation()]
        while self.keyword("AND", "&&"):
            self.take()
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else (lambda r: all(p(r) for p in parts))

    def negation(self) -> Predicate:
        """``NOT a``, a parenthesised expression, or a comparison."""
        if self.keyword("NOT", "!"):
            self.take()
            inner = self.negation()
            return lambda r: not inner(r)
        if self.keyword("("):
            self.take("(")
            inner = self.disjunction()
            self.take(")")
            return inner
        return self.comparison()

    def value(self) -> Any:
        """A literal: string, number, boolean, null or ``Guid("…")``."""
        kind, token = self.take()
        if kind == "string":
            return _unquote(token)
        if kind == "number":
            return Decimal(token)
        if kind == "word" and token.lower() in ("true", "false"):
            return token.lower() == "true"
        if kind == "word" and token.lower() == "null":
            return None
        if kind == "word" and token == "Guid":
            self.take("(")
            inner = self.take()
            if inner[0] != "string":
                raise ValueError(f"Guid() takes a quoted id in the where filter: {self.text!r}")
            self.take(")")
            return _unquote(inner[1])
        raise ValueError(f"expected a value in the where filter: {self.text!r}")

    def comparison(self) -> Predicate:
        """``Path OP value`` or ``Path.Method("text")``."""
        kind, token = self.take()
        if kind != "word":
            raise ValueError(f"expected a field name in the where filter: {self.text!r}")
        path = [token]
        while self.keyword("."):
            self.take(".")
            _, name = self.take()
            if name in _METHODS:
                return self.method(path, name)
            path.append(name)
        op_token = self.take()
        if op_token[1] not in ("==", "!=", "<", "<=", ">", ">="):
            raise ValueError(f"expected a comparison in the where filter: {self.text!r}")
        right = self.value()
        op = op_token[1]
        return lambda r: _compare(_lookup(r, path), op, right)

    def method(self, path: list[str], name: str) -> Predicate:
        """``Contains``, ``StartsWith`` or ``EndsWith`` on a path."""
        self.take("(")
        argument = self.value()
        self.take(")")
        if not isinstance(argument, str):
            raise ValueError(f"{name}() takes a string in the where filter: {self.text!r}")
        needle = argument.casefold()

        def test(record: Mapping[str, Any]) -> bool:
            value = _lookup(record, path)
            if value is None:
                return False
            text = str(value).casefold()
            if name == "Contains":
                return needle in text
            if name == "StartsWith":
                return text.startswith(needle)
            return text.endswith(needle)

        return test


def compile_where(text: str) -> Predicate:
    """A predicate over a record (a Xero JSON object) for a ``where`` expression.

    :raises ValueError: the expression is not one the emulator understands.
    """
    return _Parser(text).parse()
