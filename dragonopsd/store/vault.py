"""The secrets table: sealed values with their key id, and one key-check value per key id.

Nothing here sees a plaintext: values arrive and leave sealed. The key checks live in ``meta``
as ``keycheck:<key id>`` (base64 of a sealed constant) so a wrong key file is caught at start.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from msgspec import UNSET, UnsetType

from ..model.inventory import Wire
from ..problem import Problem, not_found
from .inventory import decode_cursor, encode_cursor
from .sql import Connection, Database, is_constraint, note_created

KEYCHECK = "keycheck:"


class Secret(Wire, kw_only=True):
    """A secret's metadata: everything but the value."""

    id: str
    key: str
    env: str
    version: int
    description: str | None = None
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class Sealed:
    """A row as stored: metadata plus the key id and blob."""

    meta: Secret
    key_id: str
    blob: bytes


# A check of the current row that raises to refuse the write (an If-Match, api/codec.py).
Precondition = Callable[[Secret], None]

_COLS = "id, key, env, version, description, created_at, updated_at, key_id, value"


def _sealed(row: Any) -> Sealed:
    meta = Secret(
        id=row[0],
        key=row[1],
        env=row[2],
        version=row[3],
        description=row[4],
        created_at=row[5],
        updated_at=row[6],
    )
    return Sealed(meta, row[7], bytes(row[8]))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def _one(conn: Connection, ident: str) -> Sealed:
    async with conn.execute(f"SELECT {_COLS} FROM secrets WHERE id = ?", (ident,)) as cur:
        row = await cur.fetchone()
    if row is None:
        raise not_found("secret", ident)
    return _sealed(row)


async def _put_check(conn: Connection, check: tuple[str, bytes] | None) -> None:
    """Record the key check of the key a write used, unless one is there already."""
    if check is not None:
        kid, blob = check
        await conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (KEYCHECK + kid, base64.b64encode(blob).decode()),
        )


def _duplicate(key: str, env: str) -> Problem:
    return Problem(409, f"a secret with key {key} already exists in env {env}")


