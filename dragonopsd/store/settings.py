"""Settings: named JSON values (the seed's Settings entity)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import msgspec

from ..clock import now_iso
from ..model.inventory import Wire
from ..problem import not_found
from .sql import Connection, Database

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class Setting(Wire, kw_only=True):
    """One setting."""

    id: str
    key: str
    value: Any
    created_at: str
    updated_at: str


_COLS = "id, key, value, created_at, updated_at"
# A check of the current setting (None: there is none) that raises to refuse a write.
Precondition = Callable[[Setting | None], None]


def _setting(row: Any) -> Setting:
    return Setting(
        id=row[0], key=row[1], value=_decode(row[2]), created_at=row[3], updated_at=row[4]
    )


async def _one(conn: Connection, key: str) -> Setting | None:
    async with conn.execute(f"SELECT {_COLS} FROM settings WHERE key = ?", (key,)) as cur:
        row = await cur.fetchone()
    return None if row is None else _setting(row)


class SettingsStore:
    """CRUD on the settings table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def list(self) -> list[Setting]:
        """Every setting, by key."""
        async with (
            self.db.read() as conn,
            conn.execute(f"SELECT {_COLS} FROM settings ORDER BY key") as cur,
        ):
            return [_setting(r) for r in await cur.fetchall()]

    async def get(self, key: str) -> Setting:
        """One setting or 404."""
        async with self.db.read() as conn:
            found = await _one(conn, key)
        if found is None:
            raise not_found("setting", key)
        return found

    async def put(
        self, key: str, value: Any, precondition: Precondition | None = None
    ) -> tuple[Setting, bool]:
        """Create or replace; returns the setting and whether it was created. ``precondition``
        (an If-Match) sees the current setting, None when there is none, inside the write."""
        now = now_iso()
        async with self.db.write() as conn:
            current = await _one(conn, key)
            if precondition is not None:
                precondition(current)
            await conn.execute(
                f"INSERT INTO settings ({_COLS}) VALUES (?, ?, ?, ?, ?) ON CONFLICT(key) DO "
                "UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (str(uuid.uuid4()), key, _encode(value).decode(), now, now),
            )
            setting = await _one(conn, key)
        assert setting is not None
        return setting, current is None

    async def delete(self, key: str, precondition: Callable[[Setting], None] | None = None) -> None:
        """Remove a setting or 404 (``precondition`` as for put, on the setting there)."""
        async with self.db.write() as conn:
            current = await _one(conn, key)
            if current is None:
                raise not_found("setting", key)
            if precondition is not None:
                precondition(current)
            await conn.execute("DELETE FROM settings WHERE key = ?", (key,))
