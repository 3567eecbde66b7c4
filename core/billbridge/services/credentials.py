"""Credentials: OAuth 2.0 connections to destination tenants, owned by the core.

The life of a credential:

1. :meth:`Credentials.create` makes it INCOMPLETE with a TTL (10 minutes by default): it is
   listed as "NAME (Incomplete)" while the user is away at the provider's consent page, and
   removed if the consent is not completed in time (lazily, and by :meth:`Credentials.purge`).
2. :meth:`Credentials.authorization_url` returns the consent URL with a random, single-use
   ``state`` bound to the credential (only its SHA-256 is stored).
3. :meth:`Credentials.complete` takes the callback: refuses an unknown, used or expired state
   and ``error=access_denied``; exchanges the code (oauthlib builds and parses the protocol
   messages, httpx carries them); asks the destination plugin's ``authenticate`` hook which
   tenant the tokens are for; stores the tokens encrypted and marks the credential COMPLETE.
   When the consent covers several tenants (Xero organisations) and none was chosen,
   :class:`TenantChoiceRequired` lists them and :meth:`Credentials.choose_tenant` finishes.
4. Every later call goes through :meth:`Credentials.connection` / :meth:`Credentials.call`: an
   access token that expires within the margin is refreshed first; a 401 refreshes once and
   retries once. Refreshes are serialized per credential across threads and processes (a row
   lock on PostgreSQL; SQLite's write lock, taken by every unit of work), and a rotated refresh
   token is committed before the new access token is used. ``invalid_grant`` marks the
   credential NEEDS_RECONNECT and raises ``integration.authentication.error`` on every
   integration that uses it.

Credentials are never edited: delete and create again (as in m3ter). Deleting one revokes its
tokens at the provider (best effort) and disconnects the integrations that used it.
"""

from __future__ import annotations

import builtins
import functools
import os
import secrets
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, TypeVar

import attrs
import httpx
from oauthlib.oauth2 import WebApplicationClient

from billbridge.domain.clock import Clock
from billbridge.domain.models import (
    Credential,
    CredentialStatus,
    CredentialTokens,
    Event,
    EventType,
    Secret,
)
from billbridge.errors import (
    AuthenticationFailed,
    BillbridgeError,
    CredentialError,
    FieldError,
    MissingOAuthApp,
    TenantChoiceRequired,
    TokenExpired,
    TransientError,
    ValidationFailed,
)
from billbridge.logs import get_logger
from billbridge.plugin.contract import Connection, OAuthCallback, TenantChoice
from billbridge.plugin.http import transport_problem
from billbridge.plugin.manager import PluginRegistry
from billbridge.services.oauth import (
    Endpoints,
    InvalidGrant,
    OAuthApp,
    Tokens,
    choose,
    client_authentication,
    consent_url,
    oauth_spec,
    require_safe_url,
    state_hash,
    token_request,
)
from billbridge.settings import DestinationSettings, Settings
from billbridge.store import UnitOfWork, UnitOfWorkFactory, atomically, new_id

__all__ = ["Credentials"]

log = get_logger(__name__)

_T = TypeVar("_T")


