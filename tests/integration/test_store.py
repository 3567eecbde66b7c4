"""The store on SQLite and PostgreSQL: migrations, repositories, constraints, units of work.

Every test that takes ``db`` or ``database_url`` runs on both databases (see the root
``conftest.py``); the PostgreSQL variant needs ``BILLBRIDGE_TEST_DATABASE_URL``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import attrs
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event, text
from sqlalchemy.exc import StatementError

from billbridge.domain.intake import Received, receive
from billbridge.domain.models import (
    Account,
    Bill,
    BillEntityConfig,
    Credential,
    CredentialStatus,
    CredentialTokens,
    Event,
    EventType,
    ExternalMapping,
    GlobalConfig,
    Integration,
    LedgerEntry,
    LineItem,
    Run,
    RunStatus,
    Secret,
    dumps,
    parse_account,
    parse_bill,
)
from billbridge.errors import Conflict, NotFound, StaleVersion
from billbridge.secrets import SecretBox, SecretKeyError, generate_key
from billbridge.store import (
    Database,
    SchemaTooNew,
    UnitOfWork,
    alembic_config,
    default_sqlite_url,
    new_id,
    normalise_url,
)
from billbridge.store.tables import metadata

T0 = datetime(2025, 9, 1, 12, 0, 0, 123456, tzinfo=UTC)


# --- builders -----------------------------------------------------------------------------------


def make_integration(**changes: Any) -> Integration:
    base = Integration(
        id=new_id(),
        destination="xero",
        config=GlobalConfig(
            name="Xero UK", account_ids=("acc-1", "acc-2"), account_filter="x == 1"
        ),
        entity_config=BillEntityConfig(excluded_line_item_types=("MINIMUM_SPEND",)),
        destination_config={"invoiceStatus": "DRAFT", "tracking": [{"name": "Region"}]},
        created_at=T0,
        updated_at=T0,
    )
    return attrs.evolve(base, **changes)


def make_mapping(**changes: Any) -> ExternalMapping:
    base = ExternalMapping(
        id=new_id(),
        m3ter_entity="Account",
        m3ter_id="acc-1",
        external_system="xero",
        external_table="Contact",
        external_id="c-58",
        created_at=T0,
    )
    return attrs.evolve(base, **changes)


TOKENS = CredentialTokens(
    access_token=Secret("access-token-plaintext-1234"),
    refresh_token=Secret("refresh-token-plaintext-5678"),
)


def make_credential(**changes: Any) -> Credential:
    base = Credential(
        id=new_id(),
        name="Xero UK",
        destination="xero",
        status=CredentialStatus.COMPLETE,
        created_at=T0,
        tenant_id="tenant-1",
        access_token_expires_at=T0 + timedelta(minutes=30),
        scopes=("accounting.transactions", "offline_access"),
        data={"connectionId": "conn-1"},
    )
    return attrs.evolve(base, **changes)


def make_run(integration_id: str, **changes: Any) -> Run:
    base = Run(
        id=new_id(),
        integration_id=integration_id,
        # Distinct bills: the store keeps at most one open run per bill version and integration.
        bill_id=f"bill-{new_id()[:8]}",
        bill_version=1,
        status=RunStatus.WAITING,
        created_at=T0,
        updated_at=T0,
        account_id="acc-1",
    )
    return attrs.evolve(base, **changes)


def make_event(integration_id: str | None, **changes: Any) -> Event:
    base = Event(
        id=new_id(),
        type=EventType.PERFORM_ERROR,
        message="Xero said no",
        created_at=T0,
        integration_id=integration_id,
        details={"status": 400, "amount": Decimal("12.340")},
    )
    return attrs.evolve(base, **changes)


def make_bill(**changes: Any) -> Bill:
    bill = parse_bill(
        {
            "id": "bill-1",
            "accountId": "acc-1",
            "currency": "GBP",
            "version": 3,
            "billDate": "2025-09-30",
            "status": "APPROVED",
            "someFutureField": {"kept": True},
            "lineItems": [
                {
                    "lineItemType": "USAGE",
                    "description": "API calls",
                    "quantity": "1234567.000001",
                    # More digits than a float holds: must come back exactly.
                    "subtotal": "0.1000000000000000000000000000000001",
                    "usagePerPricingBand": [{"lowerLimit": 0, "unitPrice": "0.00012345678901"}],
                }
            ],
        }
    )
    return attrs.evolve(bill, **changes)


def make_account(**changes: Any) -> Account:
    account = parse_account(
        {"id": "acc-1", "code": "ACME", "name": "Acme Ltd", "address": {"country": "UK"}}
    )
    return attrs.evolve(account, **changes)


@contextmanager
def unit(db: Database, box: SecretBox | None = None) -> Iterator[UnitOfWork]:
    """A unit of work on ``db`` committed when the block ends without an exception."""
    keys = box or SecretBox([generate_key()])
    with UnitOfWork(db, lambda: keys) as uow:
        yield uow
        uow.commit()


def received(bill: Bill, account: Account) -> Received:
    """The bill and account as submission would hand them to the store."""
    return receive(dumps(bill), dumps(account))


def saved_integration(db: Database, **changes: Any) -> Integration:
    with unit(db) as uow:
        return uow.integrations.add(make_integration(**changes))


# --- database and migrations --------------------------------------------------------------------


def test_ensure_schema_migrates_once_and_is_idempotent(empty_database_url: str) -> None:
    database_url = empty_database_url
    with Database(database_url) as database:
        assert database.current_revision() is None
        database.ensure_schema()
        assert database.current_revision() == database.head_revision()
        database.ensure_schema()
        database.upgrade()  # already at head: nothing to do, no error
    with Database(database_url) as again:  # a new process sees a migrated database
        again.ensure_schema()
        assert again.current_revision() == again.head_revision()


def test_migrated_schema_matches_the_metadata(db: Database) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_downgrade_to_base_and_upgrade_again(db: Database) -> None:
    with db.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
    assert db.current_revision() is None
    db.upgrade()
    assert db.current_revision() == db.head_revision()


def test_concurrent_upgrades_do_not_collide(empty_database_url: str) -> None:
    databases = [Database(empty_database_url) for _ in range(3)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(databases))

    def upgrade(database: Database) -> None:
        try:
            start.wait()
            database.upgrade()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=upgrade, args=(d,)) for d in databases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert databases[0].current_revision() == databases[0].head_revision()
    finally:
        for database in databases:
            database.dispose()


def test_a_schema_newer_than_the_code_is_refused(db: Database) -> None:
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    with Database(db.url) as database, pytest.raises(SchemaTooNew, match="upgrade billbridge"):
        database.ensure_schema()


def test_sqlite_connections_enforce_foreign_keys_and_use_wal(sqlite_url: str) -> None:
    with Database(sqlite_url) as database, database.engine.connect() as connection:
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 30000


def test_urls_are_normalised_and_passwords_hidden(tmp_path: Any) -> None:
    assert normalise_url("postgresql://u:pw@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("postgres://u:pw@h/db").drivername == "postgresql+psycopg"
    with pytest.raises(ValueError, match="unsupported database"):
        normalise_url("mysql://u:pw@h/db")
    database = Database("postgresql://user:s3cret@127.0.0.1:1/db")
    try:
        assert "s3cret" not in database.display_url
        assert "s3cret" not in repr(database)
        assert database.display_url == "postgresql+psycopg://user:***@127.0.0.1:1/db"
    finally:
        database.dispose()
    url = default_sqlite_url(tmp_path / "new" / "dir")
    assert url == f"sqlite:///{tmp_path}/new/dir/billbridge.db"
    with Database(url) as database:  # creates the directory
        database.ensure_schema()
    assert (tmp_path / "new" / "dir" / "billbridge.db").exists()


def test_unit_of_work_rolls_back_on_exception(db: Database) -> None:
    integration = make_integration()

    def add_then_fail() -> None:
        with unit(db) as uow:
            uow.integrations.add(integration)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        add_then_fail()
    with unit(db) as uow, pytest.raises(NotFound):
        uow.integrations.get(integration.id)


def test_unit_of_work_is_usable_after_a_conflict(db: Database) -> None:
    # A failed insert runs in a savepoint: on PostgreSQL the transaction would otherwise abort.
    with unit(db) as uow:
        mappings = uow.mappings
        mappings.add(make_mapping())
        with pytest.raises(Conflict):
            mappings.add(make_mapping())
        kept = mappings.add(make_mapping(m3ter_id="acc-2"))
    with unit(db) as uow:
        assert uow.mappings.get(kept.id) == kept
        assert len(uow.mappings.list()) == 2


# --- integrations -------------------------------------------------------------------------------


def test_integration_crud(db: Database) -> None:
    first = make_integration()
    second = make_integration(
        destination="quickbooks",
        enabled=False,
        created_at=T0 + timedelta(seconds=1),
        updated_at=T0 + timedelta(seconds=1),
        destination_config={"rate": Decimal("0.1000000000000000001")},
    )
    with unit(db) as uow:
        repo = uow.integrations
        assert repo.add(first) == first
        assert repo.add(second) == second

    with unit(db) as uow:
        repo = uow.integrations
        assert repo.get(first.id) == first
        assert repo.get(second.id).destination_config["rate"] == Decimal("0.1000000000000000001")
        assert [i.id for i in repo.list()] == [first.id, second.id]
        assert [i.id for i in repo.list(destination="xero")] == [first.id]
        assert [i.id for i in repo.list(enabled=False)] == [second.id]
        assert repo.list(entity_type="Bill", destination="nowhere") == []
        with pytest.raises(NotFound, match=r"integration nope not found"):
            repo.get("nope")
        with pytest.raises(Conflict, match="already exists"):
            repo.add(first)

    changed = attrs.evolve(
        first,
        config=attrs.evolve(first.config, name="Xero UK (renamed)"),
        enabled=False,
        consecutive_errors=3,
        updated_at=T0 + timedelta(hours=1),
    )
    with unit(db) as uow:
        updated = uow.integrations.update(changed)
    assert updated == attrs.evolve(changed, version=2)
    with unit(db) as uow:
        repo = uow.integrations
        assert repo.get(first.id) == updated
        assert uow.session.scalar(
            text("SELECT name FROM integrations WHERE id = :id"), {"id": first.id}
        ) == ("Xero UK (renamed)")
        repo.delete(first.id)
        with pytest.raises(NotFound):
            repo.delete(first.id)
        assert [i.id for i in repo.list()] == [second.id]


def test_integration_update_with_stale_version_changes_nothing(db: Database) -> None:
    original = saved_integration(db)
    with unit(db) as uow:
        current = uow.integrations.update(attrs.evolve(original, enabled=False))
    assert current.version == 2

    stale = attrs.evolve(original, consecutive_errors=99)  # still says version 1
    with unit(db) as uow:
        repo = uow.integrations
        with pytest.raises(StaleVersion, match=r"version 2, you had 1\): reload and retry"):
            repo.update(stale)
        with pytest.raises(StaleVersion):
            repo.update(current, expected_version=5)
    with unit(db) as uow:
        assert uow.integrations.get(original.id) == current

    with unit(db) as uow, pytest.raises(NotFound):
        uow.integrations.update(make_integration())


def test_concurrent_updates_of_one_version_let_exactly_one_win(db: Database) -> None:
    original = saved_integration(db)
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def write(errors: int) -> None:
        start.wait()
        try:
            with unit(db) as uow:
                uow.integrations.update(attrs.evolve(original, consecutive_errors=errors))
            outcomes.append("saved")
        except StaleVersion:
            outcomes.append("stale")

    threads = [threading.Thread(target=write, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["saved", "stale"]
    with unit(db) as uow:
        assert uow.integrations.get(original.id).version == 2


def test_integration_with_unknown_credential_is_refused(db: Database) -> None:
    with unit(db) as uow, pytest.raises(NotFound, match="credential"):
        uow.integrations.add(make_integration(credential_id=new_id()))


def test_deleting_an_integration_cascades(db: Database) -> None:
    integration = saved_integration(db)
    other = saved_integration(db)
    with unit(db) as uow:
        run = uow.runs.add(make_run(integration.id))
        uow.runs.add(make_run(other.id))
        uow.events.add(make_event(integration.id, run_id=run.id))
        global_event = uow.events.add(make_event(None))
        uow.mappings.add(make_mapping(integration_id=integration.id))
        global_mapping = uow.mappings.add(make_mapping())
        uow.ledger.record(
            [LedgerEntry(integration.id, "bill-1", 1, external_id="inv-1", updated_at=T0)]
        )

    with unit(db) as uow:
        # Load first so stale objects sit in the identity map: reads must still see the truth.
        uow.runs.get(run.id)
        uow.integrations.delete(integration.id)
        with pytest.raises(NotFound):
            uow.runs.get(run.id)
        assert uow.runs.list(integration_id=integration.id) == []
        assert [e.id for e in uow.events.list()] == [global_event.id]
        assert [m.id for m in uow.mappings.list()] == [global_mapping.id]
        assert uow.ledger.get(integration.id, "bill-1") is None
        assert len(uow.runs.list(integration_id=other.id)) == 1


# --- external mappings --------------------------------------------------------------------------


def test_mapping_crud_and_lookups(db: Database) -> None:
    integration = saved_integration(db)
    global_mapping = make_mapping()
    linked = make_mapping(
        integration_id=integration.id, external_id="c-99", created_at=T0 + timedelta(seconds=1)
    )
    item = make_mapping(
        m3ter_entity="Product",
        m3ter_id="prod-1",
        external_table="Item",
        external_id="c-58",
        created_at=T0 + timedelta(seconds=2),
    )
    quickbooks = make_mapping(
        external_system="quickbooks",
        external_table="Customer",
        external_id="58",
        created_at=T0 + timedelta(seconds=3),
    )
    with unit(db) as uow:
        repo = uow.mappings
        for mapping in (global_mapping, linked, item, quickbooks):
            assert repo.add(mapping) == mapping

    with unit(db) as uow:
        repo = uow.mappings
        assert repo.get(linked.id) == linked
        assert repo.get(linked.id).linked
        assert repo.list() == [global_mapping, linked, item, quickbooks]
        assert repo.list(linked=True) == [linked]
        assert repo.list(linked=False) == [global_mapping, item, quickbooks]
        assert repo.list(integration_id=integration.id) == [linked]
        assert repo.list(m3ter_entity="Product") == [item]
        assert repo.list(external_system="xero", external_table="Contact") == [
            global_mapping,
            linked,
        ]
        assert repo.list(limit=2, offset=1) == [linked, item]
        assert repo.find_by_entity("Account", "acc-1") == [global_mapping, linked, quickbooks]
        assert repo.find_by_entity("Account", "acc-1", "quickbooks") == [quickbooks]
        assert repo.find_by_external("xero", "Contact", "c-58") == [global_mapping]
        assert repo.find_by_external("xero", "Item", "c-58") == [item]
        repo.delete(item.id)
        with pytest.raises(NotFound):
            repo.get(item.id)
        with pytest.raises(NotFound):
            repo.delete(item.id)


def test_mapping_uniqueness_global_and_linked(db: Database) -> None:
    integration = saved_integration(db)
    other = saved_integration(db)
    with unit(db) as uow:
        repo = uow.mappings
        repo.add(make_mapping())
        # The same key may exist once globally and once per integration.
        repo.add(make_mapping(integration_id=integration.id))
        repo.add(make_mapping(integration_id=other.id))

    # A second *global* mapping is a duplicate although integration_id is NULL in both.
    with (
        unit(db) as uow,
        pytest.raises(Conflict, match=r"Account acc-1 → xero Contact \(global\) is mapped to c-58"),
    ):
        uow.mappings.add(make_mapping(external_id="another"))
    with (
        unit(db) as uow,
        pytest.raises(Conflict, match=f"linked to integration {other.id}"),
    ):
        uow.mappings.add(make_mapping(integration_id=other.id))
    with unit(db) as uow, pytest.raises(NotFound, match="integration"):
        uow.mappings.add(make_mapping(integration_id=new_id()))
    with unit(db) as uow:
        assert len(uow.mappings.list()) == 3


def test_add_many_is_all_or_nothing(db: Database) -> None:
    with unit(db) as uow:
        existing = uow.mappings.add(make_mapping(m3ter_id="acc-9"))

    fresh = [make_mapping(m3ter_id=f"acc-{n}") for n in range(3)]
    inside_duplicate = [*fresh, make_mapping(m3ter_id="acc-1", external_id="other")]
    with (
        unit(db) as uow,
        pytest.raises(Conflict, match="duplicate external mapping in the request"),
    ):
        uow.mappings.add_many(inside_duplicate)

    against_stored = [*fresh, make_mapping(m3ter_id="acc-9", external_id="other")]
    with unit(db) as uow:
        with pytest.raises(Conflict, match=f"mapping {existing.id}"):
            uow.mappings.add_many(against_stored)
        assert uow.mappings.list() == [existing]
    with unit(db) as uow:
        assert uow.mappings.list() == [existing]
        assert uow.mappings.add_many(fresh) == fresh
        assert uow.mappings.add_many([]) == []
    with unit(db) as uow:
        assert len(uow.mappings.list()) == 4


# --- credentials --------------------------------------------------------------------------------


def test_credential_crud(db: Database, secret_box: SecretBox) -> None:
    credential = make_credential()
    incomplete = make_credential(
        name="QBO",
        destination="quickbooks",
        status=CredentialStatus.INCOMPLETE,
        expires_at=T0 + timedelta(minutes=10),
        created_at=T0 + timedelta(seconds=1),
    )
    with unit(db, secret_box) as uow:
        repo = uow.credentials
        assert repo.add(credential) == credential
        assert repo.add(incomplete) == incomplete
        with_tokens = repo.update(credential, TOKENS)
        assert with_tokens == attrs.evolve(credential, has_tokens=True)
        credential = with_tokens

    with unit(db, secret_box) as uow:
        repo = uow.credentials
        loaded = repo.get(credential.id, for_update=True)
        assert loaded == credential
        assert "plaintext" not in repr(loaded) and "plaintext" not in str(attrs.asdict(loaded))
        assert repo.tokens(credential.id) == TOKENS
        assert repo.list() == [credential, incomplete]
        assert repo.list(destination="quickbooks") == [incomplete]
        refreshed = attrs.evolve(credential, tenant_name="Renamed")
        assert repo.update(refreshed) == refreshed
        assert repo.tokens(credential.id) == TOKENS  # kept when not given
        with pytest.raises(NotFound):
            repo.update(make_credential())
        with pytest.raises(NotFound, match="credential"):
            repo.get("missing")

    with unit(db, secret_box) as uow:
        repo = uow.credentials
        assert repo.get(credential.id) == refreshed
        version = uow.session.scalar(
            text("SELECT version FROM credentials WHERE id = :id"), {"id": credential.id}
        )
        assert version == 3
        repo.delete(incomplete.id)
        with pytest.raises(NotFound):
            repo.delete(incomplete.id)
        assert repo.list() == [refreshed]


def test_credential_tokens_are_stored_encrypted(db: Database, secret_box: SecretBox) -> None:
    credential = make_credential()
    with unit(db, secret_box) as uow:
        uow.credentials.update(uow.credentials.add(credential), TOKENS)
    with db.engine.connect() as connection:
        row = connection.execute(
            text("SELECT * FROM credentials WHERE id = :id"), {"id": credential.id}
        ).one()
    raw = " ".join(str(value) for value in row)
    assert "access-token-plaintext" not in raw
    assert "refresh-token-plaintext" not in raw
    assert secret_box.decrypt(row.access_token_enc).reveal() == "access-token-plaintext-1234"
    with pytest.raises(SecretKeyError):
        SecretBox([generate_key()]).decrypt(row.access_token_enc)


def test_oauth_state_is_single_use(db: Database, secret_box: SecretBox) -> None:
    credential = make_credential(status=CredentialStatus.INCOMPLETE)
    with unit(db, secret_box) as uow:
        repo = uow.credentials
        repo.add(credential)
        repo.set_state_hash(credential.id, "a" * 64)
        with pytest.raises(NotFound):
            repo.set_state_hash("missing", "b" * 64)
    with unit(db, secret_box) as uow:
        repo = uow.credentials
        assert repo.find_by_state_hash("a" * 64) == credential
        assert repo.find_by_state_hash("c" * 64) is None
        assert repo.consume_state_hash("a" * 64) == credential
        assert repo.consume_state_hash("a" * 64) is None
        assert repo.consume_state_hash("c" * 64) is None


def test_expired_incomplete_credentials_are_deleted(db: Database, secret_box: SecretBox) -> None:
    expired = make_credential(status=CredentialStatus.INCOMPLETE, expires_at=T0)
    pending = make_credential(
        status=CredentialStatus.INCOMPLETE, expires_at=T0 + timedelta(minutes=10)
    )
    complete = make_credential(expires_at=T0)  # complete credentials never expire this way
    with unit(db, secret_box) as uow:
        repo = uow.credentials
        for credential in (expired, pending, complete):
            repo.add(credential)
        assert repo.delete_expired(T0 + timedelta(minutes=1)) == [expired.id]
        assert {c.id for c in repo.list()} == {pending.id, complete.id}


def test_deleting_a_credential_disconnects_integrations(
    db: Database, secret_box: SecretBox
) -> None:
    credential = make_credential()
    with unit(db, secret_box) as uow:
        uow.credentials.add(credential)
    integration = saved_integration(db, credential_id=credential.id)
    assert integration.connected
    with unit(db, secret_box) as uow:
        uow.credentials.delete(credential.id)
        assert uow.integrations.get(integration.id).credential_id is None


# --- runs and events ----------------------------------------------------------------------------


def test_run_crud_and_listing(db: Database) -> None:
    integration = saved_integration(db)
    other = saved_integration(db)
    runs = [
        make_run(
            integration.id,
            created_at=T0 + timedelta(minutes=n),
            bill_id=f"bill-{n % 2}",
            bill_version=n,
        )
        for n in range(4)
    ]
    foreign = make_run(other.id, created_at=T0 + timedelta(minutes=10), status=RunStatus.COMPLETE)
    done = attrs.evolve(
        runs[1],
        status=RunStatus.ERROR,
        attempts=2,
        error="boom",
        external_id="inv-1",
        external_url="https://example.test/inv-1",
        next_attempt_at=T0 + timedelta(hours=1),
        updated_at=T0 + timedelta(minutes=5),
    )
    replay = make_run(
        integration.id, replayed_from=runs[1].id, created_at=T0 + timedelta(minutes=20)
    )
    with unit(db) as uow:
        repo = uow.runs
        for run in [runs[0], done, *runs[2:], foreign, replay]:
            assert repo.add(run) == run
        with pytest.raises(NotFound, match="integration"):
            repo.add(make_run(new_id()))

    with unit(db) as uow:
        repo = uow.runs
        assert repo.get(runs[1].id) == done
        assert repo.get(replay.id).replayed_from == runs[1].id
        newest_first = [replay, foreign, runs[3], runs[2], done, runs[0]]
        assert repo.list() == newest_first
        assert repo.list(limit=2) == newest_first[:2]
        assert repo.list(limit=2, offset=2) == newest_first[2:4]
        assert repo.list(integration_id=other.id) == [foreign]
        assert repo.list(bill_id="bill-0", integration_id=integration.id) == [runs[2], runs[0]]
        assert repo.list(status=RunStatus.ERROR) == [done]
        assert repo.list(status=[RunStatus.ERROR, RunStatus.COMPLETE]) == [foreign, done]
        assert repo.list(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=3)) == [
            runs[2],
            done,
        ]


def test_deleting_a_run_keeps_its_replays(db: Database) -> None:
    integration = saved_integration(db)
    with unit(db) as uow:
        repo = uow.runs
        original = repo.add(make_run(integration.id, status=RunStatus.ERROR))
        replay = repo.add(
            make_run(integration.id, bill_id=original.bill_id, replayed_from=original.id)
        )
        uow.session.execute(text("DELETE FROM runs WHERE id = :id"), {"id": original.id})
        assert repo.get(replay.id).replayed_from is None


def test_event_crud_listing_and_actioning(db: Database) -> None:
    integration = saved_integration(db)
    events = [make_event(integration.id, created_at=T0 + timedelta(minutes=n)) for n in range(3)]
    disabled = make_event(None, type=EventType.DISABLED, created_at=T0 + timedelta(minutes=9))
    with unit(db) as uow:
        repo = uow.events
        for event in [*events, disabled]:
            assert repo.add(event) == event

    later = T0 + timedelta(days=1)
    with unit(db) as uow:
        repo = uow.events
        assert repo.get(events[0].id).details["amount"] == Decimal("12.340")
        actioned = repo.mark_actioned(events[0].id, by="ops@example.test", at=later)
        assert actioned.actioned
        assert (actioned.actioned_by, actioned.actioned_at) == ("ops@example.test", later)
        # A second mark keeps who dealt with it first.
        assert (
            repo.mark_actioned(events[0].id, by="someone-else", at=later + timedelta(1)) == actioned
        )
        with pytest.raises(NotFound):
            repo.mark_actioned("missing", by="x", at=later)

    with unit(db) as uow:
        repo = uow.events
        assert repo.list() == [disabled, events[2], events[1], actioned]
        assert repo.list(integration_id=integration.id, actioned=False) == [events[2], events[1]]
        assert repo.list(actioned=True) == [actioned]
        assert repo.list(type=EventType.DISABLED) == [disabled]
        assert repo.list(type=[EventType.DISABLED, EventType.PERFORM_ERROR], limit=1) == [disabled]
        assert repo.list(since=T0 + timedelta(minutes=2)) == [disabled, events[2]]


# --- ledger and bills ---------------------------------------------------------------------------


def test_the_ledger_inserts_replaces_and_never_moves_backwards(db: Database) -> None:
    integration = saved_integration(db)
    first = LedgerEntry(
        integration.id,
        "bill-1",
        1,
        external_id="inv-1",
        external_number="INV-001",
        updated_at=T0,
        state={"syncToken": "0", "total": Decimal("100.10000000000000000001")},
    )
    second = attrs.evolve(
        first, bill_version=2, state={"syncToken": "1"}, updated_at=T0 + timedelta(hours=1)
    )
    with unit(db) as uow:
        assert uow.ledger.get(integration.id, "bill-1") is None
        uow.ledger.record([first])
    with unit(db) as uow:
        assert uow.ledger.get(integration.id, "bill-1") == first
        uow.ledger.record([second])
    with unit(db) as uow:
        # A slow worker finishing version 1 after version 2 was recorded changes nothing.
        uow.ledger.record([attrs.evolve(first, external_id="inv-late")])
    with unit(db) as uow:
        assert uow.ledger.get(integration.id, "bill-1") == second
        assert uow.ledger.delivered_versions(["bill-1", "bill-2"]) == {
            (integration.id, "bill-1"): 2
        }


def test_bill_documents_round_trip_exactly(db: Database) -> None:
    bill, account = make_bill(), make_account()
    with unit(db) as uow:
        assert len(uow.bills.save_many([received(bill, account)], received_at=T0)) == 1
        # The same version again, as received: nothing new.
        assert uow.bills.save_many([received(bill, account)], received_at=T0) == []
    with unit(db) as uow:
        stored_bill, stored_account = uow.bills.get("bill-1", 3)
        document = uow.session.scalar(text("SELECT document FROM bills"))
    assert stored_bill == bill
    assert stored_account == account
    assert stored_bill.line_items[0].subtotal == Decimal("0.1000000000000000000000000000000001")
    assert stored_bill.extra == {"someFutureField": {"kept": True}}
    assert "0.1000000000000000000000000000000001" in document
    with unit(db) as uow, pytest.raises(NotFound, match="bill bill-1 version 4"):
        uow.bills.get("bill-1", 4)


def test_a_bill_version_is_immutable(db: Database) -> None:
    bill, account = make_bill(), make_account()
    with unit(db) as uow:
        uow.bills.save_many([received(bill, account)], received_at=T0)
    changed = attrs.evolve(bill, line_items=(LineItem(line_item_type="USAGE"),))
    with unit(db) as uow, pytest.raises(Conflict, match="different content") as refused:
        uow.bills.save_many([received(changed, account)], received_at=T0)
    assert "lineItems[0]" in str(refused.value)  # it says what differs
    other_account = attrs.evolve(bill, account_id="acc-other")
    with unit(db) as uow, pytest.raises(Conflict, match="accountId"):
        uow.bills.save_many(
            [received(other_account, attrs.evolve(account, id="acc-other"))], received_at=T0
        )
    # Two copies of one version with different content in one request: refused, none kept.
    with unit(db) as uow, pytest.raises(Conflict, match="version 5"):
        uow.bills.save_many(
            [
                received(attrs.evolve(bill, version=5), account),
                received(attrs.evolve(changed, version=5), account),
            ],
            received_at=T0,
        )
    renamed = attrs.evolve(account, name="Acme Limited")
    with unit(db) as uow:
        # The account's details are the latest received; the bill stays as it was.
        assert uow.bills.save_many([received(bill, renamed)], received_at=T0) == []
        fresh = uow.bills.save_many(
            [received(attrs.evolve(bill, version=4), account)], received_at=T0
        )
        assert [r.bill.version for r in fresh] == [4]
    with unit(db) as uow:
        assert uow.bills.get("bill-1", 3) == (bill, renamed)
        assert uow.bills.get_many([("bill-1", 5)]) == {}


# --- time ---------------------------------------------------------------------------------------


def test_datetimes_come_back_aware_in_utc(db: Database) -> None:
    paris = timezone(timedelta(hours=2))
    local = datetime(2025, 9, 1, 14, 0, 0, 654321, tzinfo=paris)
    integration = saved_integration(db, created_at=local, updated_at=local)
    assert integration.created_at == local
    assert integration.created_at.tzinfo is UTC
    assert integration.created_at.hour == 12
    with unit(db) as uow:
        run = uow.runs.add(make_run(integration.id, created_at=local))
        # Filters convert too: 12:00 UTC is inside [11:59 UTC, 14:01 +02:00).
        found = uow.runs.list(
            since=datetime(2025, 9, 1, 11, 59, tzinfo=UTC),
            until=datetime(2025, 9, 1, 14, 1, tzinfo=paris),
        )
    assert found == [run]
    assert run.created_at.tzinfo is UTC


def test_naive_datetimes_are_refused(db: Database) -> None:
    naive = datetime(2025, 9, 1, 12, 0)  # naive on purpose
    with unit(db) as uow, pytest.raises(StatementError, match="naive datetime"):
        uow.integrations.add(make_integration(created_at=naive))


# --- query plans ----------------------------------------------------------------------------------


@contextmanager
def _statements(db: Database, table: str) -> Iterator[list[tuple[str, Any]]]:
    """Collect every SELECT on ``table`` made inside the block, as the driver received it."""
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and f"FROM {table}" in statement:
            captured.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        yield captured
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)


def _plans(db: Database, captured: list[tuple[str, Any]]) -> list[tuple[str, str]]:
    """EXPLAIN each captured statement with its own parameters: ``(statement, plan)``.

    What is explained is exactly what ran, including literals rendered at execution time.
    """
    plans = []
    with db.engine.connect() as connection:
        if not db.is_sqlite:
            # With statistics, as a running server has them (autovacuum). Small tables make a
            # sequential scan cheapest whatever the indexes; what is checked is that the right
            # index is *usable* for these statements.
            connection.exec_driver_sql("ANALYZE")
            connection.exec_driver_sql("SET enable_seqscan = off")
        explain = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN "
        for statement, parameters in captured:
            rows = connection.exec_driver_sql(explain + statement, parameters).all()
            plans.append((statement, " ".join(str(row[-1]) for row in rows)))
        connection.rollback()
    return plans


def test_claiming_reads_only_open_runs_through_the_partial_indexes(db: Database) -> None:
    integration = saved_integration(db)
    finished = [
        make_run(integration.id, bill_id=f"old-{n}", status=RunStatus.COMPLETE) for n in range(300)
    ]
    waiting = [make_run(integration.id, bill_id=f"new-{n}") for n in range(5)]
    with unit(db) as uow:
        uow.runs.add_many(finished + waiting)

    with _statements(db, "runs") as captured, unit(db) as uow:
        claimed = uow.runs.claim(
            integration_ids=[integration.id],
            limit=3,
            worker="w",
            now=T0 + timedelta(seconds=1),
            lease_until=T0 + timedelta(minutes=2),
        )
    assert len(claimed) == 3
    plans = _plans(db, captured)
    unsettled = [plan for statement, plan in plans if statement.startswith("SELECT runs.batch_key")]
    candidates = [plan for statement, plan in plans if statement.startswith("SELECT runs.id ")]
    # Neither look-up may read the finished runs. The unsettled-batch look-up (and the set of
    # bills held behind unsettled batches) may go through any index that holds only open runs
    # or runs with a batch key (the planner's choice).
    narrow = ("ix_runs_unsettled", "ix_runs_open", "ix_runs_batch_key", "uq_runs_open_version")
    assert unsettled and all(any(i in plan for i in narrow) for plan in unsettled), plans
    only_open = ("ix_runs_open", "uq_runs_open_version")  # both hold open runs only
    assert candidates and all(any(i in plan for i in only_open) for plan in candidates), plans
    for _, plan in plans:
        assert "SCAN runs" not in plan.replace("SCAN runs USING", ""), plan
        assert "Seq Scan on runs" not in plan, plan


def test_mappings_of_a_batch_are_found_through_the_unique_key(db: Database) -> None:
    accounts = [
        make_mapping(m3ter_id=f"acc-{n}", external_id=f"C{n}", created_at=T0 + timedelta(n))
        for n in range(200)
    ]
    products = [
        make_mapping(
            m3ter_entity="Product",
            m3ter_id=f"p-{n}",
            external_id=f"I{n}",
            created_at=T0 + timedelta(100),
        )
        for n in range(20)
    ]
    with unit(db) as uow:
        uow.mappings.add_many(accounts + products)
    wanted = [("Account", "acc-150"), ("Product", "p-7"), ("Account", "acc-3"), ("Account", "x")]

    with _statements(db, "external_mappings") as captured, unit(db) as uow:
        found = uow.mappings.for_entities("xero", wanted)
    # Oldest first across entity types, like every listing; unknown pairs are simply absent.
    assert [(m.m3ter_entity, m.m3ter_id) for m in found] == [
        ("Account", "acc-3"),
        ("Product", "p-7"),
        ("Account", "acc-150"),
    ]
    for _, plan in _plans(db, captured):
        # The unique key leads with (m3ter_entity, m3ter_id); SQLite names it automatically.
        assert "uq_external_mappings_key" in plan or "sqlite_autoindex" in plan, plan


def test_stored_bill_versions_are_found_through_the_primary_key(db: Database) -> None:
    bill = parse_bill({"id": "b-0", "accountId": "a", "currency": "USD", "lineItems": []})
    account = parse_account({"id": "a", "name": "A"})
    versions = [attrs.evolve(bill, id=f"b-{n}", version=v) for n in range(200) for v in (1, 2)]
    with unit(db) as uow:
        uow.bills.save_many([received(b, account) for b in versions], received_at=T0)
    asked = [("b-7", 2), ("b-150", 1), ("missing", 1)]
    new = received(attrs.evolve(bill, id="b-9", version=3), account)

    with _statements(db, "bills") as captured, unit(db) as uow:
        found = uow.bills.get_many(asked)
        fresh = uow.bills.save_many([new], received_at=T0)
    # Exactly what was asked, though b-7 version 1 and b-150 version 2 match the look-up too.
    assert sorted(found) == [("b-150", 1), ("b-7", 2)]
    assert found[("b-7", 2)][0].version == 2
    assert [r.bill.version for r in fresh] == [3]
    plans = _plans(db, captured)
    assert len(plans) == 2
    for _, plan in plans:
        # Through the primary key (bill_id, version); SQLite names it automatically.
        assert "pk_bills" in plan or "sqlite_autoindex_bills" in plan, plan
        assert "SCAN bills" not in plan and "Seq Scan" not in plan, plan
