"""Fixtures for integration tests: engines on SQLite and PostgreSQL, and the delivery world.

``engine`` is an engine with the installed plugins on a fresh database (``database_url`` runs a
test on both databases); ``engine_factory`` makes engines with other plugins or settings, closed
after the test. ``world`` delivers to the ``fakebooks`` destination over real HTTP on a manual
clock, in batch and single-send mode (``batch``; a module may override ``batch`` to run once).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import fakebooks_plugin as fake
from billbridge import Engine
from billbridge.secrets import SecretBox, generate_key
from billbridge.settings import Settings
from billbridge.testing.emulation.clock import ManualClock
from billbridge.testing.emulation.server import serve
from support import World


@pytest.fixture
def engine_factory(database_url: str, tmp_path: Path) -> Iterator[Callable[..., Engine]]:
    """Make engines on the test's database (home ``tmp_path``, a fresh secret key)."""
    made: list[Engine] = []

    def make(**kwargs: Any) -> Engine:
        kwargs.setdefault("settings", Settings(home=tmp_path))
        kwargs.setdefault("secret_box", SecretBox([generate_key()]))
        engine = Engine(database_url, **kwargs)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.close()


@pytest.fixture
def engine(engine_factory: Callable[..., Engine]) -> Engine:
    """An engine with every installed plugin on a fresh database."""
    return engine_factory()


@pytest.fixture(params=[True, False], ids=["batch", "single"])
def batch(request: pytest.FixtureRequest) -> bool:
    """Whether the fakebooks plugin sends batches (``send_bills``) or one bill at a time."""
    return bool(request.param)


@pytest.fixture
def world(database_url: str, tmp_path: Path, batch: bool) -> Iterator[World]:
    """An engine delivering to the fakebooks destination over real HTTP, on a manual clock."""
    clock = ManualClock()
    provider = fake.Provider(clock)
    key = generate_key()
    with serve(provider.app) as server:
        engine = fake.make_engine(database_url, server.url, clock, tmp_path, key, batch=batch)
        try:
            yield World(engine, provider, server, clock, key, database_url, tmp_path)
        finally:
            engine.close()
