"""The ledger's status read-back columns on SQLite and PostgreSQL: migration 0009 (documents
delivered before it are read back once), due documents in bulk, writes that never land on a
document replaced meanwhile, failures that keep what was read before, and runs filtered by
what their invoice became."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import attrs
from alembic import command
from sqlalchemy import text

from billbridge.domain.models import (
    BillEntityConfig,
    DocumentStatus,
    GlobalConfig,
    Integration,
    InvoiceState,
    LedgerEntry,
    Run,
    RunStatus,
)
from billbridge.secrets import SecretBox, generate_key
from billbridge.store import Database, UnitOfWork, unit_of_work_factory
from billbridge.store.database import alembic_config

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
D = Decimal


def uow_for(db: Database) -> UnitOfWork:
    box = SecretBox([generate_key()])
    return unit_of_work_factory(db, lambda: box)()


def integration(uow: UnitOfWork, name: str = "Books") -> Integration:
    made = Integration(
        id=f"i-{name}",
        destination="quickbooks",
        config=GlobalConfig(name=name),
        entity_config=BillEntityConfig(),
        destination_config={},
        created_at=T0,
        updated_at=T0,
    )
    return uow.integrations.add(made)


def entry(
    bill: str, external: str, *, version: int = 1, check: datetime | None = T0
) -> LedgerEntry:
    return LedgerEntry(
        integration_id="i-Books",
        bill_id=bill,
        bill_version=version,
        external_id=external,
        external_number=f"INV-{external}",
        updated_at=T0,
        state={"entity": "Invoice"},
        status=DocumentStatus(next_check_at=check),
    )


def test_documents_delivered_before_the_migration_are_read_back_once(db: Database) -> None:
    with db.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0008_credential_refresh_lease")
        connection.execute(
            text(
                "INSERT INTO integrations (id, destination, entity_type, name, global_config, "
                "entity_config, destination_config, enabled, version, consecutive_errors, "
                "created_at, updated_at) VALUES ('i-old', 'quickbooks', 'Bill', 'Old', "
                "'{\"name\": \"Old\"}', '{}', '{}', true, 1, 0, :at, :at)"
            ),
            {"at": T0},
        )
        connection.execute(
            text(
                "INSERT INTO delivery_ledger (integration_id, bill_id, bill_version, external_id, "
                "state, updated_at) VALUES ('i-old', 'b-old', 1, '17', '{}', :at)"
            ),
            {"at": T0},
        )
    db.upgrade()
    with uow_for(db) as uow:
        (found,) = uow.ledger.due_for_status(T0)
        assert (found.bill_id, found.status) == ("b-old", DocumentStatus(next_check_at=T0))
        assert uow.ledger.due_for_status(T0 - timedelta(seconds=1)) == []


def test_due_documents_are_read_in_bulk_and_read_back_exactly(db: Database) -> None:
    with uow_for(db) as uow:
        integration(uow)
        uow.ledger.record(
            [
                entry("b-1", "1", check=T0 + timedelta(minutes=2)),
                entry("b-2", "2", check=T0 + timedelta(minutes=1)),
                entry("b-3", "3", check=None),  # its plugin cannot read statuses
            ]
        )
        uow.commit()
    later = T0 + timedelta(minutes=5)
    with uow_for(db) as uow:
        due = uow.ledger.due_for_status(later)
        assert [e.bill_id for e in due] == ["b-2", "b-1"]  # earliest first
        assert [e.bill_id for e in uow.ledger.due_for_status(later, limit=1)] == ["b-2"]
        assert uow.ledger.next_status_check_at() == T0 + timedelta(minutes=1)
        read = DocumentStatus(
            state=InvoiceState.PARTLY_PAID,
            total=D("1234.50"),
            amount_due=D("1000.005"),
            amount_paid=D("234.495"),
            amount_credited=D("0"),
            currency="USD",
            paid_on=None,
            payments=({"amount": D("234.495"), "date": "2026-11-01", "kind": "payment"},),
            checked_at=later,
            next_check_at=later + timedelta(hours=1),
        )
        assert uow.ledger.record_status([attrs.evolve(due[0], status=read)]) == 1
        paid = attrs.evolve(
            read,
            state=InvoiceState.PAID,
            amount_due=D("0"),
            paid_on=date(2026, 11, 3),
            next_check_at=None,
        )
        assert uow.ledger.record_status([attrs.evolve(due[1], status=paid)]) == 1
        uow.commit()
    with uow_for(db) as uow:
        found = uow.ledger.get_many("i-Books", ["b-1", "b-2"])
        assert found["b-2"].status == read
        assert found["b-1"].status == paid
        assert [e.bill_id for e in uow.ledger.due_for_status(later + timedelta(hours=2))] == ["b-2"]


def test_a_read_never_lands_on_a_document_replaced_meanwhile(db: Database) -> None:
    with uow_for(db) as uow:
        integration(uow)
        uow.ledger.record([entry("b-1", "1")])
        uow.commit()
    with uow_for(db) as uow:
        (read,) = uow.ledger.due_for_status(T0)
        # Meanwhile the bill's invoice was made again (another external id).
        uow.ledger.record([entry("b-1", "9", version=2, check=T0 + timedelta(hours=1))])
        voided = DocumentStatus(state=InvoiceState.VOIDED, checked_at=T0)
        assert uow.ledger.record_status([attrs.evolve(read, status=voided)]) == 0
        uow.commit()
    with uow_for(db) as uow:
        kept = uow.ledger.get("i-Books", "b-1")
        assert kept is not None
        assert (kept.external_id, kept.status.state) == ("9", None)
        assert kept.status.next_check_at == T0 + timedelta(hours=1)


def test_a_failed_read_keeps_what_was_read_before(db: Database) -> None:
    with uow_for(db) as uow:
        integration(uow)
        uow.ledger.record([entry("b-1", "1")])
        (due,) = uow.ledger.due_for_status(T0)
        before = DocumentStatus(
            state=InvoiceState.UNPAID, total=D("10"), amount_due=D("10"), checked_at=T0
        )
        uow.ledger.record_status([attrs.evolve(due, status=before)])
        retry = T0 + timedelta(seconds=60)
        uow.ledger.record_status_failure(
            [due], error="throttled", checked_at=T0 + timedelta(minutes=1), next_check_at=retry
        )
        uow.commit()
    with uow_for(db) as uow:
        found = uow.ledger.get("i-Books", "b-1")
        assert found is not None
        assert found.status == attrs.evolve(
            before, checked_at=T0 + timedelta(minutes=1), next_check_at=retry, error="throttled"
        )
        uow.ledger.reschedule_status([("i-Books", "b-1")], None)
        uow.commit()
    with uow_for(db) as uow:
        assert uow.ledger.next_status_check_at() is None


def test_runs_are_listed_by_what_their_invoice_became(db: Database) -> None:
    with uow_for(db) as uow:
        integration(uow)
        uow.ledger.record([entry("b-1", "1"), entry("b-2", "2")])
        runs = [
            Run(
                id=f"r-{bill}-{version}",
                integration_id="i-Books",
                bill_id=bill,
                bill_version=version,
                status=RunStatus.COMPLETE,
                external_id=external,
                created_at=T0 + timedelta(seconds=version),
                updated_at=T0,
            )
            for bill, version, external in (("b-1", 1, "1"), ("b-1", 2, "1"), ("b-2", 1, "2"))
        ]
        uow.runs.add_many(runs)
        due = {e.bill_id: e for e in uow.ledger.due_for_status(T0)}
        uow.ledger.record_status(
            [
                attrs.evolve(due["b-1"], status=DocumentStatus(state=InvoiceState.PAID)),
                attrs.evolve(due["b-2"], status=DocumentStatus(state=InvoiceState.VOIDED)),
            ]
        )
        uow.commit()
    with uow_for(db) as uow:
        paid = uow.runs.list(invoice_state=[InvoiceState.PAID])
        # Both versions delivered (and updated) the same invoice.
        assert [r.id for r in paid] == ["r-b-1-2", "r-b-1-1"]
        assert uow.runs.count(invoice_state=[InvoiceState.VOIDED, InvoiceState.DELETED]) == 1
        assert uow.runs.count(invoice_state=[InvoiceState.UNPAID]) == 0
        pairs = uow.ledger.get_pairs([("i-Books", "b-1"), ("i-Books", "b-2"), ("i-x", "b-1")])
        assert {k: v.status.state for k, v in pairs.items()} == {
            ("i-Books", "b-1"): InvoiceState.PAID,
            ("i-Books", "b-2"): InvoiceState.VOIDED,
        }
