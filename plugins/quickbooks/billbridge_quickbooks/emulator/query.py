"""The subset of QuickBooks' query language the emulator understands, parsed for real.

::

    SELECT * | COUNT(*) | Field [, Field …] FROM Entity
      [WHERE condition [AND condition …]]
      [ORDERBY Field [ASC|DESC] [, …]]
      [STARTPOSITION n] [MAXRESULTS n]

    condition := Field (= | < | > | <= | >= | !=) value
               | Field LIKE 'text with % wildcards'
               | Field IN (value [, value …])
    value     := 'single-quoted, \\' for a quote' | number | true | false

As in QuickBooks (REFERENCE.md): keywords and field names are case-insensitive, there is no
``OR`` (a parse error, code 4000), ``STARTPOSITION`` is 1-based, ``MAXRESULTS`` defaults to 100
and may not exceed 1000, ``LIKE`` compares without regard to case, a reference field
(``CustomerRef``) compares its ``value``, dotted paths reach into objects
(``MetaData.LastUpdatedTime``), and name-list entities (those with an ``Active`` field) return
only active rows unless the query says something about ``Active``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

__all__ = ["Condition", "Query", "QueryError", "evaluate", "parse_query"]

DEFAULT_MAX_RESULTS = 100
MAX_RESULTS_LIMIT = 1000


class QueryError(ValueError):
    """The statement does not parse, or asks for something QuickBooks refuses."""


_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>'(?:\\.|[^'\\])*')
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[*(),])
    """,
    re.VERBOSE,
)


@attrs.frozen
class _Token:
    kind: str
    text: str
    column: int

    @property
    def upper(self) -> str:
        return self.text.upper()


def _tokens(statement: str) -> list[_Token]:
    found: list[_Token] = []
    position = 0
    while position < len(statement):
        match = _TOKEN.match(statement, position)
        if match is None:
            raise QueryError(
                f'QueryParserError: Encountered "{statement[position]}" at line 1, column '
                f"{position + 1}."
            )
        kind = match.lastgroup or ""
        if kind != "space":
            found.append(_Token(kind, match.group(), position + 1))
        position = match.end()
    return found


@attrs.frozen
class Condition:
    """``field op value`` (``op`` one of = < > <= >= != LIKE IN)."""

    field: str
    op: str
    values: tuple[Any, ...]


@attrs.frozen
class Query:
    """A parsed statement."""

    entity: str
    fields: tuple[str, ...] | None  # None: select *
    count: bool
    where: tuple[Condition, ...]
    order_by: tuple[tuple[str, bool], ...]  # (field, descending)
    start: int
    max_results: int


