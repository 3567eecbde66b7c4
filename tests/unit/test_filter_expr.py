"""Tests of the account filter language (billbridge.domain.filter_expr)."""

from __future__ import annotations

import math
import pickle
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billbridge.domain.filter_expr import (
    MAX_DEPTH,
    MAX_LENGTH,
    Compare,
    Filter,
    FilterSyntaxError,
    Truthy,
    matches,
    parse,
)

ACME: dict[str, Any] = {
    "id": "28b1c3e0-0000-4000-8000-000000000001",
    "name": "Acme Ltd",
    "code": "ACME-UK-001",
    "currency": "GBP",
    "address": {"country": "UK", "locality": "Springfield"},
    "customFields": {"country": "UK", "accountManagerEmail": "sam@billing.example"},
}
INITECH: dict[str, Any] = {
    "id": "2cd2a7f4-0000-4000-8000-000000000002",
    "name": "Initech",
    "code": "INITECH",
    "currency": "USD",
    "address": {"country": "US"},
}
# Every kind of value a custom field can hold, for the semantics tables.
ODD: dict[str, Any] = {
    "name": "odd",
    "customFields": {
        "seats": 10.5,
        "users": 10,
        "big": 10**30,
        "price": Decimal("19.990"),
        "text42": "42",
        "padded": " -1.5 ",
        "words": "forty two",
        "vip": True,
        "off": False,
        "zero": 0,
        "zerof": 0.0,
        "empty": "",
        "emptyList": [],
        "emptyObj": {},
        "list": ["UK"],
        "falseText": "false",
        "nan": math.nan,
        "dnan": Decimal("NaN"),
        "snan": Decimal("sNaN"),
        "inf": math.inf,
        "my key": "spaced",
        "in": "reserved",
        'quote"d': 1,
        "Upper": "Zebra",
        "lower": "apple",
        "uni": "Zürich",
        "nullValue": None,
    },
}
ALIASED: dict[str, Any] = {"accountName": "Legacy Co", "accountCode": "LEG-1"}

