"""The account filter language: small, safe boolean expressions over an m3ter Account.

Integrations use a filter to decide which bills they take, by looking at the bill's account
(m3ter's Account JSON, as a mapping)::

    customFields != null AND customFields.country == "UK"
    address.country == US
    NOT (currency in ["USD", "CAD"]) || code == 'ACME-UK-001'

Syntax
======

* **Paths** name a field: ``currency``, ``address.country``, ``customFields."my key"`` (segments
  after the first may be quoted, for keys that are not identifiers or are keywords). A path
  must start with a bare name.
* **Comparisons** ``path OP literal`` with ``== != < <= > >=``; **membership**
  ``path in [lit, ...]`` and ``path not in [lit, ...]`` (an empty list and a trailing comma are
  allowed).
* **Boolean operators** ``AND``/``&&``, ``OR``/``||``, ``NOT``/``!``, parentheses. Precedence
  is NOT > AND > OR.
* **Literals**: strings in double or single quotes with the escapes ``\\" \\' \\\\ \\/ \\n \\r \\t
  \\uXXXX`` (any other escape is an error, so that a stray backslash is noticed rather than
  silently dropped); numbers ``42``, ``-3``, ``10.5`` (read as :class:`~decimal.Decimal`, never
  float); ``true``, ``false``, ``null``; and **bare words**: an identifier on the right-hand side
  of a comparison or in a list is a string, so ``address.country == US`` means ``== "US"``.
* Keywords (``and or not in true false null``) are case-insensitive and reserved: to compare
  with the *string* ``"null"`` or reach a key called ``in``, quote it.
* ``true`` and ``false`` may stand alone as a whole expression (a filter matching everything or
  nothing).

Semantics
=========

* A missing field, or a path that goes through something that is not an object (a list, a
  string, null, ...), is ``null``. Evaluation never raises.
* ``accountName``/``accountCode`` at the top of a path fall back to m3ter's ``name``/``code``
  (and the other way round) when the account lacks the key written, because people write both.
* **The literal's type decides the comparison.** A number literal compares numerically with a
  number in the account (int, float via ``Decimal(str(x))``, Decimal; never bool) or with a
  string that looks like a number (``"42"``, ``" -1.5 "``), because custom fields often hold
  numbers as strings. A string literal only equals/orders against a string (case-sensitive,
  code-point order). ``true``/``false`` only equal booleans; ``null`` only equals a missing
  field or ``null``.
* ``==`` and ``!=`` are always each other's negation, so ``x != "UK"`` is true when ``x`` is
  missing (unlike SQL's three-valued logic, which surprises people writing routing rules).
  Ordering comparisons are false whenever the two sides cannot be ordered (null, a boolean,
  mismatched types, NaN).
* ``path in [a, b]`` is ``path == a OR path == b``; ``not in`` is its negation.
* **A bare path is a truthiness test**: it is false for null/missing, ``false``, numeric zero,
  and empty strings, lists and objects; true otherwise (so ``customFields.vip`` works for
  boolean, 0/1 and "set or not" flags). Note the *string* ``"false"`` is true: compare
  explicitly (``customFields.vip == "false"``) if a field stores booleans as text.

Limits
======

Expressions are limited to :data:`MAX_LENGTH` characters and :data:`MAX_DEPTH` levels of
nesting (parentheses, NOT and AND/OR levels), so that neither parsing nor evaluation can exhaust
the stack. :func:`parse` raises :class:`FilterSyntaxError`, and nothing else, for any string.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Mapping, Sized
from decimal import Decimal
from typing import Any, Final, NamedTuple, cast

import attrs
from lark import Lark, Token, Transformer, v_args
from lark.exceptions import (
    LarkError,
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
    "And",
    "Compare",
    "Constant",
    "Filter",
    "FilterSyntaxError",
    "Membership",
    "Node",
    "Not",
    "Or",
    "Path",
    "Scalar",
    "Truthy",
    "matches",
    "parse",
]

MAX_LENGTH: Final = 4000
"""Longest expression accepted, in characters."""

MAX_DEPTH: Final = 100
"""Deepest nesting accepted (each parenthesis, NOT, AND and OR level counts once)."""

Scalar = Decimal | str | bool | None
"""A literal in an expression."""

# Keywords get priority 2 so the lexer tries them before NAME, and the trailing ``\b`` keeps
# ``order``/``nullable``/``index`` as names. The lexer is the basic (not contextual) one so
# keywords are reserved everywhere: a contextual lexer would quietly read ``x == and`` as the
# string "and" and turn typos into confusing errors further on.
_GRAMMAR: Final = r"""
    ?start: or_expr

    ?or_expr: and_expr (_OR and_expr)*
    ?and_expr: not_expr (_AND not_expr)*
    ?not_expr: NOT not_expr                 -> negation
             | BANG not_expr                -> negation
             | atom
    ?atom: path COMP_OP value               -> comparison
         | path _IN literal_list            -> membership
         | path NOT _IN literal_list        -> non_membership
         | path                             -> truthy
         | TRUE                             -> constant
         | FALSE                            -> constant
         | LPAR or_expr RPAR                -> group

    path: NAME (_DOT (NAME | STRING))*
    value: STRING | NUMBER | NAME | TRUE | FALSE | NULL
    literal_list: _LSQB (value (_COMMA value)* _COMMA?)? _RSQB

    _OR.2: /(?i:or)\b|\|\|/
    _AND.2: /(?i:and)\b|&&/
    NOT.2: /(?i:not)\b/
    _IN.2: /(?i:in)\b/
    TRUE.2: /(?i:true)\b/
    FALSE.2: /(?i:false)\b/
    NULL.2: /(?i:null)\b/

    COMP_OP: /==|!=|<=|>=|<|>/
    BANG: "!"
    LPAR: "("
    RPAR: ")"
    _LSQB: "["
    _RSQB: "]"
    _COMMA: ","
    _DOT: "."

    NAME: /[^\W\d]\w*/
    NUMBER: /-?[0-9]+(?:\.[0-9]+)?/
    STRING: /"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/s

    %ignore /\s+/
