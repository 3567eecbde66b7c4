"""Encryption of secrets at rest (tokens, client secrets).

Keys come from ``BILLBRIDGE_SECRET_KEY``: one or more Fernet keys separated by commas, newest
first. Encryption always uses the first key; decryption tries each in turn (``MultiFernet``), so
rotating is: put a new key in front, run ``billbridge secrets rotate`` (re-encrypts every stored
secret with the new key), then drop the old key.

For the embedded default (SQLite, nobody configured a key) a key file is created beside the
database with mode 0600 and the user is told once where it is; losing it means reconnecting
every credential, which is why the message says so.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from billbridge.domain.models import Secret
from billbridge.errors import SecretKeyError
from billbridge.logs import get_logger

__all__ = ["SECRET_KEY_ENV", "SecretBox", "SecretKeyError", "generate_key"]

SECRET_KEY_ENV = "BILLBRIDGE_SECRET_KEY"

log = get_logger(__name__)


def generate_key() -> str:
    """A new random Fernet key, as text."""
    return Fernet.generate_key().decode("ascii")


class SecretBox:
    """Encrypts and decrypts secrets with a list of Fernet keys (newest first)."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise SecretKeyError(f"no secret key: set {SECRET_KEY_ENV} to a Fernet key")
        try:
            self._fernet = MultiFernet([Fernet(k.strip().encode("ascii")) for k in keys])
        except (ValueError, UnicodeEncodeError):
            # Never echo the key text: it is the secret protecting everything else.
            raise SecretKeyError(
                f"{SECRET_KEY_ENV} is not a valid Fernet key (32 url-safe base64-encoded bytes; "
                "make one with `billbridge secrets generate-key`)"
            ) from None

    @classmethod
    def from_env(cls, *, key_file: Path | None = None) -> SecretBox:
        """Keys from ``BILLBRIDGE_SECRET_KEY``; else from (or into a new) ``key_file``.

        Without either, raises :class:`SecretKeyError`.
        """
        configured = os.environ.get(SECRET_KEY_ENV, "").strip()
        if configured:
            return cls([k for k in configured.split(",") if k.strip()])
        if key_file is None:
            raise SecretKeyError(f"no secret key: set {SECRET_KEY_ENV} (a Fernet key)")
        return cls(_load_or_create_key_file(key_file))

    def encrypt(self, secret: Secret) -> str:
        """The secret, encrypted with the newest key (text safe for any column)."""
        return self._fernet.encrypt(secret.reveal().encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> Secret:
        """Open a stored secret with whichever configured key made it."""
        try:
            return Secret(self._fernet.decrypt(token.encode("ascii")).decode("utf-8"))
        except InvalidToken:
            raise SecretKeyError(
                "a stored secret cannot be decrypted with the configured keys "
                f"(was {SECRET_KEY_ENV} changed without keeping the old key?)"
            ) from None

    def require_readable(self, sample: str | None) -> None:
        """Refuse to write secrets with keys that cannot read the ones already stored.

        ``sample`` is one stored secret (``None``: nothing stored yet). Writing anyway would
        leave two generations of secrets that no single key ring opens.
        """
        if sample is not None and not self.can_decrypt(sample):
            raise SecretKeyError(
                "refusing to store secrets: the configured keys cannot read the secrets already "
                f"stored; put the previous key back in {SECRET_KEY_ENV} (after the new one)"
            )

    def can_decrypt(self, token: str) -> bool:
        """True when one of the keys opens ``token`` (nothing decrypted is kept)."""
        try:
            self._fernet.decrypt(token.encode("ascii"))
        except InvalidToken:
            return False
        return True

    def rotate(self, token: str) -> str:
        """Re-encrypt a stored secret with the newest key."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise SecretKeyError(
                "a stored secret cannot be decrypted with the configured keys"
            ) from None


def _load_or_create_key_file(path: Path) -> list[str]:
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            log.warning(
                "secret key file %s is readable by others (mode %o): chmod 600 it", path, mode
            )
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    path.parent.mkdir(parents=True, exist_ok=True)
    key = generate_key()
    # O_EXCL + 0600 at creation: the key is never on disk with wider permissions, and two
    # processes starting together cannot both write a key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _load_or_create_key_file(path)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    log.warning(
        "created secret key file %s (mode 600). It encrypts stored tokens: back it up, or set %s "
        "in production; without it every credential must be reconnected.",
        path,
        SECRET_KEY_ENV,
    )
    return [key]