CASES: list[tuple[str, Mapping[str, Any], bool]] = [
    # The examples from DESIGN.
    ('customFields != null AND customFields.country == "UK"', ACME, True),
    ('customFields != null AND customFields.country == "UK"', INITECH, False),
    ("address.country == US", ACME, False),
    ("address.country == US", INITECH, True),
    ('NOT (currency in ["USD", "CAD"]) || code == \'ACME-UK-001\'', ACME, True),
    ('NOT (currency in ["USD", "CAD"]) || code == \'ACME-UK-001\'', INITECH, False),
    # Each comparison operator on strings (exact, case-sensitive, code-point order).
    ('currency == "GBP"', ACME, True),
    ('currency == "gbp"', ACME, False),
    ('currency != "GBP"', ACME, False),
    ('currency != "USD"', ACME, True),
    ('name < "B"', ACME, True),
    ('name < "Acme Ltd"', ACME, False),
    ('name <= "Acme Ltd"', ACME, True),
    ('name > "Acme"', ACME, True),
    ('name >= "acme"', ACME, False),  # "A" < "a"
    ('customFields.uni > "Z"', ODD, True),
    # Each comparison operator on numbers, compared as Decimal.
    ("customFields.seats > 10", ODD, True),
    ("customFields.seats >= 10.5", ODD, True),
    ("customFields.seats == 10.50", ODD, True),
    ("customFields.seats < 10.5", ODD, False),
    ("customFields.seats <= 10.5", ODD, True),
    ("customFields.seats != 10.5", ODD, False),
    ("customFields.users == 10.0", ODD, True),
    ("customFields.users > -10", ODD, True),
    ("customFields.big > 999999999999999999999999999999", ODD, True),
    ("customFields.big == 1000000000000000000000000000000", ODD, True),
    ("customFields.price == 19.99", ODD, True),
    ("customFields.zero == -0", ODD, True),
    ("customFields.inf > 1000000", ODD, True),
    # Numeric strings in the account compare numerically with number literals...
    ("customFields.text42 > 10", ODD, True),
    ("customFields.text42 == 42.0", ODD, True),
    ("customFields.padded == -1.5", ODD, True),
    ("customFields.words > 10", ODD, False),
    # ...but a quoted literal is a string, and strings never equal numbers.
    ('customFields.text42 == "42"', ODD, True),
    ('customFields.users == "10"', ODD, False),
    ('customFields.text42 > "100"', ODD, True),  # string order: "4" > "1"
    # NaN is not a number: never equal, never ordered; != is still the negation of ==.
    ("customFields.nan == 0", ODD, False),
    ("customFields.nan < 0", ODD, False),
    ("customFields.nan >= 0", ODD, False),
    ("customFields.nan != 0", ODD, True),
    ("customFields.dnan > 0", ODD, False),
    ("customFields.snan == 1", ODD, False),
    ("customFields.snan <= 1", ODD, False),
    # Booleans equal only booleans (True is not 1).
    ("customFields.vip == true", ODD, True),
    ("customFields.vip == TRUE", ODD, True),
    ("customFields.vip == 1", ODD, False),
    ("customFields.vip != false", ODD, True),
    ("customFields.off == False", ODD, True),
    ("customFields.zero == false", ODD, False),
    ("customFields.falseText == false", ODD, False),
    ("customFields.vip > false", ODD, False),
    # Ordering with null or mismatched types is false, whatever the operator.
    ("customFields.missing < 5", ODD, False),
    ("customFields.missing >= 5", ODD, False),
    ('customFields.missing > "a"', ODD, False),
    ("customFields.missing <= null", ODD, False),
    ('customFields.seats > "a"', ODD, False),
    ("currency > 5", ACME, False),
    ("customFields > 5", ACME, False),
    ('customFields.list >= "UK"', ODD, False),
    ("customFields.users < true", ODD, False),
    # null and missing fields.
    ("customFields == null", INITECH, True),
    ("customFields != null", INITECH, False),
    ("customFields == NULL", ACME, False),
    ("customFields.country == null", INITECH, True),
    ('customFields.country != "UK"', INITECH, True),
    ("customFields.nullValue == null", ODD, True),
    ("address.country.code == null", ACME, True),  # through a string
    ("customFields.list.UK == null", ODD, True),  # through a list
    ("nothing.at.all == null", {}, True),
    ("customFields.missing in [null, 1]", ODD, True),
    # Bare words on the right are strings; keywords are not bare words.
    ("currency == GBP", ACME, True),
    ("currency == gbp", ACME, False),
    ("customFields.uni == Zürich", ODD, True),
    ("currency in [GBP, USD]", ACME, True),
    ("currency == null_", ACME, False),  # the name "null_", not null
    # Quotes and escapes.
    ("code == 'ACME-UK-001'", ACME, True),
    ('code == "ACME-UK-001"', ACME, True),
    (r"""customFields."quote\"d" == 1""", ODD, True),
    ("customFields.'quote\"d' == 1", ODD, True),
    (r"customFields.'my key' == 'spaced'", ODD, True),
    ('customFields."my key" == spaced', ODD, True),
    ('customFields."in" == reserved', ODD, True),
    (r'customFields.uni == "Z\u00fcrich"', ODD, True),
    (r'customFields.uni == "Z\u00FCrich"', ODD, True),
    (r'name == "tab\there"', {"name": "tab\there"}, True),
    (r'name == "a\\b\/c\nd\re"', {"name": "a\\b/c\nd\re"}, True),
    (r"name == 'it\'s'", {"name": "it's"}, True),
    ("name == 'say \"hi\"'", {"name": 'say "hi"'}, True),
    ('name == "two\nlines"', {"name": "two\nlines"}, True),
    (r'name == "\ud83d\ude00"', {"name": "\N{GRINNING FACE}"}, True),
    ('name == ""', {"name": ""}, True),
    # Aliases: accountName/accountCode reach name/code and the other way round.
    ('accountName == "Acme Ltd"', ACME, True),
    ('accountCode == "ACME-UK-001"', ACME, True),
    ("accountCode in [INITECH]", INITECH, True),
    ("name == 'Legacy Co'", ALIASED, True),
    ("code == 'LEG-1'", ALIASED, True),
    ("accountName == 'Legacy Co'", ALIASED, True),
    ("accountName == 'x'", {"accountName": None, "name": "x"}, True),
    ("currencyCode == null", ACME, True),  # no alias for other fields
    # in / not in.
    ('currency in ["USD", "CAD"]', INITECH, True),
    ('currency in ["USD", "CAD"]', ACME, False),
    ('currency IN ["GBP",]', ACME, True),
    ("currency in []", ACME, False),
    ('currency not in ["USD", "CAD"]', ACME, True),
    ('currency NOT IN ["USD", "CAD"]', INITECH, False),
    ("currency not in []", ACME, True),
    ("customFields.seats in [1, 10.5]", ODD, True),
    ("customFields.text42 in [42]", ODD, True),
    ("customFields.vip in [1, true]", ODD, True),
    ("customFields.missing not in [null]", ODD, False),
    # Boolean operators, keyword and symbol forms, any case.
    ("currency == GBP AND address.country == UK", ACME, True),
    ("currency == GBP and address.country == US", ACME, False),
    ("currency == GBP And address.country == UK", ACME, True),
    ("currency == GBP && address.country == UK", ACME, True),
    ("currency==GBP&&address.country==UK", ACME, True),
    ("currency == USD OR address.country == UK", ACME, True),
    ("currency == USD or address.country == US", ACME, False),
    ("currency == USD || address.country == UK", ACME, True),
    ("currency==USD||address.country==UK", ACME, True),
    ("NOT currency == USD", ACME, True),
    ("not currency == GBP", ACME, False),
    ("Not currency == GBP", ACME, False),
    ("!currency == GBP", ACME, False),
    ("! currency == USD", ACME, True),
    ("!!currency == GBP", ACME, True),
    ("NOT NOT currency == GBP", ACME, True),
    ("NOT !currency == GBP", ACME, True),
    # Precedence: NOT > AND > OR, and parentheses override it.
    ("currency == USD OR currency == GBP AND code == NOPE", ACME, False),
    ("currency == GBP OR currency == USD AND code == NOPE", ACME, True),
    ("(currency == GBP OR currency == USD) AND code == NOPE", ACME, False),
    ("code == NOPE AND currency == USD OR currency == GBP", ACME, True),
    ("code == NOPE AND (currency == USD OR currency == GBP)", ACME, False),
    ("NOT currency == USD AND code == NOPE", ACME, False),
    ("NOT (currency == USD AND code == NOPE)", ACME, True),
    ("!currency == GBP || currency == GBP", ACME, True),
    ("!(currency == GBP || currency == GBP)", ACME, False),
    ("((((currency == GBP))))", ACME, True),
    ("(currency == GBP) && (((address.country == UK)))", ACME, True),
    ("currency == GBP\n  AND\n\taddress.country == UK\n", ACME, True),
    # Bare paths test truthiness.
    ("customFields", ACME, True),
    ("customFields", INITECH, False),
    ("customFields.vip", ODD, True),
    ("customFields.off", ODD, False),
    ("customFields.zero", ODD, False),
    ("customFields.zerof", ODD, False),
    ("customFields.users", ODD, True),
    ("customFields.nan", ODD, True),
    ("customFields.empty", ODD, False),
    ("customFields.emptyList", ODD, False),
    ("customFields.emptyObj", ODD, False),
    ("customFields.list", ODD, True),
    ("customFields.falseText", ODD, True),
    ("customFields.missing", ODD, False),
    ("!customFields.missing", ODD, True),
    ("customFields.vip AND currency == null", ODD, True),
    ("accountName", ACME, True),
    # Keyword prefixes inside names are names.
    ("index == 1 or nullable or order or notes or android or truely", {"notes": "n"}, True),
    # Constants.
    ("true", {}, True),
    ("FALSE", ACME, False),
    ("false OR currency == GBP", ACME, True),
    ("true AND NOT true", ACME, False),
]


@pytest.mark.parametrize(("expression", "account", "expected"), CASES)
def test_examples(expression: str, account: Mapping[str, Any], expected: bool) -> None:
    assert parse(expression).matches(account) is expected
    assert matches(expression, account) is expected


def test_numbers_are_decimals() -> None:
    root = parse("customFields.seats > -10.50").root
    assert isinstance(root, Compare)
    assert type(root.value) is Decimal
    assert root.value == Decimal("-10.50")


def test_filter_object() -> None:
    source = 'customFields != null AND customFields.country == "UK"'
    f = parse(source)
    assert isinstance(f, Filter)
    assert f.source == source
    assert repr(f) == f"Filter({source!r})"
    assert f == parse(source)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        f.source = "x"  # type: ignore[misc]


def test_paths() -> None:
    f = parse(
        "customFields != null AND customFields.country == 'UK' "
        "OR accountName in [a] OR !customFields.\"my key\" OR customFields.'in' > 1 "
        "OR (address.country not in [US] AND true) OR code"
    )
    assert f.paths() == frozenset(
        {
            "customFields",
            "customFields.country",
            "accountName",
            'customFields."my key"',
            'customFields."in"',
            "address.country",
            "code",
        }
    )
    assert parse("true").paths() == frozenset()


def test_matches_reraises_syntax_errors_each_time() -> None:
    for _ in range(2):
        with pytest.raises(FilterSyntaxError, match="unexpected end"):
            matches("currency ==", ACME)