"""

_KEYWORDS: Final = frozenset({"and", "or", "not", "in", "true", "false", "null"})
_IDENTIFIER: Final = re.compile(r"[^\W\d]\w*")
# What a number in a string field must look like to compare numerically: the language's own
# number syntax plus a sign and surrounding blanks. Deliberately narrower than Decimal(), which
# would also take "NaN", "1_000" and non-ASCII digits.
_NUMERIC_STRING: Final = re.compile(r"\s*[+-]?[0-9]+(?:\.[0-9]+)?\s*", re.ASCII)
# m3ter's Account says ``name``/``code``; people (and older billbridge configs) say
# ``accountName``/``accountCode``. Either spelling reaches whichever key the account has.
_ALIASES: Final = {
    "accountName": "name",
    "name": "accountName",
    "accountCode": "code",
    "code": "accountCode",
}
_ORDERINGS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_ESCAPES: Final = {'"': '"', "'": "'", "\\": "\\", "/": "/", "n": "\n", "r": "\r", "t": "\t"}


class FilterSyntaxError(ValueError):
    """An expression that cannot be parsed, placed at the offending character.

    ``position`` is a 0-based character offset into ``expression``; ``line`` and ``column``
    are 1-based. Errors at the end of the input point just past its last character.
    ``message`` says what is wrong (``unexpected ")"``) and ``hint`` what would have been
    accepted there, or is empty. ``str()`` gives ``unexpected ")" at line 1, column 14
    (expected a value)`` followed by the source line and a caret under the position.
    """

    expression: str
    position: int
    line: int
    column: int
    message: str
    hint: str

    def __init__(self, message: str, expression: str, position: int, hint: str = "") -> None:
        # The constructor arguments are also ``args`` so the exception pickles (it may cross
        # process boundaries in workers).
        super().__init__(message, expression, position, hint)
        self.message = message
        self.hint = hint
        self.expression = expression
        self.position = max(0, min(position, len(expression)))
        line_start = expression.rfind("\n", 0, self.position) + 1
        self.line = expression.count("\n", 0, self.position) + 1
        self.column = self.position - line_start + 1

    def __str__(self) -> str:
        hint = f" ({self.hint})" if self.hint else ""
        where = f"at line {self.line}, column {self.column}"
        return f"{self.message} {where}{hint}\n{self.excerpt()}"

    def excerpt(self, width: int = 60) -> str:
        """The offending source line (clipped to about ``width`` characters) and a caret."""
        line_start = self.expression.rfind("\n", 0, self.position) + 1
        line_end = self.expression.find("\n", self.position)
        if line_end == -1:
            line_end = len(self.expression)
        offset = self.position - line_start
        start = max(0, offset - width // 2)
        text = self.expression[line_start:line_end][start : start + width]
        # Tabs and other control characters would misplace the caret on a terminal.
        text = "".join(ch if ch.isprintable() else " " for ch in text)
        return f"  {text}\n  {' ' * (offset - start)}^"


# --------------------------------------------------------------------------------------------
# The tree and its evaluation
# --------------------------------------------------------------------------------------------


@attrs.frozen
class Path:
    """A field path such as ``address.country``."""

    segments: tuple[str, ...]

    def text(self) -> str:
        """The path in filter syntax, quoting segments that are not plain names."""
        return ".".join(
            segment if i == 0 or _is_plain_name(segment) else _quote(segment)
            for i, segment in enumerate(self.segments)
        )

    def resolve(self, account: Mapping[str, Any]) -> Any:
        """The value at this path in ``account``, or None when any step is missing."""
        first = self.segments[0]
        value = _child(account, first)
        if value is None and first in _ALIASES:
            value = _child(account, _ALIASES[first])
        for segment in self.segments[1:]:
            value = _child(value, segment)
        return value


@attrs.frozen
class Compare:
    """``path OP literal``."""

    path: Path
    op: str
    value: Scalar

    def evaluate(self, account: Mapping[str, Any]) -> bool:
        """Whether the comparison holds for ``account``."""
        actual = self.path.resolve(account)
        if self.op == "==":
            return _equals(actual, self.value)
        if self.op == "!=":
            return not _equals(actual, self.value)
        return _ordered(actual, self.op, self.value)


@attrs.frozen
class Membership:
    """``path in [...]`` (or ``not in`` when ``negated``)."""

    path: Path
    values: tuple[Scalar, ...]
    negated: bool = False

    def evaluate(self, account: Mapping[str, Any]) -> bool:
        """Whether the membership test holds for ``account``."""
        actual = self.path.resolve(account)
        found = any(_equals(actual, value) for value in self.values)
        return found != self.negated


@attrs.frozen
class Truthy:
    """A bare path: true when the value is not null, false, zero or empty."""

    path: Path

    def evaluate(self, account: Mapping[str, Any]) -> bool:
        """Whether the value at the path is truthy."""
        return _truthy(self.path.resolve(account))


@attrs.frozen
class Constant:
    """``true`` or ``false`` as a whole (sub)expression."""

    value: bool

    def evaluate(self, account: Mapping[str, Any]) -> bool:
        """The constant."""
        return self.value


@attrs.frozen
class Not:
    """``NOT operand``."""

    operand: Node

    def evaluate(self, account: Mapping[str, Any]) -> bool:
        """The negation of the operand."""
        return not self.operand.evaluate(account)


@attrs.frozen
class And:
    """``a AND b AND ...``, flattened so long chains do not nest."""

    operands: tuple[Node, ...]

    def evaluate(self, account: Mapping[str, Any]) -> bool:
        """True when every operand is (short-circuits)."""
        return all(operand.evaluate(account) for operand in self.operands)


@attrs.frozen
class Or:
    """``a OR b OR ...``, flattened so long chains do not nest."""

    operands: tuple[Node, ...]

    def evaluate(self, account: Mapping[str, Any]) -> bool:
        """True when any operand is (short-circuits)."""
        return any(operand.evaluate(account) for operand in self.operands)


Node = Compare | Membership | Truthy | Constant | Not | And | Or
"""A node of a parsed expression."""


def _child(value: Any, key: str) -> Any:
    if isinstance(value, Mapping):
        return value.get(key)
    return None


def _as_number(value: Any) -> Decimal | None:
    """``value`` as a comparable Decimal, or None when it is not a number (NaN is not)."""
    # bool is an int subclass; True must not equal 1 in a filter.
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        # str() gives the shortest repr, so 10.1 compares equal to the literal 10.1 rather
        # than to 10.0999999999999996447286321199499070644378662109375.
        number = Decimal(str(value))
    elif isinstance(value, str) and _NUMERIC_STRING.fullmatch(value):
        number = Decimal(value.strip())
    else:
        return None
    # NaN never orders and a signalling NaN raises even on ==, so it is "not a number" here.
    return None if number.is_nan() else number


def _equals(actual: Any, literal: Scalar) -> bool:
    if literal is None:
        return actual is None
    if isinstance(literal, bool):
        return isinstance(actual, bool) and actual is literal
    if isinstance(literal, Decimal):
        number = _as_number(actual)
        return number is not None and number == literal
    return isinstance(actual, str) and actual == literal


def _ordered(actual: Any, op: str, literal: Scalar) -> bool:
    left: Decimal | str
    right: Decimal | str
    if isinstance(literal, Decimal):
        number = _as_number(actual)
        if number is None:
            return False
        left, right = number, literal
    elif isinstance(literal, str) and isinstance(actual, str):
        left, right = actual, literal
    else:
        return False
    # Both sides have the same type here (finite-or-infinite Decimals, or strs), so the
    # comparison is defined and cannot raise.
    return _ORDERINGS[op](left, right)


def _truthy(value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int | float | Decimal):
        number = _as_number(value)
        return number is None or number != 0  # NaN counts as a (truthy) value
    if isinstance(value, Sized):
        return len(value) > 0
    return True


def _is_plain_name(segment: str) -> bool:
    return _IDENTIFIER.fullmatch(segment) is not None and segment.lower() not in _KEYWORDS


def _quote(text: str) -> str:
    escaped = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


# --------------------------------------------------------------------------------------------
# The filter
# --------------------------------------------------------------------------------------------


@attrs.frozen(repr=False)
class Filter:
    """A parsed filter expression; build it with :func:`parse`.

    ``source`` is the text it was parsed from and ``root`` the expression tree.
    """

    source: str
    root: Node

    def matches(self, account: Mapping[str, Any]) -> bool:
        """Whether ``account`` (m3ter Account JSON as a mapping) satisfies the filter.

        Never raises for JSON-like accounts: missing fields are null and incomparable values
        make ordering comparisons false.
        """
        return self.root.evaluate(account)

    def paths(self) -> frozenset[str]:
        """The field paths the expression refers to, as written (``"address.country"``).

        Segments that are not plain names are quoted as in the expression, so each path can
        be parsed back.
        """
        found: set[str] = set()
        stack: list[Node] = [self.root]
        while stack:
            node = stack.pop()
            if isinstance(node, Compare | Membership | Truthy):
                found.add(node.path.text())
            elif isinstance(node, Not):
                stack.append(node.operand)
            elif isinstance(node, And | Or):
                stack.extend(node.operands)
        return frozenset(found)

    def __repr__(self) -> str:
        return f"Filter({self.source!r})"


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


class _Located(Exception):
    """Raised inside parser callbacks, which know a position but not the whole expression."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message, position)
        self.message = message
        self.position = position


