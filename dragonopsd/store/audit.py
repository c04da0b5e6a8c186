"""The audit log: who did what, when, to which entity, and how it ended."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from ..model import Wire
from .db import Database


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


_COLS = tuple(f.name for f in msgspec.structs.fields(AuditEntry))
_INSERT_COLS = _COLS[1:]


@dataclass(frozen=True)
class AuditQuery:
    """Filters for GET /api/audit; newest first, keyset on id."""

    actor: str | None = None
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
        values = msgspec.structs.astuple(entry)[1:]
        marks = ", ".join("?" for _ in _INSERT_COLS)
        async with self.db.write() as conn:
            await conn.execute(
                f"INSERT INTO audit_log ({', '.join(_INSERT_COLS)}) VALUES ({marks})", values
            )

    async def query(self, q: AuditQuery) -> tuple[list[AuditEntry], int | None]:
        """One page, newest first, and the id to continue before (None on the last page)."""
        where: list[str] = []
        args: list[Any] = []
        for column, value in (
            ("actor", q.actor),
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
