"""The notification_channels table: where events go, stored as JSON the notify layer validates.

Rows carry credentials in ``config`` (webhook URLs, signing secrets, SMTP passwords). On disk
they are sealed with the secrets key ring when there is one (``channel_seal``); in memory the
row types mask them in their repr, so a row in a log line or a traceback takes no secret along.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

import msgspec

from ..clock import now_iso
from ..problem import Problem, not_found
from ..secrets.crypto import KeyRing, SealError
from .channel_seal import KeySource, has_credentials, seal, unseal
from .sql import Connection, Database, lock_row, note_created

log = logging.getLogger("dragonopsd.notify")

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
    """A channel row as stored, credentials included: never encode it into a response.

    ``locked``: its credentials are sealed with a key the ring does not hold (or that does not
    open them), so ``config`` has only the clear part; it cannot deliver or be patched.
    """

    id: str
    created_at: str
    updated_at: str
    locked: bool = False
    # "config": declared in the config file's [[notifications]]; the API refuses to change it.
    managed_by: str = "api"

    def __repr__(self) -> str:
        return f"StoredChannel(id={self.id!r}, kind={self.kind!r}, config=<hidden>)"


_COLS = (
    "id, name, kind, enabled, events, scope, config, created_at, updated_at, key_id, sealed, "
    "managed_by"
)


def _channel(row: Any, ring: KeyRing | None) -> StoredChannel:
    ident, key_id, blob = row[0], row[9], row[10]
    config = _decode(row[6])
    locked = False
    if key_id is not None:
        try:
            if ring is None:
                raise SealError(f"key {key_id} is not loaded")
            config = unseal(ring, ident, config, key_id, bytes(blob))
        except SealError as exc:
            log.error("notification channel %s: credentials do not open: %s", ident, exc)
            locked = True
    return StoredChannel(
        id=ident,
        name=row[1],
        kind=row[2],
        enabled=bool(row[3]),
        events=_decode(row[4]),
        scope=_decode(row[5]),
        config=config,
        created_at=row[7],
        updated_at=row[8],
        locked=locked,
        managed_by=row[11],
    )


def _values(
    ident: str, fields: ChannelFields, ring: KeyRing | None
) -> tuple[str, str, int, str, str, str, str | None, bytes | None]:
    config, key_id, blob = fields.config, None, None
    if ring is not None and has_credentials(config):
        config, key_id, blob = seal(ring, ident, config)
    return (
        fields.name,
        fields.kind,
        int(fields.enabled),
        _encode(fields.events).decode(),
        _encode(fields.scope).decode(),
        _encode(config).decode(),
        key_id,
        blob,
    )


def _locked(ident: str) -> Problem:
    return Problem(
        409,
        f"notification channel {ident}: its credentials are sealed with a secrets key that is "
        "not loaded; restore the key file",
    )


def _stored(
    ident: str, f: ChannelFields, created_at: str, updated_at: str, managed_by: str
) -> StoredChannel:
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
        managed_by=managed_by,
    )


class NotificationStore:
    """CRUD on notification channels; credentials sealed at rest when keys gives a ring."""

    def __init__(self, db: Database, keys: KeySource | None = None) -> None:
        self.db = db
        self._keys = keys

    async def _ring(self, needed: str | None = None) -> KeyRing | None:
        return await self._keys.keyring(needed) if self._keys is not None else None

    async def _rows(self, conn: Connection, where: str, args: tuple[Any, ...]) -> Any:
        async with conn.execute(f"SELECT {_COLS} FROM notification_channels {where}", args) as cur:
            return list(await cur.fetchall())

    async def _opened(self, rows: list[Any]) -> list[StoredChannel]:
        used = {r[9] for r in rows if r[9] is not None}
        ring = await self._ring() if used else None
        missing = used - ring.keys.keys() if ring is not None else set()
        if missing:  # rotated meanwhile by another process: re-read the ring once
            ring = await self._ring(min(missing))
        return [_channel(r, ring) for r in rows]

    async def list(self) -> list[StoredChannel]:
        """Every channel, oldest first (channels are few: no paging)."""
        async with self.db.read() as conn:
            rows = await self._rows(conn, "ORDER BY created_at, id", ())
        return await self._opened(rows)

    async def get(self, ident: str) -> StoredChannel:
        """One channel or 404."""
        async with self.db.read() as conn:
            rows = await self._rows(conn, "WHERE id = ?", (ident,))
        if not rows:
            raise not_found("notification channel", ident)
        return (await self._opened(rows))[0]

    async def create(self, fields: ChannelFields, managed_by: str = "api") -> StoredChannel:
        """Insert a channel (managed_by "config": one of the file's [[notifications]])."""
        now = now_iso()
        ident = str(uuid.uuid4())
        values = _values(ident, fields, await self._ring())
        async with self.db.write() as conn:
            await conn.execute(
                f"INSERT INTO notification_channels ({_COLS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (ident, *values[:6], now, now, *values[6:], managed_by),
            )
            note_created(ident)
        return _stored(ident, fields, now, now, managed_by)

    async def update(
        self,
        ident: str,
        change: Callable[[StoredChannel], ChannelFields],
        managed_by: str | None = None,
    ) -> StoredChannel:
        """Read, change and write one channel in one transaction (404 when it does not exist);
        managed_by, when given, changes who manages it (the config file taking it over).

        ``change`` sees the stored row (secrets included, so a PATCH can keep them) and may
        raise a Problem, which rolls the transaction back.
        """
        ring = await self._ring()
        async with self.db.write() as conn:
            await lock_row(self.db, conn, "notification_channels", ident)
            rows = await self._rows(conn, "WHERE id = ?", (ident,))
            if not rows:
                raise not_found("notification channel", ident)
            if rows[0][9] is not None and (ring is None or rows[0][9] not in ring.keys):
                ring = await self._ring(rows[0][9])
            old = _channel(rows[0], ring)
            if old.locked:
                raise _locked(ident)
            fields = change(old)
            now = now_iso()
            await conn.execute(
                "UPDATE notification_channels SET name = ?, kind = ?, enabled = ?, events = ?, "
                "scope = ?, config = ?, key_id = ?, sealed = ?, updated_at = ?, "
                "managed_by = ? WHERE id = ?",
                (*_values(ident, fields, ring), now, managed_by or old.managed_by, ident),
            )
        return _stored(ident, fields, old.created_at, now, managed_by or old.managed_by)

    async def delete(self, ident: str) -> None:
        """Remove a channel or 404."""
        async with self.db.write() as conn:
            cur = await conn.execute("DELETE FROM notification_channels WHERE id = ?", (ident,))
            if cur.rowcount == 0:
                raise not_found("notification channel", ident)

    async def seal_pending(self) -> int:
        """At start: seal rows left in clear (and move old-key rows to the primary) when a key
        ring is configured; 0 without one."""
        ring = await self._ring()
        return await self.seal_all(ring) if ring is not None else 0

    async def seal_all(self, ring: KeyRing) -> int:
        """Seal every row in clear and re-seal every row not under the primary, in one
        transaction (channels are few); returns how many rows changed. Run at start with a
        key, and by `dragonopsd keys rotate`."""
        async with self.db.write() as conn:
            rows = await self._rows(conn, "WHERE key_id IS NULL OR key_id != ?", (ring.primary,))
            changed = []
            for row in rows:
                current = _channel(row, ring)
                if current.locked or (row[9] is None and not has_credentials(current.config)):
                    continue  # a locked row stays as it is (logged): its key may come back
                changed.append((*_values(current.id, current, ring)[5:], current.id))
            await conn.executemany(
                "UPDATE notification_channels SET config = ?, key_id = ?, sealed = ? WHERE id = ?",
                changed,
            )
        return len(changed)
