"""What every command shares: the database URL, and the engine made on first use."""

from __future__ import annotations

from typing import Any

import click

__all__ = ["State", "pass_state"]


class State:
    """Options shared by every command; the engine is made on first use.

    An embedding program (or a test) may hand in its own engine: ``state._engine = engine``,
    then ``main(..., obj=state)``.
    """

    def __init__(self, database_url: str | None) -> None:
        self.database_url = database_url
        self._engine: Any = None

    @property
    def engine(self) -> Any:
        if self._engine is None:
            from billbridge.engine import Engine

            self._engine = Engine(self.database_url)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()


pass_state = click.make_pass_decorator(State)
