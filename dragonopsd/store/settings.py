"""Settings: named JSON values (the seed's Settings entity)."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from ..clock import now_iso
from ..model.inventory import Wire
from ..problem import not_found
from .sql import Database

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


def _setting(row: Any) -> Setting:
    return Setting(
        id=row[0], key=row[1], value=_decode(row[2]), created_at=row[3], updated_at=row[4]
    )


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
        async with (
            self.db.read() as conn,
            conn.execute(f"SELECT {_COLS} FROM settings WHERE key = ?", (key,)) as cur,
        ):
            row = await cur.fetchone()
        if row is None:
            raise not_found("setting", key)
        return _setting(row)

    async def put(self, key: str, value: Any) -> tuple[Setting, bool]:
        """Create or replace; returns the setting and whether it was created."""
        now = now_iso()
        async with self.db.write() as conn:
            async with conn.execute("SELECT 1 FROM settings WHERE key = ?", (key,)) as cur:
                existed = await cur.fetchone() is not None
            await conn.execute(
                f"INSERT INTO settings ({_COLS}) VALUES (?, ?, ?, ?, ?) ON CONFLICT(key) DO "
                "UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (str(uuid.uuid4()), key, _encode(value).decode(), now, now),
            )
            async with conn.execute(f"SELECT {_COLS} FROM settings WHERE key = ?", (key,)) as cur:
                row = await cur.fetchone()
        return _setting(row), not existed

    async def delete(self, key: str) -> None:
        """Remove a setting or 404."""
        async with self.db.write() as conn:
            cur = await conn.execute("DELETE FROM settings WHERE key = ?", (key,))
            if cur.rowcount == 0:
                raise not_found("setting", key)