class VaultStore:
    """Reads and writes of sealed secrets; every write is one Database.write() transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, ident: str) -> Sealed:
        """One row or 404."""
        async with self.db.read() as conn:
            return await _one(conn, ident)

    async def list(
        self, env: str | None, q: str | None, limit: int, cursor: str | None
    ) -> tuple[list[Secret], str | None]:
        """One page of metadata ordered by key, then id, and the next page's cursor."""
        where: list[str] = []
        args: list[Any] = []
        if env is not None:
            where.append("env = ?")
            args.append(env)
        if q:
            where.append("key LIKE ? ESCAPE '\\'")
            args.append(f"%{_escape_like(q)}%")
        if cursor:
            last_key, last_id = decode_cursor(cursor, "key")
            where.append("(key > ? OR (key = ? AND id > ?))")
            args += [last_key, last_key, last_id]
        sql = f"SELECT {_COLS} FROM secrets"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY key, id LIMIT ?"
        args.append(limit + 1)
        async with self.db.read() as conn, conn.execute(sql, args) as cur:
            rows = list(await cur.fetchall())
        items = [_sealed(r).meta for r in rows[:limit]]
        more = len(rows) > limit
        return items, encode_cursor("key", items[-1].key, items[-1].id) if more else None

    async def insert(
        self, meta: Secret, key_id: str, blob: bytes, check: tuple[str, bytes] | None
    ) -> Secret:
        """Insert a sealed row; 409 naming key and env when the pair exists."""
        try:
            async with self.db.write() as conn:
                await conn.execute(
                    f"INSERT INTO secrets ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        meta.id,
                        meta.key,
                        meta.env,
                        meta.version,
                        meta.description,
                        meta.created_at,
                        meta.updated_at,
                        key_id,
                        blob,
                    ),
                )
                note_created(meta.id)
                await _put_check(conn, check)
        except Exception as exc:
            if is_constraint(exc):
                raise _duplicate(meta.key, meta.env) from None
            raise
        return meta

    async def update(
        self,
        ident: str,
        now: str,
        description: str | UnsetType | None,
        sealed: tuple[str, bytes] | None,
        check: tuple[str, bytes] | None,
        *,
        precondition: Precondition | None = None,
    ) -> Secret:
        """Change the description and/or the sealed value (bumping version); 404 when gone.
        ``precondition`` (an If-Match) sees the row as it is inside the same transaction."""
        sets = ["updated_at = ?"]
        args: list[Any] = [now]
        if description is not UNSET:
            sets.append("description = ?")
            args.append(description)
        if sealed is not None:
            sets += ["key_id = ?", "value = ?", "version = version + 1"]
            args += list(sealed)
        async with self.db.write() as conn:
            if precondition is not None:
                precondition((await _one(conn, ident)).meta)
            cur = await conn.execute(
                f"UPDATE secrets SET {', '.join(sets)} WHERE id = ?", [*args, ident]
            )
            if cur.rowcount == 0:
                raise not_found("secret", ident)
            if sealed is not None:
                await _put_check(conn, check)
            return (await _one(conn, ident)).meta

    async def delete(self, ident: str, precondition: Precondition | None = None) -> Secret:
        """Delete a row; returns its metadata, 404 when it does not exist."""
        async with self.db.write() as conn:
            current = await _one(conn, ident)
            if precondition is not None:
                precondition(current.meta)
            await conn.execute("DELETE FROM secrets WHERE id = ?", (ident,))
        return current.meta

    async def key_ids(self) -> set[str]:
        """Every key id some row is sealed with: secrets, and channel credentials (sealed with
        the same ring), so no key either still needs is dropped or missing at start."""
        async with (
            self.db.read() as conn,
            conn.execute(
                "SELECT key_id FROM secrets UNION "
                "SELECT key_id FROM notification_channels WHERE key_id IS NOT NULL"
            ) as cur,
        ):
            return {str(r[0]) for r in await cur.fetchall()}

    async def checks(self) -> dict[str, bytes]:
        """Key id -> sealed key check, for every key that has been used."""
        async with (
            self.db.read() as conn,
            conn.execute("SELECT key, value FROM meta WHERE key LIKE 'keycheck:%'") as cur,
        ):
            rows = await cur.fetchall()
        return {str(k)[len(KEYCHECK) :]: base64.b64decode(v) for k, v in rows}

    async def put_check(self, check: tuple[str, bytes]) -> None:
        """Record a key's check value unless it has one (before the key seals anything)."""
        async with self.db.write() as conn:
            await _put_check(conn, check)

    async def drop_checks(self, key_ids: Iterable[str]) -> None:
        """Forget the key checks of keys leaving the ring."""
        async with self.db.write() as conn:
            await conn.executemany(
                "DELETE FROM meta WHERE key = ?", [(KEYCHECK + kid,) for kid in key_ids]
            )

    async def reseal_batch(
        self,
        primary: str,
        limit: int,
        reseal: Callable[[Sealed], bytes],
        check: tuple[str, bytes],
    ) -> int:
        """Re-seal up to limit rows not under primary in one transaction; returns how many."""
        async with self.db.write() as conn:
            await _put_check(conn, check)
            async with conn.execute(
                f"SELECT {_COLS} FROM secrets WHERE key_id != ? ORDER BY id LIMIT ?",
                (primary, limit),
            ) as cur:
                rows = [_sealed(r) for r in await cur.fetchall()]
            await conn.executemany(
                "UPDATE secrets SET key_id = ?, value = ? WHERE id = ?",
                [(primary, reseal(row), row.meta.id) for row in rows],
            )
        return len(rows)

    async def count_not_under(self, primary: str) -> int:
        """How many rows (secrets and sealed channels) are sealed with a key other than
        primary."""
        async with (
            self.db.read() as conn,
            conn.execute(
                "SELECT (SELECT COUNT(*) FROM secrets WHERE key_id != ?) + (SELECT COUNT(*) "
                "FROM notification_channels WHERE key_id IS NOT NULL AND key_id != ?)",
                (primary, primary),
            ) as cur,
        ):
            row = await cur.fetchone()
        return int(row[0]) if row else 0