class Credentials:
    """``engine.credentials``: create, complete, refresh, revoke and delete credentials."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        plugins: PluginRegistry,
        settings: Settings,
        clock: Clock,
        http: httpx.Client,
    ) -> None:
        self._uow = uow
        self._plugins = plugins
        self._settings = settings
        self._clock = clock
        self._http = http
        #: Who this process is, for refresh leases (a thread adds its own id).
        self._worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    # -- configuration ----------------------------------------------------------------------

    def configure_app(
        self,
        destination: str,
        *,
        client_id: str,
        client_secret: str | Secret,
        redirect_uri: str | None = None,
    ) -> None:
        """Store the OAuth app for ``destination`` (the client secret encrypted).

        Settings and ``BILLBRIDGE_<KEY>_CLIENT_ID``/``_CLIENT_SECRET`` take precedence.
        """
        self._plugins.destination(destination)
        errors = []
        if not client_id.strip():
            errors.append(FieldError("/clientId", "is required"))
        secret = client_secret if isinstance(client_secret, Secret) else Secret(client_secret)
        if not secret.reveal().strip():
            errors.append(FieldError("/clientSecret", "is required"))
        if redirect_uri is not None:
            try:
                require_safe_url(redirect_uri, "redirect URI")
            except CredentialError as exc:
                errors.append(FieldError("/redirectUri", str(exc)))
        if errors:
            raise ValidationFailed(errors, summary="OAuth app refused")
        atomically(
            self._uow,
            lambda uow: uow.oauth_apps.put(
                destination,
                client_id=client_id.strip(),
                client_secret=secret,
                redirect_uri=redirect_uri,
                at=self._clock.now(),
            ),
        )

    def _app(self, destination: str) -> OAuthApp:
        configured = self._settings.destination(destination)
        if configured.client_id is None or configured.client_secret is None:
            stored = atomically(self._uow, lambda uow: uow.oauth_apps.get(destination))
            if stored is not None:
                configured = configured.over(stored)
        if configured.client_id is None or configured.client_secret is None:
            env = f"BILLBRIDGE_{destination.upper()}_CLIENT_ID / _CLIENT_SECRET"
            raise MissingOAuthApp(
                f"no OAuth app configured for {destination}: set {env}, or call "
                "engine.credentials.configure_app(...) (CLI: billbridge credentials app)"
            )
        return OAuthApp(configured.client_id, configured.client_secret, configured.redirect_uri)

    def endpoints(self, destination: str) -> Endpoints:
        """The destination's OAuth and API endpoints, with configured overrides applied."""
        declared = self._plugins.destination(destination)
        spec = oauth_spec(declared)
        overrides: DestinationSettings = self._settings.destination(destination)
        api = overrides.api_base_url or declared.api_base_url
        if api is None:
            raise CredentialError(f"{destination} declares no API base URL; configure one")
        return Endpoints(
            authorize_url=overrides.authorize_url or spec.authorize_url,
            token_url=overrides.token_url or spec.token_url,
            revoke_url=overrides.revoke_url or spec.revoke_url,
            api_base_url=api.rstrip("/"),
        )

    # -- lifecycle --------------------------------------------------------------------------

    def create(self, name: str, destination: str, entity_type: str = "Bill") -> Credential:
        """A new INCOMPLETE credential that expires after the configured TTL (10 minutes)."""
        errors = []
        if not name.strip():
            errors.append(FieldError("/name", "is required"))
        try:
            declared = self._plugins.destination(destination)
        except BillbridgeError as exc:
            errors.append(FieldError("/destination", str(exc)))
        else:
            if declared.oauth is None:
                errors.append(FieldError("/destination", f"{destination} does not use OAuth"))
            if entity_type not in declared.entity_types:
                errors.append(
                    FieldError("/entityType", f"{destination} does not take {entity_type}")
                )
        if errors:
            raise ValidationFailed(errors, summary="credential refused")
        now = self._clock.now()
        credential = Credential(
            id=new_id(),
            name=name.strip(),
            destination=destination,
            entity_type=entity_type,
            status=CredentialStatus.INCOMPLETE,
            created_at=now,
            expires_at=now + self._settings.credential_ttl,
        )
        return atomically(self._uow, lambda uow: uow.credentials.add(credential))

    def get(self, credential_id: str) -> Credential:
        """One credential; an INCOMPLETE one whose consent window ended is removed first."""
        self.purge()
        return atomically(self._uow, lambda uow: uow.credentials.get(credential_id))

    def list(self, *, destination: str | None = None) -> builtins.list[Credential]:
        """Credentials (expired incomplete ones removed first), oldest first."""
        self.purge()
        return atomically(self._uow, lambda uow: uow.credentials.list(destination=destination))

    def purge(self) -> int:
        """Remove INCOMPLETE credentials whose consent window has ended; returns how many."""
        now = self._clock.now()
        removed = atomically(self._uow, lambda uow: uow.credentials.delete_expired(now))
        for credential_id in removed:
            log.info("removed credential %s: its consent was not completed in time", credential_id)
        return len(removed)

    def delete(self, credential_id: str, *, revoke: bool = True) -> None:
        """Delete a credential: revoke its tokens (best effort), disconnect its integrations."""
        credential = self.get(credential_id)
        if revoke and credential.has_tokens and credential.keys_match:
            try:
                self.revoke(credential)
            except BillbridgeError as exc:
                # The user asked to forget it; a provider that is down must not prevent that.
                log.warning(
                    "could not revoke credential %s at the provider: %s", credential_id, exc
                )
        atomically(self._uow, lambda uow: uow.credentials.delete(credential_id))

    # -- consent ----------------------------------------------------------------------------

    def authorization_url(self, credential_id: str, redirect_uri: str | None = None) -> str:
        """The provider's consent URL for an INCOMPLETE credential, with a fresh ``state``.

        ``redirect_uri`` defaults to the OAuth app's configured one. Each call makes a new
        state; only the last one is accepted.
        """
        credential = self.get(credential_id)
        if credential.status is not CredentialStatus.INCOMPLETE:
            raise CredentialError(
                f"credential {credential.display_name} is {credential.status.value.lower()}: "
                "credentials are not edited; delete it and create a new one"
            )
        app = self._app(credential.destination)
        redirect = redirect_uri or app.redirect_uri
        if not redirect:
            raise CredentialError(
                "no redirect URI: pass one or set "
                f"BILLBRIDGE_{credential.destination.upper()}_REDIRECT_URI"
            )
        require_safe_url(redirect, "redirect URI")
        endpoints = self.endpoints(credential.destination)
        require_safe_url(endpoints.authorize_url, "authorize URL")
        spec = oauth_spec(self._plugins.destination(credential.destination))
        state = secrets.token_urlsafe(32)

        def remember(uow: UnitOfWork) -> None:
            repo = uow.credentials
            repo.set_state_hash(credential.id, state_hash(state))
            repo.update(
                attrs.evolve(credential, data={**credential.data, "redirect_uri": redirect})
            )

        atomically(self._uow, remember)
        client = WebApplicationClient(app.client_id)
        params: dict[str, Any] = dict(spec.extra_authorize_params)
        return consent_url(
            client,
            endpoints.authorize_url,
            redirect_uri=redirect,
            scope=list(spec.scopes),
            state=state,
            **params,
        )

    def complete(
        self,
        state: str,
        code: str | None = None,
        *,
        realm_id: str | None = None,
        error: str | None = None,
        error_description: str | None = None,
        tenant_id: str | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Credential:
        """Finish the consent from the provider's callback.

        :param state: the callback's ``state``.
        :param code: the authorization code.
        :param realm_id: QuickBooks' ``realmId`` from the callback.
        :param error: the callback's ``error`` (e.g. ``access_denied``): refused clearly.
        :param tenant_id: the tenant to connect when the consent covers several.
        :param params: every callback query parameter, for plugins that need more.
        :raises CredentialError: unknown, used or expired state; refused consent; the token
            endpoint failed. Nothing is saved then.
        :raises TenantChoiceRequired: several tenants and none chosen (tokens are kept on the
            still-incomplete credential until it expires; call :meth:`choose_tenant`).
        """
        credential = self._consume(state)
        if error:
            detail = f": {error_description}" if error_description else ""
            raise CredentialError(
                f"the provider refused access ({error}{detail}); nothing was connected"
            )
        if not code:
            raise CredentialError("the consent callback carries no authorization code")
        callback_params = {**(params or {}), "state": state, "code": code}
        if realm_id:
            callback_params["realmId"] = realm_id
        tokens, choices = self._exchange(
            credential, code, callback_params, tenant_hint=tenant_id or realm_id
        )
        with_tokens = tokens.apply(credential, self._clock.now())
        stored = tokens.stored(None)
        chosen = choose(choices, tenant_id)
        if chosen is None:
            pending = attrs.evolve(
                with_tokens,
                data={
                    **with_tokens.data,
                    "tenant_choices": [{"tenantId": c.tenant_id, "name": c.name} for c in choices],
                },
            )
            atomically(self._uow, lambda uow: uow.credentials.update(pending, stored))
            raise TenantChoiceRequired(credential.id, choices)
        return self._finish(with_tokens, chosen, stored)

    def _consume(self, state: str) -> Credential:
        """The INCOMPLETE credential whose consent this callback finishes (its state now used)."""
        self.purge()
        credential = atomically(
            self._uow, lambda uow: uow.credentials.consume_state_hash(state_hash(state))
        )
        if credential is None:
            raise CredentialError(
                "this consent callback is not valid: its state is unknown, already used, or "
                "its credential expired; create the credential again"
            )
        if credential.expires_at is not None and credential.expires_at <= self._clock.now():
            atomically(self._uow, lambda uow: uow.credentials.delete(credential.id))
            raise CredentialError(
                f"the consent for {credential.name} took too long: the credential expired; "
                "create it again"
            )
        return credential

    def _exchange(
        self,
        credential: Credential,
        code: str,
        params: Mapping[str, str],
        *,
        tenant_hint: str | None,
    ) -> tuple[Tokens, builtins.list[TenantChoice]]:
        """Exchange the code for tokens and ask the plugin which tenants they reach."""
        app = self._app(credential.destination)
        redirect = str(credential.data.get("redirect_uri") or app.redirect_uri or "")
        client = WebApplicationClient(app.client_id)
        body = client.prepare_request_body(
            code=code, redirect_uri=redirect, include_client_id=False
        )
        tokens = self._token_request(credential.destination, app, body, purpose="code")
        callback = OAuthCallback(
            params=params, access_token=tokens.access_token, tenant_hint=tenant_hint
        )
        choices = self._plugins.call(
            "authenticate",
            credential.destination,
            credential=credential,
            callback=callback,
            http=self._http,
            api_base_url=self.endpoints(credential.destination).api_base_url,
        )
        found = builtins.list(choices or ())
        if not found:
            raise CredentialError(f"{credential.destination} reported no tenant for this consent")
        return tokens, found

    def choose_tenant(self, credential_id: str, tenant_id: str) -> Credential:
        """Complete a credential whose consent covered several tenants."""
        credential = self.get(credential_id)
        offered = credential.data.get("tenant_choices") or []
        choice = next((c for c in offered if c.get("tenantId") == tenant_id), None)
        if credential.status is not CredentialStatus.INCOMPLETE or choice is None:
            raise CredentialError(f"{tenant_id} is not one of the tenants this consent offered")
        return self._finish(credential, TenantChoice(tenant_id=tenant_id, name=choice.get("name")))

    def _finish(
        self,
        credential: Credential,
        tenant: TenantChoice,
        tokens: CredentialTokens | None = None,
    ) -> Credential:
        data = {k: v for k, v in credential.data.items() if k != "tenant_choices"}
        data.update({k: v for k, v in tenant.data.items() if isinstance(v, str | int | bool)})
        done = attrs.evolve(
            credential,
            status=CredentialStatus.COMPLETE,
            expires_at=None,
            tenant_id=tenant.tenant_id,
            tenant_name=tenant.name,
            data=data,
        )
        return atomically(self._uow, lambda uow: uow.credentials.update(done, tokens))

    # -- using tokens -----------------------------------------------------------------------

    def _needs_refresh(self, credential: Credential, tokens: CredentialTokens) -> bool:
        expires = credential.access_token_expires_at
        if tokens.access_token is None or expires is None:
            return True
        return expires - self._settings.token_refresh_margin <= self._clock.now()

    def _usable(self, credential: Credential) -> Credential:
        if credential.status is CredentialStatus.NEEDS_RECONNECT:
            raise AuthenticationFailed(
                f"credential {credential.name} needs reconnecting: delete it and connect again"
            )
        if credential.status is not CredentialStatus.COMPLETE or credential.tenant_id is None:
            raise AuthenticationFailed(f"credential {credential.display_name} is not connected")
        return credential

    def _read(self, credential_id: str) -> tuple[Credential, CredentialTokens]:
        """The credential and its tokens, read together."""

        def read(uow: UnitOfWork) -> tuple[Credential, CredentialTokens]:
            return uow.credentials.get(credential_id), uow.credentials.tokens(credential_id)

        return atomically(self._uow, read)

    def connection(
        self,
        credential_id: str,
        *,
        report_limit: Callable[[str, int], None] | None = None,
    ) -> Connection:
        """A connection with an access token valid for at least the refresh margin.

        The connection is the one place a token leaves billbridge: it goes to the plugin.

        :param report_limit: receives what the destination says is left of its limits.
        """
        self.purge()
        credential, tokens = self._read(credential_id)
        self._usable(credential)
        if self._needs_refresh(credential, tokens):
            credential, tokens = self._refreshed(credential_id)
        return self._connection_for(credential, tokens, report_limit)

    def _connection_for(
        self,
        credential: Credential,
        tokens: CredentialTokens,
        report_limit: Callable[[str, int], None] | None = None,
    ) -> Connection:
        if tokens.access_token is None or credential.tenant_id is None:
            raise AuthenticationFailed(f"credential {credential.display_name} has no token")
        return Connection(
            destination=credential.destination,
            tenant_id=credential.tenant_id,
            access_token=tokens.access_token,
            http=self._http,
            api_base_url=self.endpoints(credential.destination).api_base_url,
            credential_id=credential.id,
            report_limit=report_limit,
        )

    def call(
        self,
        credential_id: str,
        work: Callable[[Connection], _T],
        *,
        report_limit: Callable[[str, int], None] | None = None,
    ) -> _T:
        """Run ``work`` with a fresh connection; on ``TokenExpired`` refresh once, retry once."""
        connection = self.connection(credential_id, report_limit=report_limit)
        try:
            return work(connection)
        except TokenExpired:
            credential, tokens = self._refreshed(
                credential_id, force=True, seen_access_token=connection.access_token
            )
            return work(self._connection_for(credential, tokens, report_limit))

    def refresh(self, credential_id: str, *, force: bool = False) -> Credential:
        """Refresh the access token now (once for all concurrent callers); see :meth:`call`.

        :raises AuthenticationFailed: ``invalid_grant``: the credential now needs reconnecting.
        :raises TransientError: the token endpoint is unreachable or failing; try later.
        """
        return self._refreshed(credential_id, force=force)[0]

    def _refreshed(
        self,
        credential_id: str,
        *,
        force: bool = False,
        seen_access_token: Secret | None = None,
    ) -> tuple[Credential, CredentialTokens]:
        """Fresh tokens, refreshed by exactly one of the concurrent callers.

        Threads of this process queue on a lock; across processes one takes the credential's
        refresh *lease* in a short transaction of its own, talks to the token endpoint with no
        transaction open (so on SQLite no other writer waits for an HTTP round trip), then
        stores the rotated tokens and gives the lease back. The others wait for the lease and
        read what it stored. A worker that dies holding the lease loses it when it expires.

        :param force: refresh even if the token looks valid (the provider answered 401);
            skipped when the stored token differs from ``seen_access_token`` (someone else
            refreshed since the caller read it).
        """

        def wanted(credential: Credential, tokens: CredentialTokens) -> bool:
            if force:
                return seen_access_token is None or tokens.access_token == seen_access_token
            return self._needs_refresh(credential, tokens)

        app = self._app(self.get(credential_id).destination)
        owner = f"{self._worker}:{threading.get_ident()}"
        with self._local_lock(credential_id):
            credential, tokens = self._leased(credential_id, owner, wanted)
            if not wanted(credential, tokens):
                return credential, tokens
            try:
                return self._exchange_refresh(credential, tokens, app, owner)
            finally:
                atomically(self._uow, functools.partial(_release, credential_id, owner))

    def _leased(
        self,
        credential_id: str,
        owner: str,
        wanted: Callable[[Credential, CredentialTokens], bool],
    ) -> tuple[Credential, CredentialTokens]:
        """Wait until a refresh is not wanted any more, or this caller holds the lease."""
        lease = timedelta(seconds=self._settings.http_timeout + 30)
        deadline = self._clock.time() + 2 * lease.total_seconds()
        while True:
            credential, tokens = self._read(credential_id)
            self._usable(credential)
            if not wanted(credential, tokens):
                return credential, tokens
            taken = atomically(
                self._uow, functools.partial(self._take, credential_id, owner, lease)
            )
            if taken:
                # Read again under the lease: another process may have just stored new tokens.
                return self._read(credential_id)
            if self._clock.time() > deadline:
                raise TransientError(
                    f"credential {credential.display_name} has been refreshing elsewhere for too "
                    "long; tried again later"
                )
            self._clock.sleep(0.05)

    def _take(self, credential_id: str, owner: str, lease: timedelta, uow: UnitOfWork) -> bool:
        now = self._clock.now()
        return uow.credentials.take_refresh_lease(credential_id, owner, now=now, until=now + lease)

    def _exchange_refresh(
        self,
        credential: Credential,
        tokens: CredentialTokens,
        app: OAuthApp,
        owner: str,
    ) -> tuple[Credential, CredentialTokens]:
        """Ask the token endpoint (no transaction open), then store what it answered."""
        if tokens.refresh_token is None:
            raise atomically(
                self._uow, lambda uow: self._reconnect_needed(uow, credential, "no refresh token")
            )
        client = WebApplicationClient(app.client_id)
        body = client.prepare_refresh_body(
            refresh_token=tokens.refresh_token.reveal(), include_client_id=False
        )
        try:
            answer = self._token_request(credential.destination, app, body, purpose="refresh")
        except InvalidGrant as refused:
            why = str(refused)
            raise atomically(
                self._uow, lambda uow: self._reconnect_needed(uow, credential, why)
            ) from None
        refreshed = answer.apply(credential, self._clock.now())
        stored = answer.stored(tokens)

        def store(uow: UnitOfWork) -> Credential:
            # The rotated refresh token is committed before the new access token is used.
            return uow.credentials.update(refreshed, stored)

        return atomically(self._uow, store), stored

    def _local_lock(self, credential_id: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(credential_id, threading.Lock())

    def _reconnect_needed(
        self, uow: UnitOfWork, credential: Credential, why: str
    ) -> AuthenticationFailed:
        """Mark the credential NEEDS_RECONNECT and raise an event on each of its integrations."""
        uow.credentials.update(attrs.evolve(credential, status=CredentialStatus.NEEDS_RECONNECT))
        message = (
            f"the connection {credential.name!r} to {credential.destination} was refused by the "
            f"provider ({why}): reconnect it (delete the credential, create a new one, and "
            "connect it to this integration)"
        )
        events = uow.events
        now = self._clock.now()
        for integration in uow.integrations.list(destination=credential.destination):
            if integration.credential_id == credential.id:
                events.add(
                    Event(
                        id=new_id(),
                        type=EventType.AUTHENTICATION_ERROR,
                        message=message,
                        created_at=now,
                        integration_id=integration.id,
                        details={"credentialId": credential.id},
                    )
                )
        return AuthenticationFailed(message)

    def revoke(self, credential: Credential | str) -> None:
        """Revoke the credential's tokens at the provider (it cannot be used afterwards)."""
        if isinstance(credential, str):
            credential = self.get(credential)
        endpoints = self.endpoints(credential.destination)
        spec = oauth_spec(self._plugins.destination(credential.destination))
        stored = atomically(self._uow, lambda uow: uow.credentials.tokens(credential.id))
        token = stored.refresh_token or stored.access_token
        if endpoints.revoke_url is None or token is None:
            return
        require_safe_url(endpoints.revoke_url, "revoke URL")
        app = self._app(credential.destination)
        auth, fields = client_authentication(spec, app)
        body = {"token": token.reveal(), **fields}
        sent: dict[str, Any] = {"json" if spec.revoke_body == "json" else "data": body}
        if auth is not None:
            sent["auth"] = auth
        try:
            response = self._http.post(endpoints.revoke_url, **sent)
        except httpx.HTTPError as exc:
            raise TransientError(
                f"could not reach the revoke endpoint: {transport_problem(exc)}"
            ) from None
        if response.status_code >= 400:
            raise CredentialError(f"the revoke endpoint answered HTTP {response.status_code}")

    def _token_request(self, destination: str, app: OAuthApp, body: str, *, purpose: str) -> Tokens:
        return token_request(
            self._http,
            self._plugins.destination(destination),
            self.endpoints(destination).token_url,
            app,
            body,
            purpose=purpose,
        )


def _release(credential_id: str, owner: str, uow: UnitOfWork) -> None:
    uow.credentials.release_refresh_lease(credential_id, owner)
