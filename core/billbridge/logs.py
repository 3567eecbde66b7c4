"""billbridge's loggers: every record redacted before any handler writes it.

A filter on a logger applies only to records logged through that very logger, so each module
asks for its logger here instead of from :func:`logging.getLogger`.
"""

from __future__ import annotations

import logging

from billbridge.domain.redaction import RedactingFilter

__all__ = ["get_logger"]

_FILTER = RedactingFilter()


def get_logger(name: str) -> logging.Logger:
    """The logger called ``name``, with billbridge's redacting filter on it."""
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger
