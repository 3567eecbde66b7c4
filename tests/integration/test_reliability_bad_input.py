"""Bad input: generated bills, accounts, configurations and filters never crash the engine.

Hypothesis generates what a billing service or a UI might send (valid documents with random
damage, or anything JSON can hold, or text that is not JSON at all) and checks, through the
public API, that:

* ``engine.submit_bill`` either queues the bill or raises ``ValidationFailed`` with at least one
  ``{path, message}`` pair, and when it refuses, nothing at all was stored (no bill, run or
  skip);
* ``engine.preview`` of an accepted bill gives the payload or a billbridge error
  (``MissingMapping``, ``DestinationValidationError``...), never anything else;
* ``engine.integrations.create`` saves a configuration or raises ``ValidationFailed`` naming the
  fields, and saves nothing then; a filter expression that does not parse is refused at
  ``/config/accountFilter`` with its line and column; a filter that parses routes any account
  without raising;
* delivering accepted bills to the emulators never sends a partial invoice: a run that ends
  COMPLETE has one document with every line the preview promised, any other run has none.
"""

from __future__ import annotations

import copy
import itertools
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from benchmarks.bills import account_document, account_id, bill_document
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from test_reliability_world import (
    START,
    XERO_CONFIG,
    Emulators,
    make_engine,
    prepare,
    running_emulators,
)

from billbridge.domain import models
from billbridge.domain.models import RunStatus, dumps, parse_account, parse_bill
from billbridge.engine import Engine
from billbridge.errors import BillbridgeError, ValidationFailed
from billbridge.secrets import generate_key
from billbridge.store.tables import BillRow, IntegrationRow, RunRow, SkipRow
from billbridge.testing.emulation.clock import ManualClock
from support import db_session

SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- strategies ----------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=False, allow_infinity=False, places=None),
    st.text(max_size=30),
    st.sampled_from(["", " ", "2026-11-01", "2026-13-45", "USD", "1e400", "-0", "NaN", "\x00"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
BILL_KEYS = [
    "id",
    "version",
    "accountId",
    "currency",
    "billDate",
    "dueDate",
    "externalInvoiceDate",
    "sequentialInvoiceNumber",
    "status",
    "billTotal",
    "lineItems",
    "currencyConversions",
    "locked",
]
LINE_KEYS = [
    "lineItemType",
    "description",
    "quantity",
    "units",
    "averageUnitPrice",
    "subtotal",
    "productId",
    "accountingProductId",
    "aggregationId",
    "sequenceNumber",
    "servicePeriodStartDate",
    "servicePeriodEndDate",
    "usagePerPricingBand",
    "bandUsage",
    "currency",
]
ACCOUNT_KEYS = ["id", "name", "code", "currency", "address", "customFields", "emailAddress"]


@st.composite
def damaged_bill(draw: st.DrawFn) -> tuple[Any, Any]:
    """A valid bill and its account, with random damage, or something else altogether."""
    number = draw(st.integers(1, 10**6))
    lines = draw(st.integers(1, 4))
    country = draw(st.sampled_from(["US", "GB"]))
    bill: Any = bill_document(
        "HY", number, lines=lines, currency="USD" if country == "US" else "GBP"
    )
    bill["id"] = str(uuid.uuid4())  # examples never collide with each other's bills
    account: Any = account_document("HY", number, currency=bill["currency"], country=country)
    for _ in range(draw(st.integers(0, 4))):
        where = draw(st.sampled_from(["bill", "line", "band", "account", "address"]))
        value = draw(json_values)
        delete = draw(st.booleans()) and draw(st.booleans())
        if where == "bill":
            target, key = bill, draw(st.sampled_from([*BILL_KEYS, "unknownField"]))
        elif where in ("line", "band") and bill.get("lineItems"):
            if not isinstance(bill["lineItems"], list) or not bill["lineItems"]:
                continue
            line = draw(st.sampled_from(bill["lineItems"]))
            if not isinstance(line, dict):
                continue
            target, key = line, draw(st.sampled_from(LINE_KEYS))
            bands = line.get("usagePerPricingBand")
            if where == "band" and isinstance(bands, list) and bands:
                target = draw(st.sampled_from(bands))
                key = draw(st.sampled_from(["bandQuantity", "unitPrice", "bandSubtotal", "x"]))
        elif where == "account":
            target, key = account, draw(st.sampled_from(ACCOUNT_KEYS))
        else:
            address = account.get("address")
            if not isinstance(address, dict):
                continue
            target, key = address, draw(st.sampled_from(["country", "postCode", "region"]))
        if not isinstance(target, dict):
            continue
        if delete:
            target.pop(key, None)
        else:
            target[key] = value
    shape = draw(st.sampled_from(["mapping", "mapping", "text", "bytes", "other"]))
    if shape == "text":
        return _text(bill), _text(account)
    if shape == "bytes":
        return _text(bill).encode(), _text(account).encode()
    if shape == "other":
        return draw(json_values), draw(st.one_of(json_values, st.text(max_size=40)))
    return bill, account


def _text(document: Any) -> str:
    try:
        return dumps(document)
    except (TypeError, ValueError):
        return str(document)


def _counts(engine: Engine) -> tuple[int, int, int, int]:
    with db_session(engine) as session:
        return tuple(  # type: ignore[return-value]
            int(session.scalar(select(func.count()).select_from(table)) or 0)
            for table in (BillRow, RunRow, SkipRow, IntegrationRow)
        )


def _check_refusal(error: ValidationFailed) -> None:
    assert error.errors, "a refusal must say what is wrong"
    for field in error.errors:
        assert isinstance(field.path, str)
        assert field.path == "" or field.path.startswith("/")
        assert field.message.strip()
    assert str(error).strip()


@pytest.fixture(scope="module")
def world() -> Iterator[Emulators]:
    with running_emulators(ManualClock(start=START), limits=False) as emulators:
        yield emulators


@pytest.fixture
def engine(database_url: str, tmp_path: Path, world: Emulators) -> Iterator[Engine]:
    """Here: an engine connected to both emulators, with integrations and mappings made."""
    made = make_engine(database_url, world, tmp_path, generate_key())
    try:
        prepare(made, world, quickbooks=3, xero=3)
        yield made
    finally:
        made.close()


# --- bills and accounts --------------------------------------------------------------------------


@SETTINGS
@given(pair=damaged_bill())
def test_submitting_damaged_bills_queues_or_refuses_cleanly(
    engine: Engine, pair: tuple[Any, Any]
) -> None:
    bill, account = pair
    before = _counts(engine)
    try:
        result = engine.submit_bill(bill, account)
    except ValidationFailed as error:
        event("refused")
        _check_refusal(error)
        assert _counts(engine) == before, "a refused bill left something behind"
        return
    event(f"accepted, {len(result.runs)} run(s)")
    after = _counts(engine)
    integrations = before[3]
    # Every integration decided: a run or a skip each, and the bill was stored once.
    assert after[1] + after[2] - before[1] - before[2] == integrations
    assert after[0] - before[0] in (0, 1)
    for run in result.runs:
        outcome = _preview(engine, bill, account, run.integration_id)
        if isinstance(outcome, BillbridgeError):
            assert str(outcome).strip(), "a billbridge error must say what is wrong"
        else:
            assert isinstance(outcome, dict) and outcome


def _read(parse: Any, document: Any) -> tuple[str, Any]:
    try:
        return "read", parse(document)
    except ValidationFailed as error:
        return "refused", error.to_list()


@settings(max_examples=300, deadline=None)
@given(pair=damaged_bill())
def test_the_fast_reading_path_reads_and_refuses_exactly_as_cattrs_does(
    pair: tuple[Any, Any],
) -> None:
    # Bills and accounts are read through a fast path first and through cattrs when it cannot
    # (see billbridge.domain.models): the same objects, the same refusals with the same paths.
    bill, account = pair
    fast = _read(parse_bill, bill), _read(parse_account, account)
    models._FAST_PATH = False
    try:
        slow = _read(parse_bill, bill), _read(parse_account, account)
    finally:
        models._FAST_PATH = True
    assert fast == slow


def _preview(
    engine: Engine, bill: Any, account: Any, integration_id: str
) -> dict[str, Any] | BillbridgeError:
    """The preview, or the billbridge error it raised (anything else propagates and fails)."""
    try:
        return engine.preview(bill, account, integration_id)
    except BillbridgeError as error:
        return error


# --- configurations and filters ------------------------------------------------------------------

GLOBAL_KEYS = ["name", "accountIds", "restrictedAccountIds", "usersToNotify", "accountFilter"]
GLOBAL_KEYS += ["autoDisableThreshold", "somethingElse"]
ENTITY_KEYS = ["onlySendOnApproval", "useExternalMappingAccountCode", "excludedLineItemTypes"]
ENTITY_KEYS += ["enforceExternalMappings", "excludedProducts", "excludedAggregations", "x"]
DESTINATION_KEYS = ["splitUsageLineItems", "creditMemoItem", "sendZeroQuantityLines"]
DESTINATION_KEYS += ["bccInvoiceEmail", "accountManagerEmailCustomField", "sortLineItemsBy"]
DESTINATION_KEYS += ["strictLineItemMapping", "invoiceStatus", "lineAmountTypes"]
DESTINATION_KEYS += ["defaultAccountCode", "trackingCategories", "customerMemo", "bogus"]
TOKENS = ["address.country", "customFields.tier", "==", "!=", ">=", "<", "(", ")", "[", "]"]
TOKENS += [",", "AND", "or", "&&", "||", "!", "NOT", "in", "null", "true", "1", "-2.5", '"US"']
TOKENS += ["'GB'", '"\\q"', '"open', "=", ".", "\n", "é", "\x00", "name", "id"]

filters = st.one_of(
    st.text(max_size=60),
    st.lists(st.sampled_from(TOKENS), max_size=14).map(" ".join),
)


def _panel(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(keys), json_values, max_size=4)


@SETTINGS
@given(
    destination=st.sampled_from(["quickbooks", "xero", "quickbooks_sandbox", "nowhere"]),
    config=_panel(GLOBAL_KEYS),
    entity_config=_panel(ENTITY_KEYS),
    destination_config=_panel(DESTINATION_KEYS),
    expression=st.one_of(st.none(), filters),
)
def test_generated_configurations_are_saved_or_refused_with_paths(
    engine: Engine,
    destination: str,
    config: dict[str, Any],
    entity_config: dict[str, Any],
    destination_config: dict[str, Any],
    expression: str | None,
) -> None:
    if expression is not None:
        config = {**config, "accountFilter": expression}
    before = _counts(engine)
    try:
        saved = engine.integrations.create(
            name="Generated",
            destination=destination,
            config=config,
            entity_config=entity_config,
            destination_config=destination_config,
        )
    except ValidationFailed as error:
        event("refused")
        _check_refusal(error)
        assert _counts(engine) == before, "a refused configuration was saved"
        return
    event("saved")
    try:
        assert _counts(engine)[3] == before[3] + 1
        # A saved filter routes anything without raising.
        bill = bill_document("CF", 1, lines=1)
        bill["id"] = str(uuid.uuid4())
        account = account_document("CF", 1, currency="USD", country="US")
        account["customFields"] = {"tier": Decimal("1.5"), "odd": [1, {"x": None}]}
        engine.submit_bill(bill, account)
    finally:
        engine.integrations.delete(saved.id)


@SETTINGS
@given(expression=filters)
def test_a_filter_that_does_not_parse_is_refused_at_its_field(
    engine: Engine, expression: str
) -> None:
    from billbridge.domain import filter_expr

    failure: filter_expr.FilterSyntaxError | None = None
    try:
        filter_expr.parse(expression)
    except filter_expr.FilterSyntaxError as error:
        failure = error
    parses = failure is None
    if failure is not None:
        assert failure.line >= 1 and failure.column >= 1 and failure.message
    if not expression.strip():
        return  # an empty filter means "no filter"
    try:
        engine.integrations.validate(
            destination="quickbooks",
            config={"name": "F", "accountFilter": expression},
            entity_config={},
            destination_config={},
        )
    except ValidationFailed as error:
        paths = [e.path for e in error.errors]
        assert not parses or "/config/accountFilter" not in paths
        if not parses:
            assert "/config/accountFilter" in paths
            message = next(e.message for e in error.errors if e.path == "/config/accountFilter")
            assert "line" in message and "column" in message
    else:
        assert parses


# --- delivery never sends half an invoice --------------------------------------------------------

_sequence = itertools.count(1)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(pairs=st.lists(damaged_bill(), min_size=1, max_size=6))
def test_accepted_bills_are_delivered_whole_or_not_at_all(
    engine: Engine, world: Emulators, pairs: list[tuple[Any, Any]]
) -> None:
    accepted: dict[str, tuple[Any, Any]] = {}
    for bill, account in pairs:
        if not isinstance(bill, dict) or not isinstance(account, dict):
            continue
        bill, account = copy.deepcopy(bill), copy.deepcopy(account)
        # An account the emulators and the mappings know (QB 1..3, XE 1..3), so that delivery
        # gets as far as the destination; a fresh invoice number per bill.
        n = next(_sequence)
        known = account_id("QB" if bill.get("currency") == "USD" else "XE", n % 3 + 1)
        bill["accountId"] = account["id"] = known
        bill["sequentialInvoiceNumber"] = f"HY-{n:06d}"
        try:
            result = engine.submit_bill(bill, account)
        except ValidationFailed:
            continue
        for run in result.runs:
            accepted[run.id] = (bill, account)
    engine.deliver_pending()
    quickbooks = {str(d.get("PrivateNote", "")): d for d in world.company.invoices.values()}
    xero = {str(d.get("Number")): d for d in world.org.documents.values()}
    for run_id, (bill, account) in accepted.items():
        run = engine.runs.get(run_id)
        integration = engine.integrations.get(run.integration_id)
        number = bill["sequentialInvoiceNumber"]
        if integration.destination == "xero":
            sent = xero.get(number)
            lines = None if sent is None else len(sent["LineItems"])
        else:
            sent = next((d for note, d in quickbooks.items() if str(bill["id"]) in note), None)
            lines = (
                None
                if sent is None
                else len([x for x in sent["Line"] if x["DetailType"] != "SubTotalLineDetail"])
            )
        event(f"{integration.destination} {run.status.value}")
        if run.status is RunStatus.COMPLETE:
            assert sent is not None, f"run {run_id} is COMPLETE but nothing was sent"
            preview = engine.preview(bill, account, integration.id)
            body = preview.get("body", preview)
            promised = body.get("Line") or body.get("LineItems") or []
            if isinstance(body.get("Invoices"), list):
                promised = body["Invoices"][0].get("LineItems", [])
            assert lines == len(promised), "the invoice does not carry every line"
        else:
            assert run.status is not RunStatus.STARTED
            assert sent is None, f"run {run_id} is {run.status} but a document was made"


def test_refusals_name_the_field(engine: Engine) -> None:
    bill = bill_document("RF", 1, lines=2)
    account = account_document("RF", 1, currency="USD", country="US")
    bill["lineItems"][1]["subtotal"] = "twelve"
    with pytest.raises(ValidationFailed) as info:
        engine.submit_bill(bill, account)
    assert "/lineItems/1/subtotal" in [e.path for e in info.value.errors]
    with pytest.raises(ValidationFailed) as config_info:
        engine.integrations.create(
            name="Bad", destination="xero", destination_config={**XERO_CONFIG, "x": 1}
        )
    assert any(e.path.startswith("/destinationConfig") for e in config_info.value.errors)
