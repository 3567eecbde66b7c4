"""One repository per aggregate: the only code that turns rows into domain objects and back.

Repositories are made by a :class:`~billbridge.store.uow.UnitOfWork` for its transaction;
everything they return is an attrs object from :mod:`billbridge.domain.models`, so services
and plugins never depend on the schema.
"""

from billbridge.store.repositories.api_keys import ApiKeyRepository
from billbridge.store.repositories.bills import BillRepository
from billbridge.store.repositories.credentials import CredentialRepository, OAuthAppRepository
from billbridge.store.repositories.events import EventRepository
from billbridge.store.repositories.integrations import IntegrationRepository
from billbridge.store.repositories.ledger import LedgerRepository
from billbridge.store.repositories.mappings import MappingRepository
from billbridge.store.repositories.runs import DUE_STATUSES, OPEN_STATUSES, RunRepository
from billbridge.store.repositories.skips import SkipRepository
from billbridge.store.repositories.tenants import TenantRepository, TenantState
from billbridge.store.repositories.webhooks import WebhookRepository

__all__ = [
    "DUE_STATUSES",
    "OPEN_STATUSES",
    "ApiKeyRepository",
    "BillRepository",
    "CredentialRepository",
    "EventRepository",
    "IntegrationRepository",
    "LedgerRepository",
    "MappingRepository",
    "OAuthAppRepository",
    "RunRepository",
    "SkipRepository",
    "TenantRepository",
    "TenantState",
    "WebhookRepository",
]
