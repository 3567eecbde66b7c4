"""Fixtures for the tests in this directory.

Database and secret fixtures (``database_url``, ``sqlite_url``, ``postgres_url``, ``db``,
``secret_box``) live in the root ``conftest.py`` so that plugin test directories share them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import fakebooks_plugin as fake
from billbridge.secrets import generate_key
from billbridge.testing.emulation.clock import ManualClock
from billbridge.testing.emulation.server import serve
from support import World


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