class _Built(NamedTuple):
    """A subexpression being built, with its nesting depth for the :data:`MAX_DEPTH` check."""

    node: Node
    depth: int


def _nest(token: Token, inner: _Built) -> int:
    depth = inner.depth + 1
    if depth > MAX_DEPTH:
        raise _Located(
            f"expression is nested too deeply (the limit is {MAX_DEPTH} levels)", _pos(token)
        )
    return depth


def _pos(token: Token) -> int:
    return token.start_pos if token.start_pos is not None else 0


def _decode_string(token: Token) -> str:
    body = str(token)[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        # The STRING terminal guarantees a character after every backslash.
        escape = body[i + 1]
        if escape in _ESCAPES:
            out.append(_ESCAPES[escape])
            i += 2
        elif escape == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2 : i + 6]):
            out.append(chr(int(body[i + 2 : i + 6], 16)))
            i += 6
        else:
            message = f'invalid escape "\\{escape}" in string'
            if escape == "u":
                message = "invalid escape in string: \\u needs 4 hex digits"
            raise _Located(message, _pos(token) + 1 + i)
    text = "".join(out)
    # JSON writes characters outside the BMP as two \u escapes; join such pairs so they equal
    # the account's string. Lone surrogates stay as they are.
    try:
        return text.encode("utf-16", "surrogatepass").decode("utf-16")
    except UnicodeDecodeError:
        return text


@v_args(inline=True)
class _Builder(Transformer[Token, _Built]):
    """Builds the tree while the LALR parser reduces, so nothing here recurses."""

    def path(self, *tokens: Token) -> Path:
        return Path(tuple(_decode_string(t) if t.type == "STRING" else str(t) for t in tokens))

    def value(self, token: Token) -> Scalar:
        kind = token.type
        if kind == "STRING":
            return _decode_string(token)
        if kind == "NUMBER":
            return Decimal(str(token))
        if kind == "NAME":
            return str(token)  # a bare word on the right-hand side is a string
        if kind == "NULL":
            return None
        return kind == "TRUE"

    def literal_list(self, *values: Scalar) -> tuple[Scalar, ...]:
        return values

    def comparison(self, path: Path, op: Token, value: Scalar) -> _Built:
        return _Built(Compare(path, str(op), value), 1)

    def membership(self, path: Path, values: tuple[Scalar, ...]) -> _Built:
        return _Built(Membership(path, values), 1)

    def non_membership(self, path: Path, _not: Token, values: tuple[Scalar, ...]) -> _Built:
        return _Built(Membership(path, values, negated=True), 1)

    def truthy(self, path: Path) -> _Built:
        return _Built(Truthy(path), 1)

    def constant(self, token: Token) -> _Built:
        return _Built(Constant(token.type == "TRUE"), 1)

    def negation(self, token: Token, inner: _Built) -> _Built:
        return _Built(Not(inner.node), _nest(token, inner))

    def group(self, lpar: Token, inner: _Built, _rpar: Token) -> _Built:
        # Parentheses add no node but do count towards the depth limit: the point of the
        # limit is a predictable cap on what people write, not only on the tree.
        return _Built(inner.node, _nest(lpar, inner))

    def and_expr(self, *items: _Built) -> _Built:
        # AND/OR levels are not checked here (no token to point at); they can only nest
        # through a group or NOT, which are, so the final tree stays within MAX_DEPTH + 2.
        return _Built(And(tuple(i.node for i in items)), 1 + max(i.depth for i in items))

    def or_expr(self, *items: _Built) -> _Built:
        return _Built(Or(tuple(i.node for i in items)), 1 + max(i.depth for i in items))


