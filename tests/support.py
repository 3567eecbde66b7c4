"""Small helpers shared by test modules."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from billbridge import Engine


@contextmanager
def db_session(engine: Engine) -> Iterator[Session]:
    """The session of a committed unit of work, for tests that look at rows directly."""
    with engine.uow() as uow:
        yield uow.session
        uow.commit()
