"""Inventory persistence: CRUD, keyset pages and embedded children for every level.

Embedding children (``include=``) costs one statement per level whatever the number of rows.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from msgspec import UNSET

from ..clock import now_iso
from ..model.inventory import AnyCreate, AnyEntity, AnyPatch, DashboardStats
from ..problem import Problem, invalid, not_found
from .hierarchy import LEVELS, SORTS, Level, camel
from .sql import Connection, Database, RowLocks, lock_row, note_created

_json_encode = msgspec.json.Encoder().encode
_json_decode = msgspec.json.Decoder().decode


@dataclass(frozen=True)
class ListQuery:
    """A validated list request."""

    parent_id: str | None = None
    statuses: tuple[str, ...] = ()
    q: str | None = None
    sort: str = "name"
    limit: int = 50
    cursor: str | None = None
    depth: int = 0
    # Only these ids (a scoped caller's reach); None: every row. Bound as one JSON array, so
    # thousands of ids are one parameter on SQLite and PostgreSQL alike.
    ids: frozenset[str] | None = None


def encode_cursor(sort: str, value: Any, ident: str) -> str:
    """Opaque keyset cursor: the sort key and the last row's (value, id)."""
    return base64.urlsafe_b64encode(_json_encode([sort, value, ident])).decode().rstrip("=")


