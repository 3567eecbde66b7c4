"""Persistence: SQLAlchemy tables, one repository per aggregate, the unit of work, migrations.

Everything outside this package works with :class:`UnitOfWork` and the domain objects its
repositories return; sessions and rows never leave it.
"""

from billbridge.store.database import (
    Database,
    ReadOnlyDatabase,
    SchemaTooNew,
    alembic_config,
    default_sqlite_url,
    normalise_url,
)
from billbridge.store.tables import new_id
from billbridge.store.uow import (
    UnitOfWork,
    UnitOfWorkFactory,
    atomically,
    unit_of_work_factory,
)

__all__ = [
    "Database",
    "ReadOnlyDatabase",
    "SchemaTooNew",
    "UnitOfWork",
    "UnitOfWorkFactory",
    "alembic_config",
    "atomically",
    "default_sqlite_url",
    "new_id",
    "normalise_url",
    "unit_of_work_factory",
]
