"""Signing webhook bodies, and verifying them on the receiving side.

Every delivery carries two headers:

* ``X-Billbridge-Timestamp``: the time of sending, in whole seconds since the epoch;
* ``X-Billbridge-Signature``: ``sha256=`` and the hex HMAC-SHA256, keyed with the integration's
  signing secret, of ``timestamp + "." + body`` (the raw body bytes, exactly as received).

Signing the timestamp with the body lets a receiver refuse a replayed request: a captured
delivery cannot be sent again later with a fresh timestamp without the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

__all__ = [
    "DEFAULT_TOLERANCE",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "InvalidSignature",
    "sign",
    "verify",
]

SIGNATURE_HEADER = "X-Billbridge-Signature"
TIMESTAMP_HEADER = "X-Billbridge-Timestamp"
DEFAULT_TOLERANCE = 300
"""Seconds a receiver accepts between the timestamp and its own clock, either way."""

_SCHEME = "sha256="


class InvalidSignature(ValueError):
    """A delivery's signature or timestamp does not check out; the message says which."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Billbridge-Signature`` value for ``body`` sent at ``timestamp``."""
    message = str(timestamp).encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return _SCHEME + digest


def verify(
    secret: str | Sequence[str],
    timestamp: str | int,
    body: bytes,
    signature: str,
    tolerance: float = DEFAULT_TOLERANCE,
    *,
    now: float | None = None,
) -> None:
    """Check a delivery as a receiver: a fresh timestamp and a signature made with the secret.

    :param secret: the signing secret; several (newest first) while rotating it.
    :param timestamp: the ``X-Billbridge-Timestamp`` header.
    :param body: the raw request body, before any JSON parsing.
    :param signature: the ``X-Billbridge-Signature`` header.
    :param tolerance: seconds the timestamp may differ from ``now`` (replay window).
    :param now: the receiver's time (default: the system clock).
    :raises InvalidSignature: the timestamp is malformed or outside the window, or no secret
        produces the signature.
    """
    try:
        sent = int(str(timestamp).strip())
    except ValueError:
        raise InvalidSignature(f"{TIMESTAMP_HEADER} is not a number of seconds") from None
    current = time.time() if now is None else now
    if abs(current - sent) > tolerance:
        raise InvalidSignature(
            f"{TIMESTAMP_HEADER} is {round(current - sent)} s away from now (more than "
            f"{tolerance:g} s): a late or replayed delivery"
        )
    if not signature.startswith(_SCHEME):
        raise InvalidSignature(f"{SIGNATURE_HEADER} must start with {_SCHEME!r}")
    secrets = [secret] if isinstance(secret, str) else list(secret)
    # compare_digest: the time taken must not tell an attacker how much of a guess was right.
    if not any(hmac.compare_digest(sign(s, sent, body), signature.strip()) for s in secrets):
        raise InvalidSignature(f"{SIGNATURE_HEADER} does not match the body and the secret")
