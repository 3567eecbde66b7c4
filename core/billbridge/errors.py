"""Exceptions of billbridge.

Two families live here:

* **Configuration-side errors** raised by the embedding API and the CLI when input is refused
  (:class:`ValidationFailed`, :class:`NotFound`, :class:`Conflict`, :class:`StaleVersion`, ...).
  Nothing is saved when one of them is raised.
* **Delivery-side errors** that destination plugins raise across the hook boundary
  (:class:`DestinationError` and its subclasses). The core maps each to a run status, a retry
  policy and, where a person must act, an integration event. Plugins never invent statuses;
  they pick the exception that says what happened.

Messages never contain secrets: callers pass identifiers, never token values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from billbridge.plugin.contract import TenantChoice

__all__ = [
    "AccountingPeriodClosed",
    "AuthenticationFailed",
    "BillbridgeError",
    "Conflict",
    "CredentialError",
    "DestinationError",
    "DestinationValidationError",
    "FieldError",
    "InvoiceAlreadyPaid",
    "MissingMapping",
    "MissingOAuthApp",
    "NotFound",
    "PermanentError",
    "PluginConflict",
    "RateLimited",
    "SecretKeyError",
    "StaleVersion",
    "Superseded",
    "TenantChoiceRequired",
    "TokenExpired",
    "TransientError",
    "UnknownDestination",
    "ValidationFailed",
]


class BillbridgeError(Exception):
    """Base class of every error billbridge raises on purpose."""


@attrs.frozen
class FieldError:
    """One problem with one field, placed by a JSON path a UI can put next to the field.

    ``path`` is a JSON-Pointer-like string such as ``/destinationConfig/bccInvoiceEmail``;
    the empty string means the document as a whole.
    """

    path: str
    message: str

    def to_dict(self) -> dict[str, str]:
        """The ``{path, message}`` shape that UIs and ``--json`` output use."""
        return {"path": self.path, "message": self.message}


class ValidationFailed(BillbridgeError):
    """Input was refused; ``errors`` lists every problem found, each with its path."""

    def __init__(self, errors: Iterable[FieldError], summary: str = "validation failed") -> None:
        self.errors: tuple[FieldError, ...] = tuple(errors)
        detail = "; ".join(f"{e.path or '/'}: {e.message}" for e in self.errors[:5])
        more = f" (+{len(self.errors) - 5} more)" if len(self.errors) > 5 else ""
        super().__init__(f"{summary}: {detail}{more}" if detail else summary)

    def to_list(self) -> list[dict[str, str]]:
        """Every error as ``{path, message}``."""
        return [e.to_dict() for e in self.errors]


class NotFound(BillbridgeError):
    """The object asked for does not exist (or no longer exists)."""


class Conflict(BillbridgeError):
    """The change would break a uniqueness rule, e.g. a mapping that duplicates another."""


class StaleVersion(Conflict):
    """Optimistic locking: the object changed since the version the caller read."""


class SecretKeyError(BillbridgeError):
    """No usable secret key, or a stored secret that none of the keys can open.

    A configuration problem, not a destination's or a plugin's: runs that need the secret end
    ERROR with an event that says what to set.
    """


class Superseded(BillbridgeError):
    """A run's bill version is older than one delivered (or sent with it): it is not sent.

    Raised by the core, never by plugins; the run ends SUPERSEDED with this message, which
    names the newer version.
    """


class UnknownDestination(BillbridgeError):
    """No installed plugin serves this destination key."""

    def __init__(self, key: str, known: Sequence[str]) -> None:
        self.key = key
        self.known = tuple(known)
        listed = ", ".join(sorted(self.known)) or "none"
        super().__init__(f"unknown destination {key!r}; installed destinations: {listed}")


class PluginConflict(BillbridgeError):
    """Two plugins claim the same destination key."""


class CredentialError(BillbridgeError):
    """The consent flow cannot go on (bad state, refused consent, token endpoint trouble)."""


class MissingOAuthApp(CredentialError):
    """No client id/secret is configured for the destination."""


class TenantChoiceRequired(CredentialError):
    """The consent covers several tenants: pick one with ``engine.credentials.choose_tenant``.

    ``choices`` are the tenants offered (:class:`~billbridge.plugin.contract.TenantChoice`).
    """

    def __init__(self, credential_id: str, choices: Sequence[TenantChoice]) -> None:
        self.credential_id = credential_id
        self.choices = tuple(choices)
        listed = ", ".join(f"{c.name or '?'} ({c.tenant_id})" for c in self.choices)
        super().__init__(
            f"the consent gave access to {len(self.choices)} organisations; choose one: {listed}"
        )


# --- raised by destination plugins, mapped by the core -------------------------------------


class DestinationError(BillbridgeError):
    """Base class for what a destination plugin reports about a delivery.

    ``detail`` is text from the destination (already free of secrets) shown to people
    word for word.
    """

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        self.detail = detail
        super().__init__(message)


class DestinationValidationError(DestinationError):
    """The destination refused the payload (bad item code, tax type, number too long...).

    Not retried: a person must fix configuration or mappings. Raises
    ``integration.validation.error``.
    """


class MissingMapping(DestinationError):
    """An entity has no external mapping the destination needs (e.g. Account → Customer)."""

    def __init__(self, entity: str, entity_id: str, table: str, *, hint: str | None = None) -> None:
        self.entity = entity
        self.entity_id = entity_id
        self.table = table
        message = f"no {table} mapped for {entity} {entity_id}"
        if hint:
            message += f" ({hint})"
        super().__init__(message + f": create an external mapping {entity} → {table}")


class TokenExpired(DestinationError):
    """The access token was refused (HTTP 401): the core refreshes once and retries once."""


class AuthenticationFailed(DestinationError):
    """The connection cannot be used (revoked, invalid_grant, no access): reconnect needed."""


class RateLimited(DestinationError):
    """The destination asked us to slow down.

    ``retry_after`` is in seconds; ``scope`` names which limit was hit (``minute``, ``day``,
    ``concurrent``, ``appminute``, ``batch``...) so the core can park a whole tenant when the
    daily allowance is spent.
    """

    def __init__(
        self, message: str, *, retry_after: float, scope: str = "minute", detail: str | None = None
    ) -> None:
        self.retry_after = retry_after
        self.scope = scope
        super().__init__(message, detail=detail)


class TransientError(DestinationError):
    """A failure worth retrying later with backoff (5xx, timeout, connection reset)."""


class PermanentError(DestinationError):
    """A failure that retrying will not fix; ``status`` is the run status to record."""

    status: str = "ERROR"


class InvoiceAlreadyPaid(PermanentError):
    """The invoice made for an earlier version is paid or voided and cannot be changed."""

    status = "INVOICE_ALREADY_PAID"


class AccountingPeriodClosed(PermanentError):
    """The invoice date falls in a period the books have closed."""

    status = "ACCOUNTING_PERIOD_CLOSED"
