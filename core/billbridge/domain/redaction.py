"""Taking secrets out of text that came from elsewhere, before it is stored, logged or shown.

Providers echo what they were sent: a token endpoint's ``error_description`` quoting the
refresh token, an API error quoting the ``Authorization`` header. billbridge remembers every
secret value it reveals (:meth:`Secret.reveal <billbridge.domain.models.Secret.reveal>`: the one
place a secret's text leaves its wrapper) and :func:`redact` replaces each, and anything shaped
like a credential (``Bearer …``, ``refresh_token=…``), wherever destination text enters runs,
attempts, events, logs, command-line output or API answers.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict

__all__ = ["MASK", "RedactingFilter", "redact", "remember"]

MASK = "[redacted]"
#: Shorter values are not remembered: replacing them would mangle ordinary words.
_MIN_LENGTH = 8
_MAX_REMEMBERED = 4096

_known: OrderedDict[str, None] = OrderedDict()
_lock = threading.Lock()

_PATTERNS = (
    # Authorization headers and their echoes: "Bearer eyJ…", "Basic Zm9v…".
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=\-]{6,}", re.IGNORECASE), r"\1 " + MASK),
    # Form fields and JSON members that carry credentials.
    (
        re.compile(
            r"""\b(access_token|refresh_token|id_token|client_secret|code_verifier|password)"""
            r"""(["']?\s*[:=]\s*["']?)([^"'&\s,;}]+)""",
            re.IGNORECASE,
        ),
        r"\1\2" + MASK,
    ),
)


def remember(value: str) -> None:
    """Remember a secret value this process has revealed (bounded: the oldest go first)."""
    if len(value) < _MIN_LENGTH:
        return
    with _lock:
        _known[value] = None
        _known.move_to_end(value)
        while len(_known) > _MAX_REMEMBERED:
            _known.popitem(last=False)


def redact(text: str) -> str:
    """``text`` without any remembered secret value or credential-shaped fragment."""
    if not text:
        return text
    with _lock:
        known = [value for value in _known if value in text]
    # Longest first, so a secret that contains another is taken out whole.
    for value in sorted(known, key=len, reverse=True):
        text = text.replace(value, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's message and traceback before it is written.

    Attached to billbridge's loggers (and to the command line's handler), so a log line can
    never carry a token a provider echoed back.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place; never drops it."""
        message = record.getMessage()
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True
