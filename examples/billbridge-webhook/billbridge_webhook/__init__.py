"""A billbridge destination that POSTs invoices to any URL as signed JSON webhooks.

Receivers check each delivery with :func:`verify`::

    from billbridge_webhook import InvalidSignature, verify

    try:
        verify(SECRET, request.headers["X-Billbridge-Timestamp"], raw_body,
               request.headers["X-Billbridge-Signature"])
    except InvalidSignature:
        return 401
"""

from billbridge_webhook.signing import (
    DEFAULT_TOLERANCE,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    InvalidSignature,
    sign,
    verify,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_TOLERANCE",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "InvalidSignature",
    "__version__",
    "sign",
    "verify",
]
