"""Fixtures shared by every test directory: databases (SQLite and PostgreSQL) and secrets.

``database_url`` runs a test once on SQLite and once on PostgreSQL, on a fresh database that is
already migrated (a copy of one migrated per session); ``empty_database_url`` is a database
never migrated, for the migration tests. PostgreSQL needs
``BILLBRIDGE_TEST_DATABASE_URL`` (for example ``postgresql+psycopg://postgres@127.0.0.1/test``);
each test gets a fresh database created on that server and dropped afterwards, so tests may
open several connections or processes. Without the variable the PostgreSQL variant is skipped,
except under CI (``CI`` set), where a missing or unreachable server fails the run: CI must
really test PostgreSQL.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import make_url

from billbridge.secrets import SecretBox, generate_key
from billbridge.store import Database, normalise_url

POSTGRES_URL_ENV = "BILLBRIDGE_TEST_DATABASE_URL"


def _postgres_unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so PostgreSQL tests must run)", pytrace=False)
    pytest.skip(reason)


def _libpq_dsn(url: str) -> str:
    # psycopg wants libpq's postgresql:// form, without SQLAlchemy's "+psycopg".
    return normalise_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """The configured PostgreSQL server URL, checked reachable once per session."""
    url = os.environ.get(POSTGRES_URL_ENV, "").strip()
    if not url:
        _postgres_unavailable(f"{POSTGRES_URL_ENV} is not set")
    try:
        with psycopg.connect(_libpq_dsn(url), connect_timeout=5, autocommit=True):
            pass
    except psycopg.OperationalError as exc:
        shown = make_url(url).render_as_string(hide_password=True)
        _postgres_unavailable(f"PostgreSQL at {shown} is unreachable: {exc}")
    return url


def _create_database(server_url: str, name: str, template: str | None = None) -> str:
    with psycopg.connect(_libpq_dsn(server_url), autocommit=True) as admin:
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        admin.execute(statement)
    return normalise_url(server_url).set(database=name).render_as_string(hide_password=False)


def _drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(_libpq_dsn(server_url), autocommit=True) as admin:
        # FORCE: a test that leaked a connection (or a killed subprocess) must not keep the
        # database alive.
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def postgres_template(postgres_server_url: str) -> Iterator[str]:
    """A PostgreSQL database migrated once per session, copied for each test.

    Copying a template is much cheaper than migrating a new database for every test.
    """
    name = f"bb_template_{uuid.uuid4().hex}"
    url = _create_database(postgres_server_url, name)
    database = Database(url)
    try:
        database.upgrade()
    finally:
        database.dispose()  # a template must have no connections when it is copied
    try:
        yield name
    finally:
        _drop_database(postgres_server_url, name)


@pytest.fixture
def empty_postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A new, empty (never migrated) PostgreSQL database for one test, dropped afterwards."""
    name = f"bb_test_{uuid.uuid4().hex}"
    try:
        yield _create_database(postgres_server_url, name)
    finally:
        _drop_database(postgres_server_url, name)


@pytest.fixture
def postgres_url(postgres_server_url: str, postgres_template: str) -> Iterator[str]:
    """A new PostgreSQL database, already migrated, for one test (dropped afterwards)."""
    name = f"bb_test_{uuid.uuid4().hex}"
    try:
        yield _create_database(postgres_server_url, name, template=postgres_template)
    finally:
        _drop_database(postgres_server_url, name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database file migrated once per session, copied for each test."""
    path = tmp_path_factory.mktemp("template") / "billbridge.db"
    database = Database(f"sqlite:///{path}")
    try:
        database.upgrade()
    finally:
        database.dispose()  # the last connection closing checkpoints the write-ahead log
    return path


@pytest.fixture
def empty_sqlite_url(tmp_path: Path) -> str:
    """A new SQLite database file for one test, never migrated (created on first use)."""
    return f"sqlite:///{tmp_path / 'billbridge.db'}"


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    """A new SQLite database file for one test, already migrated."""
    path = tmp_path / "billbridge.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def database_url(request: pytest.FixtureRequest) -> str:
    """The URL of a fresh, migrated database: once SQLite, once PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def empty_database_url(request: pytest.FixtureRequest) -> str:
    """The URL of a fresh database that was never migrated: once SQLite, once PostgreSQL."""
    fixture = "empty_sqlite_url" if request.param == "sqlite" else "empty_postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """A migrated :class:`Database` on ``database_url``, disposed after the test."""
    database = Database(database_url)
    try:
        database.upgrade()
        yield database
    finally:
        database.dispose()


@pytest.fixture
def secret_box() -> SecretBox:
    """A :class:`SecretBox` with a fresh random key."""
    return SecretBox([generate_key()])