@functools.cache
def _parser() -> Lark:
    # Built on first use: constructing the LALR tables costs tens of milliseconds, which
    # importing billbridge should not pay. The transformer is stateless, so sharing the
    # parser between threads is safe.
    return Lark(_GRAMMAR, parser="lalr", lexer="basic", transformer=_Builder())


# How terminals are named in "expected ..." hints, in the order they are listed.
_TERMINAL_NAMES: Final = {
    "COMP_OP": "a comparison operator",
    "IN or NOT IN": "IN or NOT IN",
    "_IN": "IN",
    "_DOT": '"."',
    "_AND": "AND",
    "_OR": "OR",
    "NOT": "NOT",
    "BANG": '"!"',
    "NAME": "a name",
    "STRING": "a string",
    "NUMBER": "a number",
    "TRUE": "true",
    "FALSE": "false",
    "NULL": "null",
    "LPAR": '"("',
    "RPAR": '")"',
    "_LSQB": '"["',
    "_COMMA": '","',
    "_RSQB": '"]"',
    "$END": "end of expression",
}
# Sets of terminals that read better as one word: everything a literal can start with, and
# everything a condition can start with.
_GROUPS: Final = (
    ("a value", frozenset({"STRING", "NUMBER", "NAME", "TRUE", "FALSE", "NULL"})),
    ("a condition", frozenset({"NAME", "TRUE", "FALSE", "NOT", "BANG", "LPAR"})),
)
_CHARACTER_HINTS: Final = {
    "=": "use == to compare",
    "&": "use && or AND",
    "|": "use || or OR",
}