# --------------------------------------------------------------------------------------------
# Syntax errors
# --------------------------------------------------------------------------------------------

ERRORS: list[tuple[str, int, int, int, str]] = [
    # expression, position, line, column, message
    ("(currency == GBP))", 17, 1, 18, 'unexpected ")"'),
    ("currency == )", 12, 1, 13, 'unexpected ")"'),
    ("currency ==", 11, 1, 12, "unexpected end of expression"),
    ("currency == GBP AND  ", 21, 1, 22, "unexpected end of expression"),
    ("(currency == GBP", 16, 1, 17, "unexpected end of expression"),
    ("currency in [GBP", 16, 1, 17, "unexpected end of expression"),
    ("currency = GBP", 9, 1, 10, 'unexpected character "="'),
    ("currency == GBP & x", 16, 1, 17, 'unexpected character "&"'),
    ("currency == 'GBP", 12, 1, 13, "unterminated string"),
    ('currency == "a\\qb"', 14, 1, 15, 'invalid escape "\\q" in string'),
    ('currency == "\\u12x4"', 13, 1, 14, "invalid escape in string"),
    ("currency GBP", 9, 1, 10, 'unexpected "GBP"'),
    ('"currency" == GBP', 0, 1, 1, 'unexpected string "currency"'),
    ("and == 1", 0, 1, 1, 'unexpected "and"'),
    ("currency == and", 12, 1, 13, 'unexpected "and"'),
    ("currency == in", 12, 1, 13, 'unexpected "in"'),
    ("currency == US.x", 14, 1, 15, 'unexpected "."'),
    ("currency == ACME-UK", 16, 1, 17, 'unexpected character "-"'),
    ("currency in [1,,2]", 15, 1, 16, 'unexpected ","'),
    ("currency ! in [1]", 9, 1, 10, 'unexpected "!"'),
    ("null", 0, 1, 1, 'unexpected "null"'),
    ("currency == 1.", 13, 1, 14, 'unexpected "."'),
    ("a.1 == 2", 2, 1, 3, 'unexpected "1"'),
    ("()", 1, 1, 2, 'unexpected ")"'),
    ("", 0, 1, 1, "empty expression"),
    ("  \n\t ", 0, 1, 1, "empty expression"),
    # Multi-line input: line and column follow the newlines.
    ('currency == "GBP"\nAND (\n  address.country == )', 45, 3, 22, 'unexpected ")"'),
    ("currency == GBP or\n  code == 'x", 29, 2, 11, "unterminated string"),
    ("currency ==\n", 12, 2, 1, "unexpected end of expression"),
    ("a == 1\n\n\t&& b c", 14, 3, 7, 'unexpected "c"'),
]


@pytest.mark.parametrize(("expression", "position", "line", "column", "message"), ERRORS)
def test_syntax_error_positions(
    expression: str, position: int, line: int, column: int, message: str
) -> None:
    with pytest.raises(FilterSyntaxError) as caught:
        parse(expression)
    error = caught.value
    assert (error.position, error.line, error.column) == (position, line, column)
    assert error.message.startswith(message)
    assert error.expression == expression
    assert str(error).startswith(f"{error.message} at line {line}, column {column}")


def test_syntax_error_text() -> None:
    with pytest.raises(FilterSyntaxError) as caught:
        parse("a == 1 && (b))")
    error = caught.value
    assert isinstance(error, ValueError)
    first, source, caret = str(error).split("\n")
    assert first == 'unexpected ")" at line 1, column 14 (expected end of expression)'
    assert source == "  a == 1 && (b))"
    assert caret == "  " + " " * 13 + "^"


