"""Secrets in a destination's configuration: encrypted at rest, masked in output, kept on update."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from billbridge import Engine, hookimpl
from billbridge.cli import _State, main
from billbridge.errors import ValidationFailed
from billbridge.plugin.contract import Destination
from billbridge.plugin.manager import load_plugins

SECRET = "s3cret-signing-key-0123456789"
PANEL = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Signed",
    "description": "A destination with a signing secret.",
    "type": "object",
    "properties": {
        "url": {"title": "URL", "description": "Where to send.", "type": "string"},
        "secret": {
            "title": "Secret",
            "description": "Signing secret.",
            "type": "string",
            "minLength": 16,
            "writeOnly": True,
        },
    },
    "additionalProperties": False,
}


def plugin() -> ModuleType:
    module = ModuleType("signed")

    @hookimpl
    def register_destinations() -> list[Destination]:
        return [Destination(key="signed", title="Signed", schema=PANEL, external_tables=())]

    module.register_destinations = register_destinations  # type: ignore[attr-defined]
    return module


@pytest.fixture
def engine(engine_factory: Callable[..., Engine]) -> Engine:
    """An engine whose only plugin is the ``signed`` destination with a secret option."""
    return engine_factory(plugins=load_plugins(entry_points=False, extra=[("signed", plugin())]))


def test_secrets_are_sealed_masked_and_kept(engine: Engine) -> None:
    created = engine.integrations.create(
        name="Signed",
        destination="signed",
        destination_config={"url": "https://x", "secret": SECRET},
    )
    assert SECRET not in repr(created)
    assert engine.config_secrets.unseal(created.destination_config)["secret"] == SECRET
    with engine.db.engine.connect() as conn:
        stored = "\n".join(str(row) for row in conn.execute(text("SELECT * FROM integrations")))
    assert SECRET not in stored and "$sealed" in stored

    state = _State(None)
    state._engine = engine
    shown = CliRunner().invoke(main, ["integrations", "show", created.id], obj=state).output
    assert SECRET not in shown and '"secret": "********"' in shown

    # A UI sends the mask back unchanged: the stored secret is kept, other options change.
    updated = engine.integrations.update(
        created.id, version=1, destination_config={"url": "https://y", "secret": "********"}
    )
    assert engine.config_secrets.unseal(updated.destination_config) == {
        "url": "https://y",
        "secret": SECRET,
    }
    with pytest.raises(ValidationFailed) as info:
        engine.integrations.update(
            created.id, version=2, destination_config={"url": "https://y", "secret": "short"}
        )
    assert [e.path for e in info.value.errors] == ["/destinationConfig/secret"]
    assert "short" not in str(info.value)
