"""Secret keys: rotation covers every secret, a wrong key is a clear configuration error.

Against ``fakebooks`` (whose panel has a secret option, sealed at rest) on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest

import fakebooks_plugin as fake
from billbridge.domain.models import EventType, RunStatus
from billbridge.errors import SecretKeyError
from billbridge.secrets import SecretBox, generate_key
from support import ACME, ACME_BILL, World


@pytest.fixture
def batch() -> bool:
    return False


def signed_integration(world: World) -> Any:
    integration = world.engine.integrations.create(
        name="Signed",
        destination="fakebooks",
        destination_config={"signature": "s3cret-signature-value"},
    )
    credential = fake.connect(world.engine, "Fake UK")
    world.map_account(ACME, "cust-acme")
    return world.engine.integrations.connect(integration.id, credential.id)


def test_rotation_covers_every_kind_and_deliveries_work_with_the_new_key_alone(
    world: World,
) -> None:
    signed_integration(world)
    new_key = generate_key()
    world.engine.use_secret_keys(SecretBox([new_key, world.key]))
    assert world.engine.rotate_secrets() == {
        "credentials": 1,
        "oauthApps": 1,
        "destinationSecrets": 1,
        "webhookSecrets": 0,
    }
    world.engine.use_secret_keys(SecretBox([new_key]))  # the old key is dropped
    world.engine.submit_bill(ACME_BILL, ACME)
    world.engine.deliver_pending()
    (run,) = world.engine.runs.list(limit=None)
    assert run.status is RunStatus.COMPLETE
    (invoice,) = world.provider.invoices_for(ACME_BILL["id"])
    assert invoice["signed"] == "s3cret-signature-value"


def test_a_key_that_cannot_open_the_secrets_is_a_configuration_error(world: World) -> None:
    signed_integration(world)
    world.engine.submit_bill(ACME_BILL, ACME)
    world.engine.use_secret_keys(SecretBox([generate_key()]))  # the key was replaced, not added
    world.engine.deliver_pending()
    (run,) = world.engine.runs.list(limit=None)
    assert run.status is RunStatus.ERROR  # not retried: retrying cannot help
    assert "BILLBRIDGE_SECRET_KEY" in (run.error or "")
    assert "plugin" not in (run.error or "")
    (event,) = world.engine.events.list()
    assert event.type is EventType.PERFORM_ERROR


def test_writes_under_a_key_that_cannot_read_the_stored_secrets_are_refused(
    world: World,
) -> None:
    signed_integration(world)
    world.engine.use_secret_keys(SecretBox([generate_key()]))
    with pytest.raises(SecretKeyError, match="put the previous key back"):
        world.engine.integrations.create(
            name="Another", destination="fakebooks", destination_config={"signature": "x" * 12}
        )
    with pytest.raises(SecretKeyError, match="put the previous key back"):
        world.engine.credentials.configure_app(
            "fakebooks", client_id="other", client_secret="another-secret-value"
        )
    with pytest.raises(SecretKeyError):
        world.engine.rotate_secrets()  # nothing is rewritten either


def test_a_credential_that_cannot_be_decrypted_is_listed_marked_and_can_be_deleted(
    world: World,
) -> None:
    signed_integration(world)
    world.engine.use_secret_keys(SecretBox([generate_key()]))
    (listed,) = world.engine.credentials.list()
    assert not listed.keys_match
    assert listed.display_name == "Fake UK (Cannot decrypt: secret key changed)"
    world.engine.credentials.delete(listed.id)
    assert world.engine.credentials.list() == []