class _Parser:
    def __init__(self, statement: str) -> None:
        self.statement = statement
        self.tokens = _tokens(statement)
        self.index = 0

    def error(self, token: _Token | None, expected: str = "") -> QueryError:
        if token is None:
            return QueryError(
                "QueryParserError: Encountered <EOF> at line 1"
                + (f"; expected {expected}" if expected else "")
            )
        if token.kind == "word" and token.upper == "OR":
            return QueryError(
                f'QueryParserError: Encountered " <OR> "OR "" at line 1, column {token.column}. '
                "OR is not supported in QuickBooks queries."
            )
        return QueryError(
            f'QueryParserError: Encountered "{token.text}" at line 1, column {token.column}.'
            + (f" Was expecting {expected}." if expected else "")
        )

    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def next(self, expected: str = "") -> _Token:
        token = self.peek()
        if token is None:
            raise self.error(None, expected)
        self.index += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "word" and token.upper == word:
            self.index += 1
            return True
        return False

    def expect_keyword(self, word: str) -> None:
        token = self.next(word)
        if token.kind != "word" or token.upper != word:
            raise self.error(token, word)

    def expect(self, text: str) -> None:
        token = self.next(repr(text))
        if token.text != text:
            raise self.error(token, repr(text))

    def field(self) -> str:
        token = self.next("a field name")
        if token.kind != "word" or token.upper in _KEYWORDS:
            raise self.error(token, "a field name")
        return token.text

    def integer(self) -> int:
        token = self.next("a number")
        if token.kind != "number" or not token.text.isdigit():
            raise self.error(token, "a positive integer")
        return int(token.text)

    def value(self) -> Any:
        token = self.next("a value")
        if token.kind == "string":
            return _unquote(token.text)
        if token.kind == "number":
            return Decimal(token.text)
        if token.kind == "word" and token.upper in ("TRUE", "FALSE"):
            return token.upper == "TRUE"
        raise self.error(token, "a quoted string, a number, true or false")

    def parse(self) -> Query:
        self.expect_keyword("SELECT")
        fields: list[str] | None = None
        count = False
        token = self.peek()
        if token is not None and token.text == "*":
            self.index += 1
        elif self.keyword("COUNT"):
            self.expect("(")
            self.expect("*")
            self.expect(")")
            count = True
        else:
            fields = [self.field()]
            while (token := self.peek()) is not None and token.text == ",":
                self.index += 1
                fields.append(self.field())
        self.expect_keyword("FROM")
        entity = self.field()
        where: list[Condition] = []
        if self.keyword("WHERE"):
            where.append(self.condition())
            while self.keyword("AND"):
                where.append(self.condition())
        order: list[tuple[str, bool]] = []
        if self.keyword("ORDERBY") or (self.keyword("ORDER") and self._by()):
            order.append(self.order_item())
            while (token := self.peek()) is not None and token.text == ",":
                self.index += 1
                order.append(self.order_item())
        start = 1
        max_results = DEFAULT_MAX_RESULTS
        if self.keyword("STARTPOSITION"):
            start = self.integer()
        if self.keyword("MAXRESULTS"):
            max_results = self.integer()
        token = self.peek()
        if token is not None:
            raise self.error(token)
        if start < 1:
            raise QueryError("QueryValidationError: STARTPOSITION must be 1 or more")
        if not 1 <= max_results <= MAX_RESULTS_LIMIT:
            raise QueryError(
                f"QueryValidationError: MAXRESULTS must be between 1 and {MAX_RESULTS_LIMIT}"
            )
        return Query(
            entity=entity,
            fields=tuple(fields) if fields is not None else None,
            count=count,
            where=tuple(where),
            order_by=tuple(order),
            start=start,
            max_results=max_results,
        )

    def _by(self) -> bool:
        self.expect_keyword("BY")
        return True

    def order_item(self) -> tuple[str, bool]:
        name = self.field()
        if self.keyword("DESC"):
            return name, True
        self.keyword("ASC")
        return name, False

    def condition(self) -> Condition:
        name = self.field()
        token = self.next("an operator")
        if token.kind == "op":
            op = "!=" if token.text == "<>" else token.text
            return Condition(name, op, (self.value(),))
        if token.kind == "word" and token.upper == "LIKE":
            pattern = self.value()
            if not isinstance(pattern, str):
                raise self.error(token, "a quoted pattern after LIKE")
            return Condition(name, "LIKE", (pattern,))
        if token.kind == "word" and token.upper == "IN":
            self.expect("(")
            values = [self.value()]
            while (nxt := self.peek()) is not None and nxt.text == ",":
                self.index += 1
                values.append(self.value())
            self.expect(")")
            return Condition(name, "IN", tuple(values))
        raise self.error(token, "=, <, >, <=, >=, !=, LIKE or IN")


_KEYWORDS = frozenset(
    {"SELECT", "FROM", "WHERE", "AND", "OR", "ORDERBY", "ORDER", "BY", "ASC", "DESC", "LIKE"}
    | {"IN", "STARTPOSITION", "MAXRESULTS", "COUNT"}
)


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


def parse_query(statement: str) -> Query:
    """Parse ``statement`` or raise :class:`QueryError` with QuickBooks' kind of message."""
    return _Parser(statement).parse()


# --- evaluation ---------------------------------------------------------------------------------


def _get(row: Mapping[str, Any], path: str) -> Any:
    value: Any = row
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        lowered = part.lower()
        value = next((v for k, v in value.items() if k.lower() == lowered), None)
    if isinstance(value, Mapping) and "value" in value:
        # A reference (CustomerRef, ItemRef...) compares by its id.
        return value["value"]
    return value


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            return None
    return None


def _compare(actual: Any, wanted: Any) -> int | None:
    """-1/0/1 comparing a row's value with a literal, or None when they cannot be compared."""
    if actual is None:
        return None
    if isinstance(wanted, bool):
        if isinstance(actual, bool):
            return (actual > wanted) - (actual < wanted)
        if isinstance(actual, str) and actual.lower() in ("true", "false"):
            as_bool = actual.lower() == "true"
            return (as_bool > wanted) - (as_bool < wanted)
        return None
    if isinstance(wanted, Decimal):
        number = _number(actual)
        if number is None:
            return None
        return (number > wanted) - (number < wanted)
    if isinstance(actual, bool):
        text = "true" if actual else "false"
    elif isinstance(actual, int | Decimal | str):
        text = str(actual)
    else:
        return None
    # Ids are numbers written as strings: compare them as numbers when both sides are.
    left, right = _number(text), _number(wanted)
    if left is not None and right is not None:
        return (left > right) - (left < right)
    a, b = text.lower(), str(wanted).lower()
    return (a > b) - (a < b)


def _like(actual: Any, pattern: str) -> bool:
    if actual is None or isinstance(actual, Mapping | list):
        return False
    regex = "".join(".*" if ch == "%" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, str(actual), re.IGNORECASE | re.DOTALL) is not None


def _matches(row: Mapping[str, Any], condition: Condition) -> bool:
    actual = _get(row, condition.field)
    if condition.op == "LIKE":
        return _like(actual, condition.values[0])
    if condition.op == "IN":
        return any(_compare(actual, v) == 0 for v in condition.values)
    result = _compare(actual, condition.values[0])
    if result is None:
        return condition.op == "!="
    return {
        "=": result == 0,
        "!=": result != 0,
        "<": result < 0,
        ">": result > 0,
        "<=": result <= 0,
        ">=": result >= 0,
    }[condition.op]


def _sort_key(value: Any) -> tuple[int, Any]:
    number = _number(value) if not isinstance(value, bool) else None
    if value is None:
        return (2, "")
    if number is not None:
        return (0, number)
    return (1, str(value).lower())


def evaluate(
    query: Query, rows: Iterable[Mapping[str, Any]], *, has_active: bool
) -> tuple[list[dict[str, Any]], int]:
    """``(page of rows, total matching)`` for ``query`` over ``rows`` (in Id order)."""
    conditions: Sequence[Condition] = query.where
    if has_active and not any(c.field.lower() == "active" for c in conditions):
        # Name lists answer only active rows unless asked (QuickBooks' documented default).
        conditions = (*conditions, Condition("Active", "=", (True,)))
    matching = [dict(row) for row in rows if all(_matches(row, c) for c in conditions)]
    # Sorted by the last key first: sort() is stable, so earlier keys end up deciding.
    for name, descending in reversed(query.order_by):
        keyed = [(_get(r, name), r) for r in matching]
        present = [(v, r) for v, r in keyed if v is not None]
        present.sort(key=lambda pair: _sort_key(pair[0]), reverse=descending)
        # Rows without the field come last whatever the direction.
        matching = [r for _, r in present] + [r for v, r in keyed if v is None]
    total = len(matching)
    page = matching[query.start - 1 : query.start - 1 + query.max_results]
    if query.fields is not None:
        wanted = {f.lower() for f in query.fields} | {"id"}
        page = [{k: v for k, v in row.items() if k.lower() in wanted} for row in page]
    return page, total
