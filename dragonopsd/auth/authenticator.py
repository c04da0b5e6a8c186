"""Turns an Authorization header into a Principal: an API token first, then a JWT."""

from __future__ import annotations

import time
from typing import Protocol

from ..config import AuthConfig
from ..model.principal import Principal, ProfileRole, Scope
from ..store.protocols import TokenRepo
from ..store.tokens import TOKEN_PREFIX, Profile
from .tokens import TokenAuth, scope_of

KNOWN_MAX = 1024  # remembered headers; a caller rotating through more only costs the hash


class AuthFailure(Exception):
    """Why a caller was not authenticated (every failure counts toward the 429 limit)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Identity(Protocol):
    """What a verified JWT tells us."""

    @property
    def sub(self) -> str:
        """The subject (Supabase user id)."""
        ...

    @property
    def email(self) -> str | None:
        """The email claim, if any."""
        ...

    @property
    def exp(self) -> float | None:
        """Expiry as Unix time."""
        ...


class JwtCheck(Protocol):
    """The JWT verifier as the authenticator uses it."""

    @property
    def enabled(self) -> bool:
        """True when a secret or JWKS is configured."""
        ...

    async def verify(self, token: str) -> Identity:
        """The verified identity; raises on any invalid token."""
        ...


class Authenticator:
    """Checks bearer credentials; creates a JWT subject's profile on first sight."""

    def __init__(self, cfg: AuthConfig, tokens: TokenAuth, jwt: JwtCheck, store: TokenRepo):
        self._default_role: ProfileRole = cfg.default_role
        # Bumped when a reload changes how JWTs are verified: a websocket that signed in with
        # a JWT under older settings is closed by the hub's credential re-check.
        self.jwt_generation = 0
        self.tokens = tokens
        self.jwt = jwt
        self.store = store
        # JWT subject -> (role, scope) as its profile last read, so a request costs no query.
        self._roles: dict[str, tuple[ProfileRole, Scope | None]] = {}
        # Authorization header -> principal, for API tokens that checked out: a repeat caller
        # costs one dict lookup instead of parsing and SHA-256 (tests/bench/api.py). Emptied
        # whenever the usable tokens are reloaded (create, revoke, another process's change)
        # and when full; expiry is still checked on every hit.
        self._known: dict[str, Principal] = {}
        self._known_generation = -1
        tokens.reloaded.append(self._reread_profiles)

    async def authenticate(self, header: str | None) -> Principal:
        """The principal for an ``Authorization`` header, or AuthFailure."""
        if not header:
            raise AuthFailure("missing Authorization: Bearer <token>")
        if self._known_generation != self.tokens.generation:
            self._known.clear()
            self._known_generation = self.tokens.generation
        known = self._known.get(header)
        if known is not None and (known.expires_at is None or known.expires_at > time.time()):
            return known
        scheme, _, credential = header.strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise AuthFailure("expected Authorization: Bearer <token>")
        principal = self.tokens.principal(credential)
        if principal is None and credential.startswith(TOKEN_PREFIX):
            # Perhaps minted a moment ago by another process (`dragonopsd token create`):
            # look again in the store before refusing it.
            await self.tokens.fresh()
            principal = self.tokens.principal(credential)
        if principal is not None:
            if len(self._known) >= KNOWN_MAX:
                self._known.clear()
            self._known[header] = principal
            return principal
        if self.jwt.enabled and credential.count(".") == 2:
            try:
                identity = await self.jwt.verify(credential)
            except Exception as exc:  # the verifier's own error type; its text has no token
                raise AuthFailure(f"invalid token: {exc}") from None
            access = self._roles.get(identity.sub)
            if access is None:
                profile = await self.store.ensure_profile(
                    identity.sub, identity.email, self._default_role
                )
                access = self._roles[identity.sub] = (profile.role, scope_of(profile.scope))
            role, scope = access
            return Principal(
                "jwt",
                identity.sub,
                identity.email or identity.sub,
                role,
                identity.exp,
                scope=None if role == "admin" else scope,
            )
        raise AuthFailure("invalid, expired or revoked token")

    def configure(self, cfg: AuthConfig, *, jwt_changed: bool) -> None:
        """Take a (re)loaded [auth] section's default role for profiles made from now on;
        jwt_changed: the verifier took new settings, so JWT sessions must sign in again."""
        self._default_role = cfg.default_role
        if jwt_changed:
            self.jwt_generation += 1

    def access(self, subject: str) -> tuple[ProfileRole, Scope | None] | None:
        """A JWT subject's role and scope as last read (None before its first request): the
        websocket hub closes a socket whose profile changed since it signed in."""
        return self._roles.get(subject)

    async def _reread_profiles(self) -> None:
        """A token or profile was written, perhaps by another process: the profiles remembered
        here are read again, so a role or scope an admin changed on another core applies on
        this one too (and its websockets close, api/ws.py), not only after a restart."""
        if not self._roles:
            return
        for profile in await self.store.profiles():
            if profile.id in self._roles:
                self._roles[profile.id] = (profile.role, scope_of(profile.scope))

    def profile_changed(self, profile: Profile) -> None:
        """An admin changed a profile: the new role and scope apply to the next request."""
        self._roles[profile.id] = (profile.role, scope_of(profile.scope))
