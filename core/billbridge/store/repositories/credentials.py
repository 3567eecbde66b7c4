"""Credentials and OAuth apps; every token and client secret is encrypted before it is stored."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from billbridge.domain.models import Credential, CredentialStatus, CredentialTokens, Secret
from billbridge.errors import NotFound
from billbridge.secrets import SecretBox
from billbridge.settings import DestinationSettings
from billbridge.store.common import (
    get_row,
    insert_or_conflict,
    plain,
    rowcount,
    stored_secret_sample,
)
from billbridge.store.tables import CredentialRow, OAuthAppRow

__all__ = ["CredentialRepository", "OAuthAppRepository"]


class CredentialRepository:
    """Credentials. Tokens are encrypted with ``secret_box`` before they reach the database, and
    come back out only through :meth:`tokens`: a :class:`Credential` never holds them."""

    def __init__(self, session: Session, secret_box: SecretBox) -> None:
        self.session = session
        self._box = secret_box

    def add(self, credential: Credential) -> Credential:
        """Save a new credential (no tokens yet)."""
        row = CredentialRow(
            id=credential.id,
            created_at=credential.created_at,
            oauth_state_used=False,
            version=1,
            access_token_enc=None,
            refresh_token_enc=None,
            **self._values(credential),
        )
        insert_or_conflict(self.session, row, f"credential {credential.id} already exists")
        return self.get(credential.id)

    def get(self, credential_id: str, *, for_update: bool = False) -> Credential:
        """The credential with this id, or ``NotFound``.

        ``for_update=True`` locks the row until the unit of work ends (``SELECT ... FOR
        UPDATE``) on PostgreSQL; on SQLite every write transaction holds the write lock anyway.
        """
        return self._to_domain(self._row(credential_id, for_update=for_update))

    def _row(self, credential_id: str, *, for_update: bool = False) -> CredentialRow:
        statement = select(CredentialRow).where(CredentialRow.id == credential_id)
        if for_update:
            statement = statement.with_for_update()
        row = self.session.scalar(statement.execution_options(populate_existing=True))
        if row is None:
            raise NotFound(f"credential {credential_id} not found")
        return row

    def tokens(self, credential_id: str) -> CredentialTokens:
        """The credential's tokens, decrypted (``SecretKeyError`` if no key can open them)."""
        row = self._row(credential_id)
        box = self._box
        return CredentialTokens(
            access_token=None
            if row.access_token_enc is None
            else box.decrypt(row.access_token_enc),
            refresh_token=(
                None if row.refresh_token_enc is None else box.decrypt(row.refresh_token_enc)
            ),
        )

    def list(self, *, destination: str | None = None) -> builtins.list[Credential]:
        """Credentials, optionally of one destination, oldest first."""
        statement = select(CredentialRow)
        if destination is not None:
            statement = statement.where(CredentialRow.destination == destination)
        statement = statement.order_by(CredentialRow.created_at, CredentialRow.id)
        rows = self.session.scalars(statement.execution_options(populate_existing=True))
        return [self._to_domain(row) for row in rows]

    def update(self, credential: Credential, tokens: CredentialTokens | None = None) -> Credential:
        """Save changes; with ``tokens``, store them too (encrypted with the newest key).

        Without ``tokens`` the stored ones are kept as they are. Raises ``NotFound``.
        """
        values = self._values(credential)
        if tokens is not None:
            self._box.require_readable(stored_secret_sample(self.session))
            values["access_token_enc"] = self._seal(tokens.access_token)
            values["refresh_token_enc"] = self._seal(tokens.refresh_token)
        result = self.session.execute(
            update(CredentialRow)
            .where(CredentialRow.id == credential.id)
            .values(version=CredentialRow.version + 1, **values),
            execution_options={"synchronize_session": False},
        )
        if rowcount(result) == 0:
            raise NotFound(f"credential {credential.id} not found")
        return self.get(credential.id)

    def rotate_secrets(self) -> int:
        """Re-encrypt every stored token with the newest key; returns how many credentials.

        :raises SecretKeyError: a token none of the keys can open (nothing is rewritten then:
            the unit of work rolls back).
        """
        rows = builtins.list(self.session.scalars(select(CredentialRow)))
        for row in rows:
            if row.access_token_enc is not None:
                row.access_token_enc = self._box.rotate(row.access_token_enc)
            if row.refresh_token_enc is not None:
                row.refresh_token_enc = self._box.rotate(row.refresh_token_enc)
        self.session.flush()
        return sum(1 for r in rows if r.access_token_enc or r.refresh_token_enc)

    def take_refresh_lease(
        self, credential_id: str, owner: str, *, now: datetime, until: datetime
    ) -> bool:
        """Become the one refreshing this credential's tokens until ``until``; False when
        someone else holds an unexpired lease (or the credential is gone)."""
        result = self.session.execute(
            update(CredentialRow)
            .where(
                CredentialRow.id == credential_id,
                or_(
                    CredentialRow.refresh_until.is_(None),
                    CredentialRow.refresh_until < now,
                    CredentialRow.refresh_owner == owner,
                ),
            )
            .values(refresh_owner=owner, refresh_until=until),
            execution_options={"synchronize_session": False},
        )
        return rowcount(result) == 1

    def release_refresh_lease(self, credential_id: str, owner: str) -> None:
        """Give a refresh lease back (a no-op when it is not ``owner``'s any more)."""
        self.session.execute(
            update(CredentialRow)
            .where(CredentialRow.id == credential_id, CredentialRow.refresh_owner == owner)
            .values(refresh_owner=None, refresh_until=None),
            execution_options={"synchronize_session": False},
        )

    def refresh_lease(self, credential_id: str) -> tuple[str | None, datetime | None]:
        """Who holds the refresh lease, and until when."""
        row = self.session.execute(
            select(CredentialRow.refresh_owner, CredentialRow.refresh_until).where(
                CredentialRow.id == credential_id
            )
        ).one_or_none()
        return (None, None) if row is None else (row.refresh_owner, row.refresh_until)

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

    def _seal(self, secret: Secret | None) -> str | None:
        return None if secret is None else self._box.encrypt(secret)

    def _readable(self, row: CredentialRow) -> bool:
        """True when the configured keys can open the stored tokens."""
        token = row.refresh_token_enc or row.access_token_enc
        return token is None or self._box.can_decrypt(token)

    @staticmethod
    def _values(credential: Credential) -> dict[str, Any]:
        return {
            "name": credential.name,
            "destination": credential.destination,
            "entity_type": credential.entity_type,
            "status": credential.status.value,
            "expires_at": credential.expires_at,
            "tenant_id": credential.tenant_id,
            "tenant_name": credential.tenant_name,
            "access_token_expires_at": credential.access_token_expires_at,
            "refresh_token_expires_at": credential.refresh_token_expires_at,
            "scopes": builtins.list(credential.scopes),
            "data": plain(credential.data),
        }

    def _to_domain(self, row: CredentialRow) -> Credential:
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
            access_token_expires_at=row.access_token_expires_at,
            refresh_token_expires_at=row.refresh_token_expires_at,
            scopes=tuple(row.scopes),
            data=row.data,
            has_tokens=row.access_token_enc is not None or row.refresh_token_enc is not None,
            keys_match=self._readable(row),
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
        self._box.require_readable(stored_secret_sample(self.session))
        row = get_row(self.session, OAuthAppRow, destination)
        if row is None:
            row = OAuthAppRow(destination=destination)
            self.session.add(row)
        row.client_id = client_id
        row.client_secret_enc = self._box.encrypt(client_secret)
        row.redirect_uri = redirect_uri
        row.updated_at = at
        self.session.flush()

    def rotate_secrets(self) -> int:
        """Re-encrypt every client secret with the newest key; returns how many."""
        rows = builtins.list(self.session.scalars(select(OAuthAppRow)))
        for row in rows:
            row.client_secret_enc = self._box.rotate(row.client_secret_enc)
        self.session.flush()
        return len(rows)

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
