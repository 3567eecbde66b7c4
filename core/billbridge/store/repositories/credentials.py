"""Credentials and OAuth apps; every token and client secret is encrypted before it is stored."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from billbridge.domain.models import Credential, CredentialStatus, Secret
from billbridge.errors import NotFound
from billbridge.secrets import SecretBox
from billbridge.settings import DestinationSettings
from billbridge.store.common import get_row, insert_or_conflict, plain, rowcount
from billbridge.store.tables import CredentialRow, OAuthAppRow

__all__ = ["CredentialRepository", "OAuthAppRepository"]


class CredentialRepository:
    """Credentials. Tokens are encrypted with ``secret_box`` before they reach the database."""

    def __init__(self, session: Session, secret_box: SecretBox) -> None:
        self.session = session
        self._box = secret_box

    def add(self, credential: Credential) -> Credential:
        """Save a new credential."""
        row = CredentialRow(
            id=credential.id,
            created_at=credential.created_at,
            oauth_state_used=False,
            version=1,
            **self._values(credential),
        )
        insert_or_conflict(self.session, row, f"credential {credential.id} already exists")
        return self.get(credential.id)

    def get(self, credential_id: str, *, for_update: bool = False) -> Credential:
        """The credential with this id, or ``NotFound``.

        ``for_update=True`` locks the row until the unit of work ends (``SELECT ... FOR
        UPDATE``) on PostgreSQL, so that one worker refreshes a token while the others wait and
        then read the new one. On SQLite every write transaction already holds the database's
        write lock, which serialises the same way.
        """
        statement = select(CredentialRow).where(CredentialRow.id == credential_id)
        if for_update:
            statement = statement.with_for_update()
        row = self.session.scalar(statement.execution_options(populate_existing=True))
        if row is None:
            raise NotFound(f"credential {credential_id} not found")
        return self._to_domain(row)

    def list(self, *, destination: str | None = None) -> builtins.list[Credential]:
        """Credentials, optionally of one destination, oldest first."""
        statement = select(CredentialRow)
        if destination is not None:
            statement = statement.where(CredentialRow.destination == destination)
        statement = statement.order_by(CredentialRow.created_at, CredentialRow.id)
        rows = self.session.scalars(statement.execution_options(populate_existing=True))
        return [self._to_domain(row) for row in rows]

    def update(self, credential: Credential) -> Credential:
        """Save changes (tokens re-encrypted with the newest key). Raises ``NotFound``."""
        result = self.session.execute(
            update(CredentialRow)
            .where(CredentialRow.id == credential.id)
            .values(version=CredentialRow.version + 1, **self._values(credential)),
            execution_options={"synchronize_session": False},
        )
        if rowcount(result) == 0:
            raise NotFound(f"credential {credential.id} not found")
        return self.get(credential.id)

    def delete(self, credential_id: str) -> None:
        """Delete a credential; integrations using it become unconnected."""
        result = self.session.execute(
            delete(CredentialRow).where(CredentialRow.id == credential_id),
            execution_options={"synchronize_session": False},
        )
        if rowcount(result) == 0:
            raise NotFound(f"credential {credential_id} not found")

    def set_state_hash(self, credential_id: str, state_hash: str) -> None:
        """Remember the hash of a new OAuth ``state`` for this credential (unused)."""
        result = self.session.execute(
            update(CredentialRow)
            .where(CredentialRow.id == credential_id)
            .values(oauth_state_hash=state_hash, oauth_state_used=False),
            execution_options={"synchronize_session": False},
        )
        if rowcount(result) == 0:
            raise NotFound(f"credential {credential_id} not found")

    def find_by_state_hash(self, state_hash: str) -> Credential | None:
        """The credential whose OAuth ``state`` hashes to ``state_hash`` (used or not)."""
        row = self.session.scalar(
            select(CredentialRow)
            .where(CredentialRow.oauth_state_hash == state_hash)
            .execution_options(populate_existing=True)
        )
        return None if row is None else self._to_domain(row)

    def consume_state_hash(self, state_hash: str) -> Credential | None:
        """Mark an OAuth ``state`` used and return its credential; ``None`` if unknown or used.

        Atomic (``UPDATE ... WHERE used = false``): of two callbacks carrying the same state,
        exactly one gets the credential. Expiry is for the caller to check.
        """
        result = self.session.execute(
            update(CredentialRow)
            .where(
                CredentialRow.oauth_state_hash == state_hash,
                CredentialRow.oauth_state_used.is_(False),
            )
            .values(oauth_state_used=True),
            execution_options={"synchronize_session": False},
        )
        if rowcount(result) == 0:
            return None
        return self.find_by_state_hash(state_hash)

    def delete_expired(self, now: datetime) -> builtins.list[str]:
        """Delete INCOMPLETE credentials whose consent window ended; returns their ids."""
        expired = (
            CredentialRow.status == CredentialStatus.INCOMPLETE.value,
            CredentialRow.expires_at.is_not(None),
            CredentialRow.expires_at <= now,
        )
        ids = builtins.list(self.session.scalars(select(CredentialRow.id).where(*expired)))
        if ids:
            self.session.execute(
                delete(CredentialRow).where(CredentialRow.id.in_(ids), *expired),
                execution_options={"synchronize_session": False},
            )
        return ids

    def _values(self, credential: Credential) -> dict[str, Any]:
        box = self._box
        return {
            "name": credential.name,
            "destination": credential.destination,
            "entity_type": credential.entity_type,
            "status": credential.status.value,
            "expires_at": credential.expires_at,
            "tenant_id": credential.tenant_id,
            "tenant_name": credential.tenant_name,
            "access_token_enc": (
                None if credential.access_token is None else box.encrypt(credential.access_token)
            ),
            "refresh_token_enc": (
                None if credential.refresh_token is None else box.encrypt(credential.refresh_token)
            ),
            "access_token_expires_at": credential.access_token_expires_at,
            "refresh_token_expires_at": credential.refresh_token_expires_at,
            "scopes": builtins.list(credential.scopes),
            "data": plain(credential.data),
        }

    def _to_domain(self, row: CredentialRow) -> Credential:
        box = self._box
        return Credential(
            id=row.id,
            name=row.name,
            destination=row.destination,
            entity_type=row.entity_type,
            status=CredentialStatus(row.status),
            created_at=row.created_at,
            expires_at=row.expires_at,
            tenant_id=row.tenant_id,
            tenant_name=row.tenant_name,
            access_token=None
            if row.access_token_enc is None
            else box.decrypt(row.access_token_enc),
            refresh_token=(
                None if row.refresh_token_enc is None else box.decrypt(row.refresh_token_enc)
            ),
            access_token_expires_at=row.access_token_expires_at,
            refresh_token_expires_at=row.refresh_token_expires_at,
            scopes=tuple(row.scopes),
            data=row.data,
        )


class OAuthAppRepository:
    """The OAuth app (client id, encrypted client secret, redirect URI) per destination."""

    def __init__(self, session: Session, secret_box: SecretBox) -> None:
        self.session = session
        self._box = secret_box

    def get(self, destination: str) -> DestinationSettings | None:
        """The stored app for ``destination`` as settings, or ``None``."""
        row = get_row(self.session, OAuthAppRow, destination)
        if row is None:
            return None
        return DestinationSettings(
            client_id=row.client_id,
            client_secret=self._box.decrypt(row.client_secret_enc),
            redirect_uri=row.redirect_uri,
        )

    def put(
        self,
        destination: str,
        *,
        client_id: str,
        client_secret: Secret,
        redirect_uri: str | None,
        at: datetime,
    ) -> None:
        """Create or replace the app of ``destination`` (the secret re-encrypted)."""
        row = get_row(self.session, OAuthAppRow, destination)
        if row is None:
            row = OAuthAppRow(destination=destination)
            self.session.add(row)
        row.client_id = client_id
        row.client_secret_enc = self._box.encrypt(client_secret)
        row.redirect_uri = redirect_uri
        row.updated_at = at
        self.session.flush()

    def destinations(self) -> builtins.list[str]:
        """Every destination with a stored app."""
        return builtins.list(
            self.session.scalars(select(OAuthAppRow.destination).order_by(OAuthAppRow.destination))
        )

    def delete(self, destination: str) -> None:
        """Forget the app of ``destination`` (``NotFound`` if none)."""
        result = self.session.execute(
            delete(OAuthAppRow).where(OAuthAppRow.destination == destination),
            execution_options={"synchronize_session": False},
        )
        if rowcount(result) == 0:
            raise NotFound(f"no OAuth app stored for {destination}")