def _expected(terminals: set[str] | frozenset[str]) -> str:
    names = set(terminals)
    words: list[str] = []
    if {"_IN", "NOT"} <= names:
        # After a path, NOT can only start "NOT IN".
        names = (names - {"_IN", "NOT"}) | {"IN or NOT IN"}
    for word, group in _GROUPS:
        if group <= names:
            names -= group
            words.append(word)
    order = list(_TERMINAL_NAMES)
    for name in sorted(names, key=lambda n: order.index(n) if n in order else len(order)):
        words.append(_TERMINAL_NAMES.get(name, name))
    if not words:
        return ""
    if len(words) == 1:
        return f"expected {words[0]}"
    return f"expected one of: {', '.join(words)}"


def _acceptable(error: UnexpectedToken) -> set[str]:
    """The terminals the parser would have taken instead of ``error.token``."""
    # error.expected lists the LALR state's whole action table, which after merged states
    # includes terminals that cannot actually follow (a "]" after a top-level comparison);
    # asking the interactive parser gives only the real ones.
    parser = error.interactive_parser
    if parser is None:
        return set(error.expected)
    try:
        return set(parser.accepts())  # type: ignore[no-untyped-call]  # lark lacks a hint
    except Exception:
        # Replaying reductions can, in theory, hit the nesting limit; the rough set will do
        # for a hint.
        return set(error.expected)


def _show(text: str) -> str:
    if len(text) > 30:
        text = text[:27] + "..."
    # Control characters and the like would garble the one-line message.
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)


def _convert(error: UnexpectedInput, expression: str) -> FilterSyntaxError:
    if isinstance(error, UnexpectedCharacters):
        position = error.pos_in_stream or 0
        char = expression[position : position + 1]
        if char in ("'", '"'):
            return FilterSyntaxError("unterminated string", expression, position)
        hint = _CHARACTER_HINTS.get(char, "")
        return FilterSyntaxError(
            f'unexpected character "{_show(char)}"', expression, position, hint
        )
    if isinstance(error, UnexpectedToken) and error.token.type != "$END":
        token = error.token
        what = (
            f"string {_show(token.value)}" if token.type == "STRING" else f'"{_show(token.value)}"'
        )
        return FilterSyntaxError(
            f"unexpected {what}", expression, _pos(token), _expected(_acceptable(error))
        )
    # End of input. lark gives $END the position of the last token, so use the real end.
    expected: set[str] = set()
    if isinstance(error, UnexpectedToken):
        expected = _acceptable(error)
    elif isinstance(error, UnexpectedEOF):
        expected = set(error.expected)
    return FilterSyntaxError(
        "unexpected end of expression", expression, len(expression), _expected(expected)
    )


def parse(expression: str) -> Filter:
    """Parse a filter expression.

    Raises :class:`FilterSyntaxError` (and nothing else) for any string that is not a valid
    expression, including an empty one and one over :data:`MAX_LENGTH` characters or
    :data:`MAX_DEPTH` levels of nesting.
    """
    if len(expression) > MAX_LENGTH:
        raise FilterSyntaxError(
            f"expression is too long ({len(expression)} characters, the limit is {MAX_LENGTH})",
            expression,
            MAX_LENGTH,
        )
    if not expression.strip():
        raise FilterSyntaxError("empty expression", expression, 0)
    try:
        # The transformer turns the parse into a _Built; lark's stubs only know about trees.
        built = cast(_Built, _parser().parse(expression))
    except _Located as error:
        raise FilterSyntaxError(error.message, expression, error.position) from None
    except UnexpectedInput as error:
        raise _convert(error, expression) from None
    except LarkError as error:  # pragma: no cover - defensive: lark has no other input errors
        raise FilterSyntaxError(f"invalid expression ({error})", expression, 0) from None
    return Filter(expression, built.node)


_parse_cached = functools.lru_cache(maxsize=512)(parse)


def matches(expression: str, account: Mapping[str, Any]) -> bool:
    """Whether ``account`` satisfies ``expression``; parsed filters are cached.

    Raises :class:`FilterSyntaxError` when the expression does not parse.
    """
    return _parse_cached(expression).matches(account)
