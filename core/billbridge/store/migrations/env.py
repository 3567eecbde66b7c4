"""Alembic environment for billbridge's schema.

billbridge runs migrations itself (:meth:`billbridge.store.Database.upgrade`), handing the
connection it has already opened -- and, on PostgreSQL, already locked -- in
``config.attributes["connection"]``. The migration then runs inside that connection's
transaction, so the lock and the schema change commit together.

For developers using the ``alembic`` command line (e.g. ``alembic revision --autogenerate``),
the URL comes from the ``sqlalchemy.url`` option or ``BILLBRIDGE_DATABASE_URL``.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy.engine import Connection

from billbridge.store.tables import metadata

config = context.config


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things: batch mode recreates the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_migrations_online() -> None:
    """Run the migrations on the given connection (or one made from the configured URL)."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return

    from billbridge.store.database import Database

    url = config.get_main_option("sqlalchemy.url") or os.environ.get("BILLBRIDGE_DATABASE_URL")
    if not url:
        raise RuntimeError("no database: set sqlalchemy.url or BILLBRIDGE_DATABASE_URL")
    database = Database(url)
    try:
        with database.engine.connect() as own_connection:
            _configure(own_connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        database.dispose()


def run_migrations_offline() -> None:
    """Write the migration SQL instead of running it (``alembic upgrade --sql``)."""
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("BILLBRIDGE_DATABASE_URL")
    context.configure(
        url=url,
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
