"""Secrets in destination configurations: sealed at rest, unsealed only for the plugin.

A panel option marked ``writeOnly`` is a secret. It is stored as ``{"$sealed": "<Fernet
token>"}``, so neither the database nor an integration's ``repr`` holds it; a UI reads it back
as the redacted sentinel and sends the sentinel again to keep it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from billbridge.domain.models import Secret, thaw
from billbridge.domain.schemas import SEALED, secret_options
from billbridge.errors import UnknownDestination
from billbridge.plugin.manager import PluginRegistry
from billbridge.secrets import SecretBox
from billbridge.store import UnitOfWork, UnitOfWorkFactory, atomically

__all__ = ["ConfigSecrets"]


class ConfigSecrets:
    """Seal and unseal the secret options of destination configurations."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        plugins: PluginRegistry,
        secret_box: Callable[[], SecretBox],
    ) -> None:
        self._uow = uow
        self._plugins = plugins
        self._secret_box = secret_box

    def seal(self, key: str, config: Mapping[str, Any]) -> dict[str, Any]:
        """The configuration of destination ``key`` with its secret options encrypted."""
        try:
            secrets = secret_options(self._plugins.destination(key).schema)
        except UnknownDestination:
            secrets = []
        sealed: dict[str, Any] = thaw(config)
        plain = [name for name in secrets if isinstance(sealed.get(name), str)]
        if plain:
            box = self._secret_box()
            box.require_readable(atomically(self._uow, lambda uow: uow.secret_sample()))
            for name in plain:
                sealed[name] = {SEALED: box.encrypt(Secret(sealed[name]))}
        return sealed

    def rotate(self, uow: UnitOfWork) -> dict[str, int]:
        """Re-encrypt every stored secret with the newest key, in ``uow``; counts per kind.

        Every kind: credentials' tokens, OAuth apps' client secrets, sealed destination
        configuration options and webhook signing secrets. A secret none of the keys opens
        raises :class:`~billbridge.secrets.SecretKeyError` and nothing is rewritten.
        """
        box = self._secret_box()
        return {
            "credentials": uow.credentials.rotate_secrets(),
            "oauthApps": uow.oauth_apps.rotate_secrets(),
            "destinationSecrets": uow.integrations.rotate_sealed(box.rotate),
            "webhookSecrets": uow.webhooks.rotate_secrets(),
        }

    def unseal(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The configuration with sealed secrets decrypted (for the plugin, never for people)."""
        plain: dict[str, Any] = thaw(config)
        for name, value in plain.items():
            if isinstance(value, Mapping) and set(value) == {SEALED}:
                plain[name] = self._secret_box().decrypt(value[SEALED]).reveal()
        return plain