def decode_cursor(token: str, sort: str) -> tuple[Any, str]:
    """Inverse of encode_cursor; a cursor from another sort order is rejected."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        got_sort, value, ident = _json_decode(raw)
    except (binascii.Error, msgspec.DecodeError, ValueError, TypeError):
        raise invalid("cursor", "malformed cursor") from None
    if got_sort != sort or not isinstance(ident, str):
        raise invalid("cursor", "cursor belongs to a different sort order")
    return value, ident


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class InventoryStore:
    """CRUD for the four inventory levels over one Database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._rows = RowLocks()

    async def _embed(
        self, conn: Connection, level: Level, items: list[AnyEntity], depth: int
    ) -> None:
        """Attach children to items, one statement per level below."""
        while depth > 0 and level.child_table and items:
            child = LEVELS[level.child_table]
            sql = (
                f"{child.select()} WHERE t.{child.parent_column} IN "
                f"(SELECT value FROM json_each(?)) ORDER BY t.name, t.id"
            )
            ids = _json_encode([i.id for i in items]).decode()
            rows = await conn.execute_fetchall(sql, (ids,))
            groups: dict[str, list[Any]] = {i.id: [] for i in items}
            children = [child.from_row(r) for r in rows]
            for c in children:
                groups[getattr(c, child.parent_column or "")].append(c)
            for item in items:
                setattr(item, level.child_table, groups[item.id])
            level, items, depth = child, children, depth - 1

    async def get(self, table: str, ident: str, depth: int = 0) -> AnyEntity:
        """One entity (with ``depth`` levels of children embedded) or 404."""
        level = LEVELS[table]
        async with self.db.read(snapshot=depth > 0) as conn:
            item = await self._get(conn, level, ident)
            await self._embed(conn, level, [item], depth)
        return item

    async def _get(self, conn: Connection, level: Level, ident: str) -> AnyEntity:
        # execute_fetchall: one trip to the connection's thread, where execute + fetchone +
        # close would be three (each trip costs tens of microseconds; tests/bench/api.py).
        rows = list(await conn.execute_fetchall(f"{level.select()} WHERE t.id = ?", (ident,)))
        if not rows:
            raise not_found(level.singular, ident)
        return level.from_row(rows[0])

    async def list(self, table: str, query: ListQuery) -> tuple[list[AnyEntity], str | None]:
        """One page of entities and the cursor of the next page (None on the last)."""
        level = LEVELS[table]
        desc = query.sort.startswith("-")
        key = query.sort.lstrip("-")
        column = SORTS[key]
        where: list[str] = []
        args: list[Any] = []
        if query.parent_id is not None and level.parent_column:
            where.append(f"t.{level.parent_column} = ?")
            args.append(query.parent_id)
        if query.statuses:
            where.append("t.status IN (SELECT value FROM json_each(?))")
            args.append(_json_encode(list(query.statuses)).decode())
        if query.ids is not None:
            where.append("t.id IN (SELECT value FROM json_each(?))")
            args.append(_json_encode(list(query.ids)).decode())
        if query.q:
            where.append("t.name LIKE ? ESCAPE '\\'")
            args.append(f"%{_escape_like(query.q)}%")
        if query.cursor:
            value, last_id = decode_cursor(query.cursor, query.sort)
            op = "<" if desc else ">"
            where.append(f"(t.{column} {op} ? OR (t.{column} = ? AND t.id {op} ?))")
            args += [value, value, last_id]
        order = "DESC" if desc else "ASC"
        sql = level.select()
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY t.{column} {order}, t.id {order} LIMIT ?"
        args.append(query.limit + 1)
        async with self.db.read(snapshot=query.depth > 0) as conn:
            rows = list(await conn.execute_fetchall(sql, args))
            items = [level.from_row(r) for r in rows[: query.limit]]
            await self._embed(conn, level, items, query.depth)
        next_cursor = None
        if len(rows) > query.limit:
            last = items[-1]
            next_cursor = encode_cursor(query.sort, getattr(last, column), last.id)
        return items, next_cursor

    async def _check_parent(self, conn: Connection, level: Level, parent_id: str) -> None:
        assert level.parent_table and level.parent_column
        sql = f"SELECT 1 FROM {level.parent_table} WHERE id = ?"
        async with conn.execute(sql, (parent_id,)) as cur:
            if await cur.fetchone() is None:
                parent = LEVELS[level.parent_table].singular
                raise invalid(
                    f"$.{camel(level.parent_column)}", f"{parent} {parent_id} does not exist"
                )

    async def create(self, table: str, body: AnyCreate, ident: str | None = None) -> AnyEntity:
        """Insert a new entity; acknowledged (returned) only after COMMIT."""
        level = LEVELS[table]
        now = now_iso()
        values: dict[str, Any] = {
            "id": ident or str(uuid.uuid4()),
            "created_at": now,
            "updated_at": now,
        }
        for name in level.columns:
            if name not in values:
                values[name] = _column_value(level, name, getattr(body, name))
        async with self.db.write() as conn:
            if level.parent_column:
                await self._check_parent(conn, level, values[level.parent_column])
            cols = ", ".join(level.columns)
            marks = ", ".join("?" for _ in level.columns)
            await conn.execute(
                f"INSERT INTO {table} ({cols}) VALUES ({marks})",
                [values[c] for c in level.columns],
            )
            note_created(values["id"])
            return await self._get(conn, level, values["id"])

    async def update(
        self,
        table: str,
        ident: str,
        patch: AnyPatch,
        precondition: Callable[[AnyEntity], None] | None = None,
    ) -> AnyEntity:
        """Apply the fields the client sent; precondition (If-Match) sees the current entity."""
        level = LEVELS[table]
        changes = {
            name: _column_value(level, name, value)
            for name in level.columns
            if (value := getattr(patch, name, UNSET)) is not UNSET
        }
        async with self._rows.hold((table, ident)), self.db.write() as conn:
            await lock_row(self.db, conn, table, ident)
            current = await self._get(conn, level, ident)
            if precondition:
                precondition(current)
            if not changes:
                return current
            if level.parent_column and level.parent_column in changes:
                await self._check_parent(conn, level, changes[level.parent_column])
            changes["updated_at"] = now_iso()
            assignments = ", ".join(f"{c} = ?" for c in changes)
            await conn.execute(
                f"UPDATE {table} SET {assignments} WHERE id = ?", [*changes.values(), ident]
            )
            return await self._get(conn, level, ident)

    async def delete(
        self,
        table: str,
        ident: str,
        *,
        cascade: bool = False,
        precondition: Callable[[AnyEntity], None] | None = None,
    ) -> AnyEntity:
        """Delete an entity; one with children needs cascade=True (else 409 naming the count)."""
        level = LEVELS[table]
        async with self._rows.hold((table, ident)), self.db.write() as conn:
            await lock_row(self.db, conn, table, ident)
            current = await self._get(conn, level, ident)
            if precondition:
                precondition(current)
            count_field = level.count_field
            children = getattr(current, count_field) if count_field else 0
            if children and not cascade:
                raise Problem(
                    409,
                    f"{level.singular} {ident} still has {children} {level.child_table}; "
                    "delete them first or pass ?cascade=true",
                )
            await conn.execute(f"DELETE FROM {table} WHERE id = ?", (ident,))
            return current

    async def stats(self) -> DashboardStats:
        """Counts for the dashboard, from COUNT queries in one snapshot."""
        async with self.db.read(snapshot=True) as conn:
            (row,) = await conn.execute_fetchall(
                "SELECT (SELECT COUNT(*) FROM clients), (SELECT COUNT(*) FROM projects), "
                "(SELECT COUNT(*) FROM environments), (SELECT COUNT(*) FROM servers)"
            )
            rows = await conn.execute_fetchall(
                "SELECT status, COUNT(*) FROM servers GROUP BY status ORDER BY status"
            )
            by_status = {str(s): int(n) for s, n in rows}
        return DashboardStats(
            clients=row[0],
            projects=row[1],
            environments=row[2],
            servers=row[3],
            servers_by_status=by_status,
        )

    async def get_meta(self, key: str) -> str | None:
        """Read a daemon-internal flag (e.g. whether the demo inventory was seeded)."""
        async with (
            self.db.read() as conn,
            conn.execute("SELECT value FROM meta WHERE key = ?", (key,)) as cur,
        ):
            row = await cur.fetchone()
        return str(row[0]) if row else None

    async def set_meta(self, key: str, value: str) -> None:
        """Write a daemon-internal flag."""
        async with self.db.write() as conn:
            await conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )


def _column_value(level: Level, name: str, value: Any) -> Any:
    if name in level.json_columns:
        return _json_encode(value).decode()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value
