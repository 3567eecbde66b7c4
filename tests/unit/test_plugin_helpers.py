"""The helpers every destination plugin shares: derived keys, batch bookkeeping, reconciling,
replacing a document with the other kind, and the well-known state keys.

Pure: fakes stand in for the destination (a ``send`` that records its chunks, holders held in a
dict), so every rule of the exception policy is pinned down without a network.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs
import pytest

from billbridge.domain.models import LedgerEntry
from billbridge.errors import (
    AuthenticationFailed,
    DestinationValidationError,
    InvoiceAlreadyPaid,
    MissingMapping,
    RateLimited,
    TokenExpired,
    TransientError,
)
from billbridge.plugin.batches import Chunking, prepare_each, send_apart, send_in_batches
from billbridge.plugin.contract import DeliveryOutcome, SendResult
from billbridge.plugin.idempotency import batch_idempotency_key, derived_key
from billbridge.plugin.reconcile import Claim, reconcile_by_number
from billbridge.plugin.replace import Earlier, Replacement, replace_document
from billbridge.plugin.state import add_note, record_fallbacks, record_voided

# --- derived keys ------------------------------------------------------------------------------


def test_a_derived_key_is_the_base_bound_to_the_body() -> None:
    key = derived_key("k", b"a", limit=50)
    assert key.startswith("k-") and key == derived_key("k", b"a", limit=50)
    assert key != derived_key("k", b"b", limit=50)
    assert key != derived_key("j", b"a", limit=50)


def test_a_derived_key_keeps_to_its_limit() -> None:
    core_key = batch_idempotency_key(["one", "two"])  # 36 characters, like every core key
    assert derived_key(core_key, b"a", limit=50).startswith(core_key)
    # QuickBooks' /batch takes 36: the base no longer fits and is hashed, still per base.
    short = derived_key(core_key, b"a", limit=36)
    assert len(short) == 36 and not short.startswith(core_key)
    assert short != derived_key("y" * 36, b"a", limit=36)
    long = derived_key("x" * 300, b"a", limit=128)
    assert len(long) <= 128 and long != derived_key("y" * 300, b"a", limit=128)
    with pytest.raises(ValueError, match="too short"):
        derived_key("k", b"a", limit=20)


# --- batches -----------------------------------------------------------------------------------


@attrs.frozen
class Item:
    name: str
    group: str = "g"
    size: int = 1


class Destination:
    """Answers each member ``"ok:<name>"``; scripted whole-request failures, by request number."""

    def __init__(self, failures: dict[int, Exception] | None = None) -> None:
        self.failures = failures or {}
        self.requests: list[list[str]] = []
        self.unanswered: set[str] = set()

    def send(self, chunk: Sequence[Item]) -> list[str | None]:
        self.requests.append([item.name for item in chunk])
        failure = self.failures.get(len(self.requests))
        if failure is not None:
            raise failure
        return [None if item.name in self.unanswered else f"ok:{item.name}" for item in chunk]


def settle(item: Item, answer: str) -> SendResult:
    if item.name.startswith("refused"):
        raise DestinationValidationError(f"{item.name} refused")
    if item.name.startswith("bug"):
        raise KeyError(item.name)
    return SendResult(external_id=answer)


def deliver(
    items: Sequence[Item | Exception], destination: Destination, chunking: Chunking[Item]
) -> list[DeliveryOutcome]:
    return send_in_batches(
        items,
        chunking=chunking,
        send=destination.send,
        settle=settle,
        system="Books",
        describe=lambda item: f"bill {item.name}",
    )


def ids(outcomes: Sequence[DeliveryOutcome]) -> list[str]:
    return [o.external_id if isinstance(o, SendResult) else type(o).__name__ for o in outcomes]


def test_outcomes_come_back_in_order_whatever_the_requests() -> None:
    items = [Item("a", "x"), Item("b", "y"), Item("c", "x"), Item("d", "y"), Item("e", "x")]
    destination = Destination()
    outcomes = deliver(items, destination, Chunking(2, group=lambda item: item.group))
    # Groups in the order of their first members, at most two members a request.
    assert destination.requests == [["a", "c"], ["e"], ["b", "d"]]
    assert ids(outcomes) == ["ok:a", "ok:b", "ok:c", "ok:d", "ok:e"]


def test_requests_are_bounded_by_size() -> None:
    items = [Item("a", size=4), Item("b", size=4), Item("c", size=3), Item("d", size=9)]
    chunking: Chunking[Item] = Chunking(10, size=lambda item: item.size, max_size=8)
    assert chunking.split(items) == [[0, 1], [2], [3]]  # a member too big alone goes alone
    with pytest.raises(ValueError, match="together"):
        Chunking(10, max_size=8)
    with pytest.raises(ValueError, match="at least 1"):
        Chunking(0)


def test_errors_from_preparing_stay_and_are_never_sent() -> None:
    missing = MissingMapping("Account", "acc-1", "Customer")
    destination = Destination()
    outcomes = deliver([Item("a"), missing, Item("b")], destination, Chunking(30))
    assert outcomes[1] is missing
    assert ids(outcomes) == ["ok:a", "MissingMapping", "ok:b"]
    assert destination.requests == [["a", "b"]]


def test_prepare_each_keeps_each_failure_as_that_items_outcome() -> None:
    def prepare(name: str) -> Item:
        if name == "bad":
            raise MissingMapping("Product", "p-1", "Item")
        if name == "bug":
            raise ValueError("a bug in translation")
        return Item(name)

    prepared = prepare_each(["a", "bad", "bug", "b"], prepare)
    assert prepared[0] == Item("a") and prepared[3] == Item("b")
    assert isinstance(prepared[1], MissingMapping) and isinstance(prepared[2], ValueError)


def test_a_members_failure_is_its_own_outcome() -> None:
    items = [Item("a"), Item("refused-b"), Item("bug-c"), Item("d")]
    outcomes = deliver(items, Destination(), Chunking(30))
    assert ids(outcomes) == ["ok:a", "DestinationValidationError", "KeyError", "ok:d"]


@pytest.mark.parametrize(
    "failure",
    [
        RateLimited("slow down", retry_after=60, scope="minute"),
        TransientError("no answer"),
        DestinationValidationError("the request as a whole was refused"),
        ValueError("a bug in the plugin"),
    ],
)
def test_the_first_request_failing_is_raised(failure: Exception) -> None:
    destination = Destination({1: failure})
    items = [Item(name) for name in "abcde"]
    with pytest.raises(type(failure)) as raised:
        deliver(items, destination, Chunking(2))
    assert raised.value is failure
    assert destination.requests == [["a", "b"]]  # nothing more is sent


def test_a_later_request_failing_is_given_to_its_members() -> None:
    timeout = TransientError("no answer")
    destination = Destination({2: timeout})
    outcomes = deliver([Item(name) for name in "abcde"], destination, Chunking(2))
    # What the first request delivered is kept; the third request is still sent.
    assert ids(outcomes) == ["ok:a", "ok:b", "TransientError", "TransientError", "ok:e"]
    assert outcomes[2] is timeout and outcomes[3] is timeout
    assert destination.requests == [["a", "b"], ["c", "d"], ["e"]]


@pytest.mark.parametrize(
    "refusal",
    [
        RateLimited("slow down", retry_after=60, scope="minute"),
        TokenExpired("token refused"),
        AuthenticationFailed("access refused"),
    ],
)
def test_a_later_refusal_of_the_tenant_stops_the_batch(refusal: Exception) -> None:
    destination = Destination({2: refusal})
    outcomes = deliver([Item(name) for name in "abcdefg"], destination, Chunking(2))
    assert ids(outcomes)[:2] == ["ok:a", "ok:b"]
    assert all(outcome is refusal for outcome in outcomes[2:])
    assert destination.requests == [["a", "b"], ["c", "d"]]  # the rest is not sent


def test_a_member_without_an_answer_will_be_delivered_again() -> None:
    destination = Destination()
    destination.unanswered = {"b"}
    outcomes = deliver([Item("a"), Item("b")], destination, Chunking(30))
    missing = outcomes[1]
    assert isinstance(missing, TransientError)
    assert str(missing) == (
        "the batch answer from Books has no result for bill b; it will be delivered again"
    )

    def short(chunk: Sequence[Item]) -> list[str | None]:
        return ["ok:first"]  # fewer answers than members: the rest were not answered

    outcomes = send_in_batches(
        [Item("a"), Item("b")],
        chunking=Chunking(30),
        send=short,
        settle=settle,
        system="Books",
        describe=lambda item: item.name,
    )
    assert ids(outcomes) == ["ok:first", "TransientError"]


def test_nothing_to_send_sends_nothing() -> None:
    destination = Destination()
    refused = DestinationValidationError("untranslatable")
    assert deliver([], destination, Chunking(30)) == []
    assert deliver([refused], destination, Chunking(30)) == [refused]
    assert destination.requests == []


def test_items_sent_apart_come_back_in_their_place() -> None:
    destination = Destination()
    refused = DestinationValidationError("untranslatable")
    items: list[Item | Exception] = [Item("a"), Item("swap-b"), refused, Item("c"), Item("swap-d")]
    alone: list[str] = []

    def send_one(item: Item) -> SendResult:
        alone.append(item.name)
        if item.name == "swap-d":
            raise TransientError("lost")
        return SendResult(external_id=f"alone:{item.name}")

    outcomes = send_apart(
        items,
        apart=lambda item: item.name.startswith("swap"),
        send_one=send_one,
        send_rest=lambda rest: deliver(rest, destination, Chunking(30)),
    )
    assert ids(outcomes) == [
        "ok:a",
        "alone:swap-b",
        "DestinationValidationError",
        "ok:c",
        "TransientError",
    ]
    assert destination.requests == [["a", "c"]] and alone == ["swap-b", "swap-d"]


def test_a_batch_refused_as_a_whole_is_raised_before_anything_is_sent_apart() -> None:
    destination = Destination(failures={1: RateLimited("slow", retry_after=1)})
    alone: list[str] = []
    with pytest.raises(RateLimited):
        send_apart(
            [Item("a"), Item("swap-b")],
            apart=lambda item: item.name.startswith("swap"),
            send_one=lambda item: alone.append(item.name) or SendResult(external_id="x"),
            send_rest=lambda rest: deliver(rest, destination, Chunking(30)),
        )
    assert alone == []


# --- reconciling a taken number ----------------------------------------------------------------


class Books:
    """Documents by number, each marked ``(bill, version)``, and the writes made to them."""

    def __init__(self, **documents: tuple[str, int]) -> None:
        self.documents = {
            number: {"Id": f"id-{number}", "bill": bill, "version": version}
            for number, (bill, version) in documents.items()
        }
        self.updates: list[str] = []

    def find(self, number: str) -> list[dict[str, Any]]:
        found = self.documents.get(number)
        return [found] if found is not None else []

    def reconcile(self, number: str | None, bill: str = "bill-1", version: int = 2) -> SendResult:
        def claim(holder: dict[str, Any]) -> Claim:
            if holder["bill"] != bill:
                return Claim.ANOTHER
            return Claim.THIS_VERSION if holder["version"] == version else Claim.THIS_BILL

        def update(holder: dict[str, Any]) -> SendResult:
            self.updates.append(holder["Id"])
            holder["version"] = version
            return SendResult(external_id=holder["Id"], state={"updated": True})

        def taken(holder: dict[str, Any] | None) -> Exception:
            which = f" ({holder['Id']})" if holder is not None else ""
            return DestinationValidationError(f"the number belongs to another document{which}")

        return reconcile_by_number(
            number,
            DestinationValidationError("duplicate number"),
            find=self.find,
            claim=claim,
            adopt=lambda holder: SendResult(external_id=holder["Id"]),
            update=update,
            taken=taken,
        )


def test_our_document_of_this_version_is_adopted_as_it_is() -> None:
    books = Books(**{"INV-1": ("bill-1", 2)})
    result = books.reconcile("INV-1")
    assert result == SendResult(external_id="id-INV-1")
    assert books.updates == []


def test_our_document_of_an_earlier_version_is_updated() -> None:
    books = Books(**{"INV-1": ("bill-1", 1)})
    result = books.reconcile("INV-1")
    assert result.external_id == "id-INV-1" and result.state["updated"] is True
    assert books.updates == ["id-INV-1"]


def test_another_documents_number_is_refused() -> None:
    books = Books(**{"INV-1": ("bill-9", 2)})
    with pytest.raises(DestinationValidationError, match=r"another document \(id-INV-1\)"):
        books.reconcile("INV-1")
    assert books.updates == []


def test_a_number_nobody_visibly_holds_is_refused_by_the_plugins_words() -> None:
    with pytest.raises(DestinationValidationError, match=r"another document$"):
        Books().reconcile("INV-404")


def test_without_a_number_the_refusal_stands() -> None:
    refused = DestinationValidationError("the destination's own numbering collided")
    with pytest.raises(DestinationValidationError) as raised:
        reconcile_by_number(
            None,
            refused,
            find=lambda number: pytest.fail("nothing to look up"),
            claim=lambda holder: Claim.ANOTHER,
            update=lambda holder: pytest.fail("nothing to update"),
            taken=lambda holder: DestinationValidationError("taken"),
        )
    assert raised.value is refused


def test_the_first_holder_that_is_ours_wins_and_adopt_defaults_to_update() -> None:
    holders = [{"Id": "theirs", "ours": False}, {"Id": "mine", "ours": True}]
    updated: list[str] = []

    def update(holder: dict[str, Any]) -> SendResult:
        updated.append(holder["Id"])
        return SendResult(external_id=holder["Id"], created=False)

    result = reconcile_by_number(
        "INV-1",
        DestinationValidationError("duplicate number"),
        find=lambda number: holders,
        claim=lambda holder: Claim.THIS_VERSION if holder["ours"] else Claim.ANOTHER,
        update=update,
        taken=lambda holder: DestinationValidationError("taken"),
    )
    assert result.external_id == "mine" and updated == ["mine"]


# --- replacing a document with the other kind -----------------------------------------------------


def earlier_delivery(**state: Any) -> LedgerEntry:
    return LedgerEntry(
        integration_id="int-1",
        bill_id="bill-1",
        bill_version=1,
        external_id="inv-1",
        external_number="INV-1",
        updated_at=datetime(2026, 1, 1, tzinfo=UTC),
        state=state,
    )


REPLACEMENT = Replacement(
    system="Books",
    bill_id="bill-1",
    bill_version=2,
    total=Decimal("-70.00"),
    currency="GBP",
    kind="CreditNote",
    number="INV-1",
)


class Replacing:
    """An earlier invoice standing as told, and the voids and creates made."""

    def __init__(self, standing: str) -> None:
        self.standing = standing
        self.calls: list[str] = []

    def replace(self, previous: LedgerEntry | None = None) -> SendResult:
        def look() -> Earlier:
            self.calls.append("look")
            return Earlier("Invoice", "inv-1", "INV-1", self.standing)  # type: ignore[arg-type]

        def void(earlier: Earlier) -> Any:
            self.calls.append(f"void {earlier.id}")
            return "VOIDED"

        def create() -> SendResult:
            self.calls.append("create")
            return SendResult(external_id="cn-1", number="INV-1", state={"kind": "CreditNote"})

        return replace_document(
            REPLACEMENT, previous or earlier_delivery(), look=look, void=void, create=create
        )


def test_an_open_document_is_voided_then_replaced_and_both_are_recorded() -> None:
    books = Replacing("OPEN")
    result = books.replace(earlier_delivery(voided=[{"kind": "CreditNote", "id": "cn-0"}]))
    assert books.calls == ["look", "void inv-1", "create"]
    assert result.external_id == "cn-1" and result.state["kind"] == "CreditNote"
    assert result.state["voided"] == [
        {"kind": "CreditNote", "id": "cn-0"},
        {"kind": "Invoice", "id": "inv-1", "number": "INV-1", "status": "VOIDED", "billVersion": 1},
    ]
    assert result.state["notes"] == [
        "bill bill-1 version 2 totals -70.00 GBP, so it is now a credit note: Books invoice inv-1 "
        "(INV-1), made for version 1, was voided, and credit note cn-1 (INV-1) replaces it"
    ]


@pytest.mark.parametrize(
    ("standing", "said"),
    [
        ("VOIDED", "was already voided"),
        ("DELETED", "was already deleted"),
        ("MISSING", "no longer exists in Books"),
    ],
)
def test_what_is_already_gone_is_not_voided_again(standing: str, said: str) -> None:
    books = Replacing(standing)
    result = books.replace()
    assert books.calls == ["look", "create"]
    assert said in result.state["notes"][0]
    assert result.state["voided"][0]["status"] == standing


def test_a_paid_document_is_left_alone() -> None:
    books = Replacing("PAID")
    with pytest.raises(InvoiceAlreadyPaid, match="is paid and cannot be voided"):
        books.replace()
    assert books.calls == ["look"]


def test_a_number_a_voided_document_keeps_is_refused_before_anything_changes() -> None:
    books = Replacing("OPEN")
    held = [
        {
            "kind": "CreditNote",
            "id": "cn-0",
            "number": "INV-1",
            "status": "VOIDED",
            "billVersion": 0,
        }
    ]
    with pytest.raises(DestinationValidationError, match="still held by Books credit note cn-0"):
        books.replace(earlier_delivery(voided=held))
    assert books.calls == []
    # A deleted one gave its number up.
    freed = [{**held[0], "status": "DELETED"}]
    assert books.replace(earlier_delivery(voided=freed)).external_id == "cn-1"


def test_state_helpers() -> None:
    state: dict[str, Any] = {}
    assert record_fallbacks(state, []) == {}
    assert add_note(state, "one") == {"notes": ["one"]}
    assert record_voided({}, None, None) == {}
    assert record_voided({}, {"voided": [{"id": "a"}]}, {"id": "b"}) == {
        "voided": [{"id": "a"}, {"id": "b"}]
    }
