"""The database: engine set-up for SQLite and PostgreSQL, migrations and sessions.

One :class:`Database` per process and URL. It owns the SQLAlchemy engine, applies Alembic
migrations (:meth:`Database.upgrade`, :meth:`Database.ensure_schema`) and hands out
sessions to :class:`~billbridge.store.uow.UnitOfWork` (:meth:`Database.new_session`).
"""

from __future__ import annotations

import functools
import os
import sqlite3
import time
import zlib
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Engine, create_engine, event, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from billbridge.domain import models
from billbridge.errors import BillbridgeError

__all__ = [
    "MIGRATIONS_DIR",
    "Database",
    "ReadOnlyDatabase",
    "SchemaTooNew",
    "alembic_config",
    "default_sqlite_url",
    "normalise_url",
    "read_only_error",
    "read_only_refusal",
]

MIGRATIONS_DIR: Final = Path(__file__).parent / "migrations"
"""Alembic's script location, inside the package so that it ships in the wheel."""

DEFAULT_SQLITE_FILENAME: Final = "billbridge.db"

# Any fixed 64-bit number works; deriving it from a name makes collisions with other
# applications' advisory locks on a shared server unlikely, and documents what it is for.
_MIGRATION_LOCK_KEY: Final = zlib.crc32(b"billbridge.store.migrations")

_SQLITE_BUSY_TIMEOUT_MS: Final = 30_000


class SchemaTooNew(BillbridgeError):
    """The database was migrated by a newer billbridge than the one running."""


class ReadOnlyDatabase(BillbridgeError):
    """The database refuses writes (a read-only file or mount, a read-only role or replica)."""


def read_only_refusal(exc: BaseException) -> bool:
    """True when ``exc`` is the database refusing a write because it is read-only."""
    orig = getattr(exc, "orig", None)
    if orig is None:
        return False
    if getattr(orig, "sqlstate", None) == "25006":  # PostgreSQL: read_only_sql_transaction
        return True
    return "readonly database" in str(orig) or "read-only" in str(orig).lower()


def read_only_error(display_url: str) -> ReadOnlyDatabase:
    """The one message for a read-only database: what works, and what to check."""
    return ReadOnlyDatabase(
        f"the database {display_url} is read-only: billbridge can show what it holds but not "
        "save anything; check the file's permissions (SQLite) or the connection's role and "
        "that it is not a read-only replica (PostgreSQL)"
    )


def normalise_url(url: str | URL) -> URL:
    """Parse a database URL; ``postgresql://`` and ``postgres://`` use the psycopg 3 driver.

    Only SQLite and PostgreSQL are supported: those are the databases the schema and its
    migrations are tested on.
    """
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(
            f"unsupported database {parsed.get_backend_name()!r} in "
            f"{parsed.render_as_string(hide_password=True)}: use sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST/DB"
        )
    return parsed


