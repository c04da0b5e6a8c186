"""The audit log: who did what, when, from where, to which entity, and how it ended.

A request's entry rides the request's first write transaction (``PendingEntry``, see
``Database.write``), so a change is never committed without its entry, kill -9 or not.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import msgspec

from ..model.inventory import Wire
from .sql import Connection, Database

# Stored paths are route templates with ids filled in, and ids are uuids or setting keys:
# whatever is longer came from a caller, and is cut so nobody can fill the disk with it.
MAX_PATH = 512
MAX_ID = 200


class AuditEntry(Wire, kw_only=True):
    """One audited call."""

    id: int = 0
    at: str
    actor: str
    actor_kind: str
    role: str | None
    method: str
    route: str
    path: str
    entity: str | None
    entity_id: str | None
    request_id: str
    status: int
    outcome: str
    client: str | None = None  # the client address (behind trusted proxies, the real one)


_COLS = tuple(f.name for f in msgspec.structs.fields(AuditEntry))
_INSERT_COLS = _COLS[1:]
_MARKS = ", ".join("?" for _ in _INSERT_COLS)
# RETURNING rather than lastrowid: both engines have it (SQLite since 3.35).
_INSERT = f"INSERT INTO audit_log ({', '.join(_INSERT_COLS)}) VALUES ({_MARKS}) RETURNING id"


def clip(text: str, limit: int) -> str:
    """text, cut to limit characters (marked with an ellipsis when cut)."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


async def _insert(conn: Connection, entry: AuditEntry) -> int:
    async with conn.execute(_INSERT, msgspec.structs.astuple(entry)[1:]) as cur:
        row = await cur.fetchone()
    return int(row[0])


class PendingEntry:
    """One request's entry, written by the request's first write transaction (a Rider).

    It is written with the status the route answers on success; when the request fails after
    its change committed, or names its entity afterwards, ``AuditStore.settle`` corrects the
    row. A transaction of another task (one the handler started) never carries it.
    """

    def __init__(self, entry: AuditEntry) -> None:
        self.entry = entry
        self.row_id: int | None = None
        self.closed = False
        self._task = asyncio.current_task()
        self._boarding: int | None = None
        self.written: tuple[str | None, str | None, int, str] | None = None  # as committed

    def name(self, entity: str, ident: str) -> None:
        """The entity the request acted on, when the route's path does not say it."""
        self.entry.entity = entity
        self.entry.entity_id = clip(ident, MAX_ID)

    def created(self, ident: str) -> None:
        """A write of this request created row ident: the entry is about it."""
        if self.entry.entity_id is None:
            self.entry.entity_id = clip(ident, MAX_ID)

    async def board(self, conn: Connection) -> bool:
        """Insert the entry into the open transaction (once, and only from the request)."""
        if self.closed or self.row_id is not None or asyncio.current_task() is not self._task:
            return False
        self._boarding = await _insert(conn, self.entry)
        return True

    def landed(self) -> None:
        """The transaction that carried the entry committed."""
        self.row_id = self._boarding
        self.written = self.state()

    def state(self) -> tuple[str | None, str | None, int, str]:
        """What settle may still change: entity, entity id, status, outcome."""
        e = self.entry
        return (e.entity, e.entity_id, e.status, e.outcome)


@dataclass(frozen=True)
class AuditQuery:
    """Filters for GET /api/audit; newest first, keyset on id."""

    actor: str | None = None
    client: str | None = None
    entity: str | None = None
    entity_id: str | None = None
    method: str | None = None
    outcome: str | None = None
    since: str | None = None
    until: str | None = None
    before_id: int | None = None
    limit: int = 50


class AuditStore:
    """Append, query and prune audit entries."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def append(self, entry: AuditEntry) -> None:
        """Record one entry in its own transaction."""
        async with self.db.write() as conn:
            await _insert(conn, entry)

    async def settle(self, pending: PendingEntry, status: int, outcome: str) -> None:
        """After the request: write its entry if no change carried it, else correct the row
        when the request failed after its change committed or named its entity later."""
        pending.closed = True
        entry = pending.entry
        entry.status, entry.outcome = status, outcome
        if pending.row_id is None:
            await self.append(entry)
        elif pending.written != pending.state():
            async with self.db.write() as conn:
                await conn.execute(
                    "UPDATE audit_log SET entity = ?, entity_id = ?, status = ?, outcome = ? "
                    "WHERE id = ?",
                    (*pending.state(), pending.row_id),
                )

    async def query(self, q: AuditQuery) -> tuple[list[AuditEntry], int | None]:
        """One page, newest first, and the id to continue before (None on the last page)."""
        where: list[str] = []
        args: list[Any] = []
        for column, value in (
            ("actor", q.actor),
            ("client", q.client),
            ("entity", q.entity),
            ("entity_id", q.entity_id),
            ("method", q.method),
            ("outcome", q.outcome),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if q.since:
            where.append("at >= ?")
            args.append(q.since)
        if q.until:
            where.append("at < ?")
            args.append(q.until)
        if q.before_id is not None:
            where.append("id < ?")
            args.append(q.before_id)
        sql = f"SELECT {', '.join(_COLS)} FROM audit_log"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(q.limit + 1)
        async with self.db.read() as conn, conn.execute(sql, args) as cur:
            rows = list(await cur.fetchall())
        items = [AuditEntry(**dict(zip(_COLS, r, strict=True))) for r in rows[: q.limit]]
        return items, (items[-1].id if len(rows) > q.limit else None)

    async def prune(self, older_than: str) -> int:
        """Delete entries recorded before older_than; returns how many went."""
        async with self.db.write() as conn:
            cur = await conn.execute("DELETE FROM audit_log WHERE at < ?", (older_than,))
            return cur.rowcount