def test_syntax_error_hints() -> None:
    with pytest.raises(FilterSyntaxError) as caught:
        parse("currency ==")
    assert caught.value.hint == "expected a value"
    with pytest.raises(FilterSyntaxError) as caught:
        parse("currency = GBP")
    assert caught.value.hint == "use == to compare"
    with pytest.raises(FilterSyntaxError) as caught:
        parse("a &&")
    assert caught.value.hint == "expected a condition"


def test_syntax_error_pickles() -> None:
    with pytest.raises(FilterSyntaxError) as caught:
        parse("a ==\n)")
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (copy.message, copy.position, copy.line, copy.column, copy.hint) == (
        caught.value.message,
        caught.value.position,
        caught.value.line,
        caught.value.column,
        caught.value.hint,
    )
    assert str(copy) == str(caught.value)


def test_length_limit() -> None:
    longest = "a == " + "x" * (MAX_LENGTH - 5)
    assert parse(longest).matches({"a": "x" * (MAX_LENGTH - 5)})
    with pytest.raises(FilterSyntaxError, match="too long") as caught:
        parse(longest + "x")
    assert caught.value.position == MAX_LENGTH


@pytest.mark.parametrize(
    ("opening", "closing"), [("!", ""), ("NOT ", ""), ("(", ")"), ("!(", ")"), ("(a && ", ")")]
)
def test_depth_limit(opening: str, closing: str) -> None:
    # Each opening adds one or two levels, so 49 of them stay within the limit...
    assert isinstance(parse(opening * 49 + "a" + closing * 49).matches({"a": True}), bool)
    # ...and 200 go over it, well within the length limit, with a FilterSyntaxError rather
    # than a RecursionError.
    too_deep = opening * 200 + "a" + closing * 200
    assert len(too_deep) <= MAX_LENGTH
    with pytest.raises(FilterSyntaxError, match="nested too deeply") as caught:
        parse(too_deep)
    # The error points at an opening operator.
    assert too_deep[caught.value.position] in "!N("


def test_depth_limit_boundary() -> None:
    # MAX_DEPTH - 1 negations of a false condition, plus the condition itself.
    assert parse("!" * (MAX_DEPTH - 1) + "a").matches({}) is (MAX_DEPTH % 2 == 0)
    assert parse("(" * (MAX_DEPTH - 1) + "a" + ")" * (MAX_DEPTH - 1)).matches({"a": 1})
    with pytest.raises(FilterSyntaxError, match="nested too deeply"):
        parse("!" * MAX_DEPTH + "a")
    with pytest.raises(FilterSyntaxError, match="nested too deeply"):
        parse("(" * MAX_DEPTH + "a" + ")" * MAX_DEPTH)


def test_long_flat_chains_do_not_nest() -> None:
    # AND/OR chains are flattened, so hundreds of operands are fine within the length limit.
    conjunction = " && ".join(["a"] * 799)
    assert parse(conjunction).matches({"a": 1})
    disjunction = " OR ".join(["a == 1"] * 399)
    assert not parse(disjunction).matches({"a": 2})


# --------------------------------------------------------------------------------------------
# Property-based tests
# --------------------------------------------------------------------------------------------

FAST = settings(max_examples=150, deadline=None)

# A generated expression is a plain tuple tree, independent of the module's node classes:
#   ("cmp", path, op, literal) | ("in", path, literals, negated) | ("truthy", path)
#   | ("const", bool) | ("not", expr) | ("and", exprs) | ("or", exprs)
Expr = tuple[Any, ...]
Path = tuple[str, ...]

FIRST_SEGMENTS = ["name", "code", "accountName", "accountCode", "currency", "address", "seats"]
FIRST_SEGMENTS += ["customFields", "vip"]
LATER_SEGMENTS = ["country", "seats", "vip", "my key", "in", "x", "NULL", "é"]
KEYWORDS = {"and", "or", "not", "in", "true", "false", "null"}
ALIASES = {
    "accountName": "name",
    "name": "accountName",
    "accountCode": "code",
    "code": "accountCode",
}
IDENTIFIER = re.compile(r"[^\W\d]\w*")
STRINGS = ["UK", "US", "GBP", "Acme Ltd", "42", " 42 ", "10.5", "-3", "", "true", "null", "é"]