def default_sqlite_url(directory: str | os.PathLike[str]) -> str:
    """The URL of the embedded default database file inside ``directory``."""
    path = Path(directory).expanduser().resolve() / DEFAULT_SQLITE_FILENAME
    return URL.create("sqlite", database=str(path)).render_as_string()


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for billbridge's migrations, built without an ``alembic.ini``.

    With ``connection``, the migration environment runs on it (inside its transaction).
    """
    config = Config()
    # ConfigParser interpolation: a literal % in the path must be doubled.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    # Without this Alembic warns (deprecation) about how it would split version locations.
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def _script_directory() -> ScriptDirectory:
    # Reading the scripts means importing every revision file: do it once per process.
    return ScriptDirectory.from_config(alembic_config())


def _is_memory_sqlite(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"


class Database:
    """A billbridge database: engine, migrations and sessions.

    SQLite (the embedded default) is configured for concurrent use by several threads and
    processes: WAL journal, foreign keys enforced, a 30 s busy timeout, and write transactions
    that take the write lock when they begin (``BEGIN IMMEDIATE``). PostgreSQL is the production
    database; workers on several machines share it.
    """

    def __init__(
        self, url: str | URL, *, echo: bool = False, busy_timeout: float | None = None
    ) -> None:
        """
        :param busy_timeout: SQLite only: seconds a statement waits for another connection's
            write lock before failing with "database is locked" (default 30).
        """
        self.url: URL = normalise_url(url)
        busy_ms = int(_SQLITE_BUSY_TIMEOUT_MS if busy_timeout is None else busy_timeout * 1000)
        engine_args: dict[str, Any] = {
            "echo": echo,
            # Statement parameters (bill documents, encrypted tokens, state hashes) stay out of
            # error messages and tracebacks unless the developer asked to see the SQL.
            "hide_parameters": not echo,
            # Decimals in JSON columns (event details, destination configs) stay exact.
            "json_serializer": models.dumps,
            "json_deserializer": models.loads,
        }
        if self.is_sqlite:
            engine_args["connect_args"] = {"check_same_thread": False}
            if _is_memory_sqlite(self.url):
                # One shared connection, or each pooled connection would see its own empty
                # database. In-memory databases are for tests and experiments only.
                engine_args["poolclass"] = StaticPool
            elif self.url.database:
                Path(self.url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        else:
            # Long-running workers outlive server restarts and idle-connection reaping.
            engine_args["pool_pre_ping"] = True
        self.engine: Engine = create_engine(self.url, **engine_args)
        if self.is_sqlite:
            event.listen(self.engine, "connect", functools.partial(_sqlite_on_connect, busy_ms))
            event.listen(self.engine, "begin", _sqlite_on_begin)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._schema_ready = False

    # --- identity ---------------------------------------------------------------------------

    @property
    def is_sqlite(self) -> bool:
        """True for SQLite, False for PostgreSQL."""
        return self.url.get_backend_name() == "sqlite"

    @property
    def display_url(self) -> str:
        """The URL with any password masked: safe for logs and error messages."""
        return self.url.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"Database({self.display_url!r})"

    # --- sessions ----------------------------------------------------------------------------

    def new_session(self) -> Session:
        """A new session, not yet in a transaction, for :class:`~billbridge.store.uow.UnitOfWork`.

        Objects stay readable after the commit (``expire_on_commit=False``); repositories return
        domain objects anyway, never rows.
        """
        return self._sessions()

    # --- migrations ---------------------------------------------------------------------------

    def upgrade(self, revision: str = "head") -> None:
        """Apply migrations up to ``revision``. Idempotent and safe when processes race.

        The migration runs in one transaction. On PostgreSQL a transaction-level advisory lock
        serialises concurrent upgrades (the loser waits, then finds nothing left to do); on
        SQLite ``BEGIN IMMEDIATE`` does the same through the database's write lock.
        """
        try:
            self._upgrade(revision)
        except DBAPIError as exc:
            if read_only_refusal(exc):
                raise read_only_error(self.display_url) from None
            raise
        self._schema_ready = False

    def _upgrade(self, revision: str) -> None:
        with self.engine.begin() as connection:
            if not self.is_sqlite:
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                )
            self._refuse_unknown_revision(connection)
            command.upgrade(alembic_config(connection), revision)

    def current_revision(self) -> str | None:
        """The revision the database is at, or ``None`` when it has never been migrated."""
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def head_revision(self) -> str:
        """The newest revision this version of billbridge knows."""
        head = _script_directory().get_current_head()
        if head is None:  # pragma: no cover - the package always ships migrations
            raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
        return head

    def ensure_schema(self) -> None:
        """Migrate to the head revision unless the database is already there.

        Cheap after the first call in a process (remembered); the first call reads one row.
        """
        if self._schema_ready:
            return
        if self.current_revision() != self.head_revision():
            self.upgrade()
        self._schema_ready = True

    def _refuse_unknown_revision(self, connection: Connection) -> None:
        current = MigrationContext.configure(connection).get_current_revision()
        if current is None:
            return
        known = {script.revision for script in _script_directory().walk_revisions()}
        if current not in known:
            raise SchemaTooNew(
                f"database {self.display_url} is at schema revision {current!r}, which this "
                f"version of billbridge does not know (newest known: {self.head_revision()!r}): "
                "upgrade billbridge"
            )

    # --- lifetime -----------------------------------------------------------------------------

    def dispose(self) -> None:
        """Close every pooled connection. The object must not be used afterwards."""
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.dispose()


def _sqlite_on_connect(busy_ms: int, dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # Take transaction control away from the sqlite3 module (it would not BEGIN before SELECT,
    # DDL or SAVEPOINT, which breaks savepoints and transactional DDL); _sqlite_on_begin
    # emits BEGIN instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # busy_timeout first: switching to WAL needs a lock another process may hold.
        cursor.execute(f"PRAGMA busy_timeout = {busy_ms:d}")
        cursor.execute("PRAGMA foreign_keys = ON")
        _sqlite_enable_wal(cursor)
        # Safe with WAL (a power loss can lose the last commits, never corrupt) and much faster.
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _sqlite_enable_wal(cursor: Any) -> None:
    # WAL is a property of the file, so this only does something on a new database. Switching
    # needs an exclusive lock, and SQLite reports "database is locked" at once instead of using
    # the busy timeout when several processes open a new database together: retry until the
    # first one has switched it.
    deadline = time.monotonic() + _SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() in ("wal", "memory"):
                return
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _sqlite_on_begin(connection: Connection) -> None:
    # IMMEDIATE takes the write lock up front. A deferred transaction that reads and then
    # writes fails at once with "database is locked" (SQLITE_BUSY_SNAPSHOT, the busy timeout
    # does not apply) when another connection wrote in between; IMMEDIATE waits instead.
    # Units of work are short, and WAL readers outside transactions are never blocked.
    connection.exec_driver_sql("BEGIN IMMEDIATE")
