"""API tokens and JWT profiles. Only a SHA-256 of a token is stored; the plaintext is shown once."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable
from typing import Any

import msgspec

from ..clock import now_iso
from ..model.inventory import Wire
from ..model.principal import ProfileRole, TokenRole
from ..problem import not_found
from .sql import Connection, Database, lock_row, note_created

TOKEN_PREFIX = "dro_"
REVISION_KEY = "tokens_rev"  # bumped by every token and profile write: other processes notice


class AccessScope(Wire, kw_only=True):
    """The clients (whole) and single projects a token or profile is limited to."""

    clients: list[str] = []
    projects: list[str] = []


class Token(Wire, kw_only=True):
    """A token's metadata (never its value)."""

    id: str
    name: str
    role: TokenRole
    prefix: str
    created_at: str
    expires_at: str | None = None
    revoked_at: str | None = None
    created_by: str | None = None
    server_id: str | None = None  # agent tokens: the server they push samples for
    scope: AccessScope | None = None  # None: every client


class Profile(Wire, kw_only=True):
    """A JWT subject seen by the daemon, with the role it was granted."""

    id: str
    email: str | None
    role: ProfileRole
    created_at: str
    updated_at: str
    scope: AccessScope | None = None  # None: every client


def hash_token(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """256 random bits, URL-safe, with a prefix that secret scanners can recognise."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


_TOKEN_COLS = (
    "id, name, role, prefix, created_at, expires_at, revoked_at, created_by, server_id, scope"
)
_PROFILE_COLS = "id, email, role, created_at, updated_at, scope"
_SCOPE = msgspec.json.Decoder(AccessScope)


def scope_text(scope: AccessScope | None) -> str | None:
    """The stored form of a scope (JSON), NULL for none."""
    return None if scope is None else msgspec.json.encode(scope).decode()


def _scope(text: str | None) -> AccessScope | None:
    return None if text is None else _SCOPE.decode(text)


def _token(row: Any) -> Token:
    values = dict(zip(_TOKEN_COLS.split(", "), row, strict=True))
    values["scope"] = _scope(values["scope"])
    return Token(**values)


def _profile(row: Any) -> Profile:
    values = dict(zip(_PROFILE_COLS.split(", "), row, strict=True))
    values["scope"] = _scope(values["scope"])
    return Profile(**values)


class TokenStore:
    """Token and profile rows."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        name: str,
        role: TokenRole,
        expires_at: str | None,
        created_by: str | None,
        *,
        server_id: str | None = None,
        scope: AccessScope | None = None,
    ) -> tuple[Token, str]:
        """Mint a token; returns its metadata and the plaintext (shown to the caller once)."""
        plain = new_token()
        token = Token(
            id=str(uuid.uuid4()),
            name=name,
            role=role,
            prefix=plain[:10],
            created_at=now_iso(),
            expires_at=expires_at,
            created_by=created_by,
            server_id=server_id,
            scope=scope,
        )
        async with self.db.write() as conn:
            await conn.execute(
                f"INSERT INTO tokens ({_TOKEN_COLS}, hash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*msgspec.structs.astuple(token)[:-1], scope_text(scope), hash_token(plain)),
            )
            note_created(token.id)
            await self._bump(conn)
        return token, plain

    async def _bump(self, conn: Connection) -> None:
        await conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, '1') ON CONFLICT(key) DO UPDATE "
            "SET value = CAST(CAST(meta.value AS INTEGER) + 1 AS TEXT)",
            (REVISION_KEY,),
        )

    async def all(self) -> list[Token]:
        """Every token, newest first."""
        async with (
            self.db.read() as conn,
            conn.execute(f"SELECT {_TOKEN_COLS} FROM tokens ORDER BY created_at DESC, id") as cur,
        ):
            return [_token(r) for r in await cur.fetchall()]

    async def count(self) -> int:
        """How many tokens exist (revoked ones included)."""
        async with self.db.read() as conn, conn.execute("SELECT COUNT(*) FROM tokens") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def revoke(self, ident: str) -> Token:
        """Revoke a token (kept for the audit trail); revoking twice is harmless."""
        async with self.db.write() as conn:
            await conn.execute(
                "UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?",
                (now_iso(), ident),
            )
            async with conn.execute(
                f"SELECT {_TOKEN_COLS} FROM tokens WHERE id = ?", (ident,)
            ) as cur:
                row = await cur.fetchone()
            if row is None:
                raise not_found("token", ident)
            await self._bump(conn)
        return _token(row)

    async def usable(self) -> dict[str, Token]:
        """Hash -> token for every token not revoked (expiry is checked at use)."""
        async with (
            self.db.read() as conn,
            conn.execute(f"SELECT {_TOKEN_COLS}, hash FROM tokens WHERE revoked_at IS NULL") as cur,
        ):
            return {r[-1]: _token(r[:-1]) for r in await cur.fetchall()}

    async def revision(self) -> str:
        """Changes whenever any process writes a token."""
        async with (
            self.db.read() as conn,
            conn.execute("SELECT value FROM meta WHERE key = ?", (REVISION_KEY,)) as cur,
        ):
            row = await cur.fetchone()
        return str(row[0]) if row else "0"

    async def ensure_profile(self, sub: str, email: str | None, role: ProfileRole) -> Profile:
        """The profile for a JWT subject, created with role on first sight."""
        now = now_iso()
        async with self.db.write() as conn:
            await conn.execute(
                f"INSERT INTO profiles ({_PROFILE_COLS}) VALUES (?, ?, ?, ?, ?, NULL) "
                "ON CONFLICT(id) DO NOTHING",
                (sub, email, role, now, now),
            )
            async with conn.execute(
                f"SELECT {_PROFILE_COLS} FROM profiles WHERE id = ?", (sub,)
            ) as cur:
                row = await cur.fetchone()
        return _profile(row)

    async def profile(self, sub: str) -> Profile:
        """One profile, or a 404 Problem."""
        async with (
            self.db.read() as conn,
            conn.execute(f"SELECT {_PROFILE_COLS} FROM profiles WHERE id = ?", (sub,)) as cur,
        ):
            row = await cur.fetchone()
        if row is None:
            raise not_found("profile", sub)
        return _profile(row)

    async def profiles(self) -> list[Profile]:
        """Every profile, oldest first."""
        async with (
            self.db.read() as conn,
            conn.execute(f"SELECT {_PROFILE_COLS} FROM profiles ORDER BY created_at, id") as cur,
        ):
            return [_profile(r) for r in await cur.fetchall()]

    async def update_profile(
        self,
        sub: str,
        role: ProfileRole | None,
        email: str | msgspec.UnsetType | None,
        scope: AccessScope | msgspec.UnsetType | None = msgspec.UNSET,
        precondition: Callable[[Profile], None] | None = None,
    ) -> Profile:
        """Change a profile's role, email and/or scope (None: every client); precondition
        (an If-Match) sees the row as it is inside the write and may refuse it."""
        async with self.db.write() as conn:
            await lock_row(self.db, conn, "profiles", sub)
            async with conn.execute(
                f"SELECT {_PROFILE_COLS} FROM profiles WHERE id = ?", (sub,)
            ) as cur:
                row = await cur.fetchone()
            if row is None:
                raise not_found("profile", sub)
            current = _profile(row)
            if precondition is not None:
                precondition(current)
            changed = msgspec.structs.replace(
                current,
                role=role or current.role,
                email=current.email if email is msgspec.UNSET else email,
                scope=current.scope if scope is msgspec.UNSET else scope,
                updated_at=now_iso(),
            )
            await conn.execute(
                "UPDATE profiles SET role = ?, email = ?, scope = ?, updated_at = ? WHERE id = ?",
                (changed.role, changed.email, scope_text(changed.scope), changed.updated_at, sub),
            )
            # Other processes remember each profile's role and scope (auth/authenticator.py):
            # the revision they poll tells them to read it again.
            await self._bump(conn)
        return changed
