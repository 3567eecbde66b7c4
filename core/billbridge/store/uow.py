"""The unit of work: one database transaction holding every repository.

.. code-block:: python

    with uow_factory() as uow:
        integration = uow.integrations.get(integration_id)
        uow.integrations.update(attrs.evolve(integration, enabled=False))
        uow.commit()

Leaving the block without :meth:`UnitOfWork.commit` rolls everything back, so a service that
raises half way leaves nothing behind. Services receive a :data:`UnitOfWorkFactory` and never
see sessions; only this package opens them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import TracebackType
from typing import Self, TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from billbridge.secrets import SecretBox
from billbridge.store.common import stored_secret_sample
from billbridge.store.database import Database, read_only_error, read_only_refusal
from billbridge.store.repositories import (
    ApiKeyRepository,
    BillRepository,
    CredentialRepository,
    EventRepository,
    IntegrationRepository,
    LedgerRepository,
    MappingRepository,
    OAuthAppRepository,
    RunRepository,
    SkipRepository,
    TenantRepository,
    WebhookRepository,
)

__all__ = ["UnitOfWork", "UnitOfWorkFactory", "atomically", "unit_of_work_factory"]


class UnitOfWork:
    """Repositories sharing one transaction; rolled back unless :meth:`commit` is called.

    Repositories are made on first use, so a unit of work that only claims runs never builds the
    others (nor asks for the secret key, which only credentials need).
    """

    def __init__(self, database: Database, secret_box: Callable[[], SecretBox]) -> None:
        self._database = database
        self._secret_box = secret_box
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        """The transaction's session (for the repositories below; nothing else uses it)."""
        if self._session is None:
            raise RuntimeError("a unit of work is used inside its `with` block only")
        return self._session

    def __enter__(self) -> Self:
        self._session = self._database.new_session()
        self._session.begin()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        session, self._session = self.session, None
        try:
            if session.in_transaction():
                session.rollback()
            if isinstance(exc, DBAPIError) and read_only_refusal(exc):
                raise read_only_error(self._database.display_url) from None
        finally:
            session.close()
            # The repositories belong to the session that just ended.
            for name in _REPOSITORIES:
                self.__dict__.pop(name, None)

    def commit(self) -> None:
        """Make everything done in this unit of work permanent."""
        self.session.commit()

    def rollback(self) -> None:
        """Undo everything done in this unit of work so far."""
        self.session.rollback()

    def secret_sample(self) -> str | None:
        """One encrypted secret stored anywhere (``None``: none): see
        :meth:`billbridge.secrets.SecretBox.require_readable`."""
        return stored_secret_sample(self.session)

    @property
    def is_postgres(self) -> bool:
        """True on PostgreSQL, False on SQLite."""
        return not self._database.is_sqlite

    @functools.cached_property
    def integrations(self) -> IntegrationRepository:
        """Integrations."""
        return IntegrationRepository(self.session)

    @functools.cached_property
    def mappings(self) -> MappingRepository:
        """External mappings."""
        return MappingRepository(self.session)

    @functools.cached_property
    def credentials(self) -> CredentialRepository:
        """Credentials (tokens encrypted at rest)."""
        return CredentialRepository(self.session, self._secret_box())

    @functools.cached_property
    def oauth_apps(self) -> OAuthAppRepository:
        """OAuth apps per destination (client secrets encrypted at rest)."""
        return OAuthAppRepository(self.session, self._secret_box())

    @functools.cached_property
    def bills(self) -> BillRepository:
        """Bill versions as received."""
        return BillRepository(self.session)

    @functools.cached_property
    def runs(self) -> RunRepository:
        """Runs, their attempts and the delivery queue."""
        return RunRepository(self.session)

    @functools.cached_property
    def skips(self) -> SkipRepository:
        """Routing skips."""
        return SkipRepository(self.session)

    @functools.cached_property
    def ledger(self) -> LedgerRepository:
        """The delivery ledger."""
        return LedgerRepository(self.session)

    @functools.cached_property
    def events(self) -> EventRepository:
        """Events."""
        return EventRepository(self.session)

    @functools.cached_property
    def tenants(self) -> TenantRepository:
        """Tenant leases and limit state."""
        return TenantRepository(self.session)

    @functools.cached_property
    def api_keys(self) -> ApiKeyRepository:
        """API keys of the HTTP service (hashes only)."""
        return ApiKeyRepository(self.session)

    @functools.cached_property
    def webhooks(self) -> WebhookRepository:
        """Webhook endpoints (secrets encrypted at rest), their deliveries, feed cursors."""
        return WebhookRepository(self.session, self._secret_box())


_REPOSITORIES = tuple(
    name for name, value in vars(UnitOfWork).items() if isinstance(value, functools.cached_property)
)

UnitOfWorkFactory = Callable[[], UnitOfWork]
"""What services take: each call makes a new, not yet started, unit of work."""


def unit_of_work_factory(
    database: Database, secret_box: Callable[[], SecretBox]
) -> UnitOfWorkFactory:
    """A factory of units of work on ``database``."""
    return functools.partial(UnitOfWork, database, secret_box)


_T = TypeVar("_T")


def atomically(factory: UnitOfWorkFactory, work: Callable[[UnitOfWork], _T]) -> _T:
    """Run ``work`` in a new unit of work and commit it; roll back if ``work`` raises."""
    with factory() as uow:
        result = work(uow)
        uow.commit()
        return result