paths_st = st.tuples(
    st.sampled_from(FIRST_SEGMENTS), st.lists(st.sampled_from(LATER_SEGMENTS), max_size=2)
).map(lambda p: (p[0], *p[1]))
literals_st = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-20, 20).map(Decimal),
    st.decimals(min_value=-100, max_value=100, places=2, allow_nan=False, allow_infinity=False),
    st.sampled_from(STRINGS),
    st.text(max_size=4),
)
leaves_st = st.one_of(
    st.tuples(
        st.just("cmp"), paths_st, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), literals_st
    ),
    st.tuples(st.just("in"), paths_st, st.lists(literals_st, max_size=3).map(tuple), st.booleans()),
    st.tuples(st.just("truthy"), paths_st),
    st.tuples(st.just("const"), st.booleans()),
)


def expressions(max_leaves: int) -> st.SearchStrategy[Expr]:
    return st.recursive(
        leaves_st,
        lambda children: st.one_of(
            st.tuples(st.just("not"), children),
            st.tuples(st.just("and"), st.lists(children, min_size=2, max_size=3).map(tuple)),
            st.tuples(st.just("or"), st.lists(children, min_size=2, max_size=3).map(tuple)),
        ),
        max_leaves=max_leaves,
    )


exprs_st = expressions(8)
# The boolean laws repeat their operands, so keep those small enough for MAX_LENGTH.
small_exprs_st = expressions(4)

scalars_st = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-20, 20),
    st.sampled_from([10**20, -(10**20)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([10.5, -1.25, 0.0, -0.0, 0.1]),
    st.sampled_from([Decimal("10.50"), Decimal("NaN"), Decimal("sNaN"), Decimal("-Infinity")]),
    st.sampled_from(STRINGS),
    st.text(max_size=4),
)
inner_objects_st = st.dictionaries(
    st.sampled_from(LATER_SEGMENTS), scalars_st | st.lists(scalars_st, max_size=2), max_size=4
)
accounts_st = st.dictionaries(
    st.sampled_from(FIRST_SEGMENTS),
    scalars_st | inner_objects_st | st.lists(scalars_st, max_size=2),
    max_size=7,
)
json_st = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(FIRST_SEGMENTS + LATER_SEGMENTS) | st.text(max_size=3),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)
json_accounts_st = st.dictionaries(
    st.sampled_from(FIRST_SEGMENTS) | st.text(max_size=3), json_st, max_size=6
)


# The reference semantics, written directly against the generated tuples and plain dicts.


def ref_resolve(account: Mapping[str, Any], path: Path) -> Any:
    value = account.get(path[0])
    if value is None and path[0] in ALIASES:
        value = account.get(ALIASES[path[0]])
    for segment in path[1:]:
        value = value.get(segment) if isinstance(value, dict) else None
    return value


def ref_number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))
    elif isinstance(value, str) and re.fullmatch(r"\s*[-+]?[0-9]+(\.[0-9]+)?\s*", value):
        number = Decimal(value)
    else:
        return None
    return None if number.is_nan() else number


def ref_equal(actual: Any, literal: Any) -> bool:
    if literal is None or isinstance(literal, bool):
        return actual is literal
    if isinstance(literal, Decimal):
        return ref_number(actual) == literal
    return type(actual) is str and actual == literal


def ref_compare(actual: Any, op: str, literal: Any) -> bool:
    if op == "==":
        return ref_equal(actual, literal)
    if op == "!=":
        return not ref_equal(actual, literal)
    left: Any = None
    if isinstance(literal, Decimal):
        left = ref_number(actual)
    elif isinstance(literal, str) and isinstance(actual, str):
        left = actual
    if left is None:
        return False
    outcomes = {"<": left < literal, "<=": left <= literal, ">": left > literal}
    outcomes[">="] = left >= literal
    return bool(outcomes[op])


def ref_truthy(value: Any) -> bool:
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        number = ref_number(value)
        return number is None or number != 0
    if isinstance(value, str | list | dict):
        return len(value) > 0
    return value is not None and value is not False


def ref_eval(expr: Expr, account: Mapping[str, Any]) -> bool:
    kind = expr[0]
    if kind == "cmp":
        return ref_compare(ref_resolve(account, expr[1]), expr[2], expr[3])
    if kind == "in":
        found = any(ref_equal(ref_resolve(account, expr[1]), v) for v in expr[2])
        return found is not bool(expr[3])
    if kind == "truthy":
        return ref_truthy(ref_resolve(account, expr[1]))
    if kind == "const":
        return bool(expr[1])
    if kind == "not":
        return not ref_eval(expr[1], account)
    if kind == "and":
        return all(ref_eval(e, account) for e in expr[1])
    return any(ref_eval(e, account) for e in expr[1])


def ref_paths(expr: Expr) -> set[Path]:
    if expr[0] in ("cmp", "in", "truthy"):
        return {expr[1]}
    if expr[0] == "not":
        return ref_paths(expr[1])
    if expr[0] in ("and", "or"):
        return set().union(*(ref_paths(e) for e in expr[1]))
    return set()


# Rendering a generated tree as text, drawing the spelling choices from hypothesis.

Draw = Callable[[st.SearchStrategy[Any]], Any]
PRECEDENCE = {"or": 1, "and": 2, "not": 3}


def keyword(draw: Draw, word: str) -> str:
    return str(draw(st.sampled_from([word.lower(), word.upper(), word.capitalize()])))


def render_string(draw: Draw, text: str) -> str:
    quote = str(draw(st.sampled_from(['"', "'"])))
    if draw(st.booleans()):
        # Escape every character as \\uXXXX (surrogate pairs outside the BMP), as JSON may.
        units = text.encode("utf-16-be", "surrogatepass")
        body = "".join(
            f"\\u{int.from_bytes(units[i : i + 2]):04x}" for i in range(0, len(units), 2)
        )
        return quote + body + quote
    escapes = {"\\": "\\\\", quote: "\\" + quote, "\n": "\\n", "\t": "\\t", "\r": "\\r"}
    return quote + "".join(escapes.get(ch, ch) for ch in text) + quote


def is_bare(text: str) -> bool:
    return IDENTIFIER.fullmatch(text) is not None and text.lower() not in KEYWORDS


def render_literal(draw: Draw, value: Any) -> str:
    if value is None:
        return keyword(draw, "null")
    if isinstance(value, bool):
        return keyword(draw, "true" if value else "false")
    if isinstance(value, Decimal):
        return format(value, "f")
    if is_bare(value) and draw(st.booleans()):
        return str(value)
    return render_string(draw, value)


def render_path(draw: Draw, path: Path) -> str:
    parts = [path[0]]
    for segment in path[1:]:
        plain = is_bare(segment) and draw(st.booleans())
        parts.append(segment if plain else render_string(draw, segment))
    return ".".join(parts)


def space(draw: Draw) -> str:
    return str(draw(st.sampled_from([" ", "  ", "\n", "\t "])))


def render(draw: Draw, expr: Expr, context: int = 0) -> str:
    kind = expr[0]
    if kind == "cmp":
        op_space = draw(st.sampled_from(["", " "]))
        text = f"{render_path(draw, expr[1])}{op_space}{expr[2]}{op_space}"
        text += render_literal(draw, expr[3])
        precedence = 4
    elif kind == "in":
        items = ", ".join(render_literal(draw, v) for v in expr[2])
        operator = keyword(draw, "not") + space(draw) if expr[3] else ""
        operator += keyword(draw, "in")
        text = f"{render_path(draw, expr[1])}{space(draw)}{operator}{space(draw)}[{items}]"
        precedence = 4
    elif kind == "truthy":
        text, precedence = render_path(draw, expr[1]), 4
    elif kind == "const":
        text, precedence = keyword(draw, "true" if expr[1] else "false"), 4
    elif kind == "not":
        prefix = draw(st.sampled_from(["!", "! ", "NOT ", "not ", "Not\n"]))
        text, precedence = prefix + render(draw, expr[1], PRECEDENCE["not"]), PRECEDENCE["not"]
    else:
        precedence = PRECEDENCE[kind]
        symbol = "&&" if kind == "and" else "||"
        parts = []
        for operand in expr[1]:
            spelled = draw(st.sampled_from([symbol, keyword(draw, kind)]))
            parts.append((spelled, render(draw, operand, precedence)))
        text = parts[0][1]
        for spelled, operand_text in parts[1:]:
            text += f"{space(draw)}{spelled}{space(draw)}{operand_text}"
    # Parenthesise when precedence requires it, and sometimes when it does not.
    if precedence < context or draw(st.integers(0, 9)) == 0:
        text = f"({text})"
    return text


