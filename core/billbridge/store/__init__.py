"""Persistence: SQLAlchemy tables, repositories and Alembic migrations (SQLite and PostgreSQL).

The rest of billbridge uses :class:`Database` for units of work and the repositories for
reading and writing domain objects; rows never leave this package.
"""

from billbridge.store.database import (
    Database,
    SchemaTooNew,
    alembic_config,
    default_sqlite_url,
    normalise_url,
)
from billbridge.store.repositories import (
    BillRepository,
    CredentialRepository,
    EventRepository,
    IntegrationRepository,
    LedgerRepository,
    MappingRepository,
    OAuthAppRepository,
    RunRepository,
)
from billbridge.store.tables import new_id

__all__ = [
    "BillRepository",
    "CredentialRepository",
    "Database",
    "EventRepository",
    "IntegrationRepository",
    "LedgerRepository",
    "MappingRepository",
    "OAuthAppRepository",
    "RunRepository",
    "SchemaTooNew",
    "alembic_config",
    "default_sqlite_url",
    "new_id",
    "normalise_url",
]
