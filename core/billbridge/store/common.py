"""Helpers every repository shares: fetching rows, inserts that may conflict, paging, chunks.

Conventions of the store (each repository follows them):

* Writes are flushed at once, so constraint violations surface from the call that caused them,
  as :class:`~billbridge.errors.Conflict` or :class:`~billbridge.errors.NotFound`. Inserts that
  may conflict run in a SAVEPOINT: after such an error the unit of work is still usable (on
  PostgreSQL a failed statement would otherwise abort the whole transaction).
* Reads always go to the database (``populate_existing``): deletes cascade inside the database,
  so the session's identity map cannot be trusted to know what still exists.
* Stored values are returned as read back (times in UTC, JSON numbers as ``Decimal``), not as
  passed in: what you get is what the next reader will get.
* The repository stores timestamps it is given; the caller's clock decides ``created_at`` and
  ``updated_at``. Only versions are managed here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import ColumnElement, CursorResult, Select, and_, func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import GenerativeSelect

from billbridge.errors import Conflict, NotFound
from billbridge.store.tables import Base

__all__ = [
    "CHUNK",
    "before",
    "chunks",
    "count_of",
    "get_row",
    "insert_or_conflict",
    "insert_rows",
    "is_postgres",
    "page",
    "plain",
    "require_row",
    "rowcount",
    "stored_secret_sample",
]

_R = TypeVar("_R", bound=Base)
_Paged = TypeVar("_Paged", bound=GenerativeSelect)

CHUNK = 500
"""Rows per ``IN (...)`` list: well inside every database's parameter limit."""


def chunks(values: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    """``values`` in slices of at most ``size``."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def is_postgres(session: Session) -> bool:
    """True when the session talks to PostgreSQL (else SQLite)."""
    return session.get_bind().dialect.name == "postgresql"


def get_row(session: Session, row_class: type[_R], key: Any) -> _R | None:
    """The row with primary key ``key``, read from the database (never the identity map)."""
    return session.get(row_class, key, populate_existing=True)


def require_row(session: Session, row_class: type[_R], key: Any, what: str) -> _R:
    """The row with primary key ``key``, or :class:`NotFound` naming ``what``."""
    row = get_row(session, row_class, key)
    if row is None:
        raise NotFound(f"{what} {key} not found")
    return row


def rowcount(result: Any) -> int:
    """Rows a DML statement changed (``Session.execute`` is typed as returning ``Result``)."""
    return cast(CursorResult[Any], result).rowcount


def insert_or_conflict(session: Session, row: Base, conflict: str) -> None:
    """Insert ``row`` in a savepoint; an integrity error becomes ``Conflict(conflict)``."""
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError as exc:
        raise Conflict(conflict) from exc


def insert_rows(session: Session, row_class: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert many plain rows with one Core executemany.

    The ORM's bulk path builds per-row state these plain inserts never use, and cost more than
    the insert itself for a chunk of bills, runs or attempts.
    """
    if rows:
        session.connection().execute(insert(row_class.__table__), rows)


def page(statement: _Paged, limit: int | None, offset: int) -> _Paged:
    """``statement`` limited to one page; negative limits or offsets are refused."""
    if limit is not None:
        if limit < 0:
            raise ValueError(f"limit must not be negative, got {limit}")
        statement = statement.limit(limit)
    if offset:
        if offset < 0:
            raise ValueError(f"offset must not be negative, got {offset}")
        statement = statement.offset(offset)
    return statement


def plain(value: Mapping[str, Any]) -> dict[str, Any]:
    """A mapping as a dict: domain objects hold read-only proxies, JSON columns want dicts."""
    return dict(value)


def before(created_at: Any, row_id: Any, key: tuple[Any, str] | None) -> ColumnElement[bool] | None:
    """Rows older than ``key`` (``(created_at, id)``) in newest-first order, for keyset paging.

    Written with ``OR`` rather than a row value: both databases then use the ``created_at``
    index, and ties on ``created_at`` are broken by the id as in the listings' ``ORDER BY``.
    """
    if key is None:
        return None
    at, last_id = key
    return or_(created_at < at, and_(created_at == at, row_id < last_id))


def count_of(session: Session, statement: Select[Any]) -> int:
    """How many rows ``statement`` (a listing without paging) returns, counted in SQL."""
    counted = select(func.count()).select_from(statement.order_by(None).subquery())
    return int(session.scalar(counted) or 0)


def stored_secret_sample(session: Session) -> str | None:
    """One encrypted secret stored anywhere (``None``: none yet), to check that the configured
    keys can read what is stored before anything new is encrypted with them."""
    from billbridge.domain.schemas import SEALED
    from billbridge.store.tables import (
        CredentialRow,
        IntegrationRow,
        OAuthAppRow,
        WebhookEndpointRow,
    )

    for column in (
        CredentialRow.refresh_token_enc,
        CredentialRow.access_token_enc,
        OAuthAppRow.client_secret_enc,
        WebhookEndpointRow.secret_enc,
    ):
        found = session.scalar(select(column).where(column.is_not(None)).limit(1))
        if found is not None:
            return str(found)
    for config in session.scalars(select(IntegrationRow.destination_config)):
        for value in (config or {}).values():
            if isinstance(value, dict) and set(value) == {SEALED}:
                return str(value[SEALED])
    return None