@FAST
@given(st.text(max_size=80))
def test_parse_arbitrary_text_only_raises_filter_syntax_error(text: str) -> None:
    check_parse_only_raises_syntax_errors(text)


TOKENS = ["a", "b.c", "customFields", '."my key"', "==", "!=", "<", ">=", "(", ")", "[", "]"]
TOKENS += [",", "AND", "or", "&&", "||", "!", "not", "in", "null", "true", "1", "-2.5", '"s"']
TOKENS += ["'t'", '"\\q"', '"\\u00e9"', '"open', "=", ".", "\n", "&", "é", "\x00"]


@FAST
@given(st.lists(st.sampled_from(TOKENS), max_size=25), st.sampled_from(["", " "]))
def test_parse_token_soup_only_raises_filter_syntax_error(tokens: list[str], sep: str) -> None:
    check_parse_only_raises_syntax_errors(sep.join(tokens))


def parse_or_error(text: str) -> Filter | FilterSyntaxError:
    try:
        return parse(text)
    except FilterSyntaxError as error:
        return error


def check_parse_only_raises_syntax_errors(text: str) -> None:
    result = parse_or_error(text)  # anything but FilterSyntaxError propagates and fails
    if isinstance(result, FilterSyntaxError):
        assert 0 <= result.position <= len(text)
        assert result.line == text.count("\n", 0, result.position) + 1
        assert result.column == result.position - (text.rfind("\n", 0, result.position) + 1) + 1
        assert result.message
        assert str(result)
    else:
        assert result.source == text
        assert isinstance(result.matches(ACME), bool)


@FAST
@given(st.data())
def test_rendered_expressions_round_trip(data: st.DataObject) -> None:
    expr = data.draw(exprs_st, label="expr")
    text = render(data.draw, expr)
    parsed = parse(text)
    accounts = data.draw(st.lists(accounts_st, min_size=1, max_size=4), label="accounts")
    for account in [*accounts, ACME, INITECH, ODD]:
        assert parsed.matches(account) is ref_eval(expr, account), (text, account)
    # Every path reported parses back to the same segments.
    reported = set()
    for path_text in parsed.paths():
        root = parse(path_text).root
        assert isinstance(root, Truthy)
        reported.add(root.path.segments)
    assert reported == ref_paths(expr)


@FAST
@given(st.data())
def test_boolean_laws(data: st.DataObject) -> None:
    a = render(data.draw, data.draw(small_exprs_st, label="a"))
    b = render(data.draw, data.draw(small_exprs_st, label="b"))
    accounts = data.draw(st.lists(accounts_st, min_size=1, max_size=4), label="accounts")
    laws = [
        (f"NOT (({a}) AND ({b}))", f"(NOT ({a})) OR (NOT ({b}))"),
        (f"!(({a}) || ({b}))", f"!({a}) && !({b})"),
        (f"NOT NOT ({a})", a),
        (f"!!({a})", a),
        (f"not ({a})", f"({a}) AND false OR NOT ({a})"),
        (f"({a}) AND ({b})", f"({b}) AND ({a})"),
        (f"({a}) OR ({a})", a),
    ]
    for account in [*accounts, ACME, INITECH]:
        for left, right in laws:
            assert matches(left, account) is matches(right, account), (left, right, account)


@FAST
@given(st.data())
def test_negated_operators_are_negations(data: st.DataObject) -> None:
    path = ".".join(
        data.draw(
            st.lists(st.sampled_from(["customFields", "seats", "vip"]), min_size=1, max_size=3)
        )
    )
    literal = render_literal(data.draw, data.draw(literals_st))
    items = ", ".join(
        render_literal(data.draw, v) for v in data.draw(st.lists(literals_st, max_size=4))
    )
    account = data.draw(accounts_st)
    assert matches(f"{path} != {literal}", account) is not matches(f"{path} == {literal}", account)
    assert matches(f"{path} not in [{items}]", account) is not matches(
        f"{path} in [{items}]", account
    )


@FAST
@given(exprs_st, json_accounts_st, st.data())
def test_matches_never_raises_on_json_like_accounts(
    expr: Expr, account: dict[str, Any], data: st.DataObject
) -> None:
    result = parse(render(data.draw, expr)).matches(account)
    assert isinstance(result, bool)
    assert result is ref_eval(expr, account)
