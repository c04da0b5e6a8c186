"""The notification_channels table: where events go, stored as JSON the notify layer validates.

Rows carry credentials in ``config`` (webhook URLs, signing secrets, SMTP passwords), so the
row types here mask it in their repr: a row that ends up in a log line or a traceback does not
take a secret with it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import msgspec

from ..clock import now_iso
from ..problem import not_found
from .db import Database, note_created

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class ChannelFields(msgspec.Struct, kw_only=True, frozen=True):
    """What a write sets: everything but identity and timestamps (JSON-ready builtins)."""

    name: str
    kind: str
    enabled: bool
    events: list[str]
    scope: dict[str, Any]
    config: dict[str, Any]

    def __repr__(self) -> str:
        return f"ChannelFields(name={self.name!r}, kind={self.kind!r}, config=<hidden>)"


class StoredChannel(ChannelFields, kw_only=True, frozen=True):
    """A channel row as stored, credentials included: never encode it into a response."""

    id: str
    created_at: str
    updated_at: str

    def __repr__(self) -> str:
        return f"StoredChannel(id={self.id!r}, kind={self.kind!r}, config=<hidden>)"


_COLS = "id, name, kind, enabled, events, scope, config, created_at, updated_at"


def _channel(row: Any) -> StoredChannel:
    return StoredChannel(
        id=row[0],
        name=row[1],
        kind=row[2],
        enabled=bool(row[3]),
        events=_decode(row[4]),
        scope=_decode(row[5]),
        config=_decode(row[6]),
        created_at=row[7],
        updated_at=row[8],
    )


def _values(fields: ChannelFields) -> tuple[str, str, int, str, str, str]:
    return (
        fields.name,
        fields.kind,
        int(fields.enabled),
        _encode(fields.events).decode(),
        _encode(fields.scope).decode(),
        _encode(fields.config).decode(),
    )


def _stored(ident: str, f: ChannelFields, created_at: str, updated_at: str) -> StoredChannel:
    return StoredChannel(
        id=ident,
        name=f.name,
        kind=f.kind,
        enabled=f.enabled,
        events=f.events,
        scope=f.scope,
        config=f.config,
        created_at=created_at,
        updated_at=updated_at,
    )


class NotificationStore:
    """CRUD on notification channels."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def list(self) -> list[StoredChannel]:
        """Every channel, oldest first (channels are few: no paging)."""
        async with (
            self.db.read() as conn,
            conn.execute(
                f"SELECT {_COLS} FROM notification_channels ORDER BY created_at, id"
            ) as cur,
        ):
            return [_channel(r) for r in await cur.fetchall()]

    async def get(self, ident: str) -> StoredChannel:
        """One channel or 404."""
        async with (
            self.db.read() as conn,
            conn.execute(
                f"SELECT {_COLS} FROM notification_channels WHERE id = ?", (ident,)
            ) as cur,
        ):
            row = await cur.fetchone()
        if row is None:
            raise not_found("notification channel", ident)
        return _channel(row)

    async def create(self, fields: ChannelFields) -> StoredChannel:
        """Insert a channel; returns it."""
        now = now_iso()
        ident = str(uuid.uuid4())
        async with self.db.write() as conn:
            await conn.execute(
                f"INSERT INTO notification_channels ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (ident, *_values(fields), now, now),
            )
            note_created(ident)
        return _stored(ident, fields, now, now)

    async def update(
        self, ident: str, change: Callable[[StoredChannel], ChannelFields]
    ) -> StoredChannel:
        """Read, change and write one channel in one transaction (404 when it does not exist).

        ``change`` sees the stored row (secrets included, so a PATCH can keep them) and may
        raise a Problem, which rolls the transaction back.
        """
        async with self.db.write() as conn:
            async with conn.execute(
                f"SELECT {_COLS} FROM notification_channels WHERE id = ?", (ident,)
            ) as cur:
                row = await cur.fetchone()
            if row is None:
                raise not_found("notification channel", ident)
            old = _channel(row)
            fields = change(old)
            now = now_iso()
            await conn.execute(
                "UPDATE notification_channels SET name = ?, kind = ?, enabled = ?, events = ?, "
                "scope = ?, config = ?, updated_at = ? WHERE id = ?",
                (*_values(fields), now, ident),
            )
        return _stored(ident, fields, old.created_at, now)

    async def delete(self, ident: str) -> None:
        """Remove a channel or 404."""
        async with self.db.write() as conn:
            cur = await conn.execute("DELETE FROM notification_channels WHERE id = ?", (ident,))
            if cur.rowcount == 0:
                raise not_found("notification channel", ident)
