"""Server actions: their rows, state changes, idempotency keys and what a restart finds.

The business rules (which action a server status allows) live in the service; this module
keeps every state change a single conditional UPDATE, so two workers, or a worker and the
recovery at start, can never both move the same action.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from ..clock import now_iso
from ..model.inventory import ServerStatus, Wire
from ..problem import invalid, not_found
from .inventory import decode_cursor, encode_cursor
from .sql import Connection, Database, lock_row

ActionKind = Literal["restart", "stop", "start"]
ActionState = Literal["queued", "running", "succeeded", "failed"]
PENDING: tuple[ActionState, ...] = ("queued", "running")
# An Idempotency-Key is remembered this long; after that the same key starts a new action.
KEY_TTL = timedelta(hours=24)
SORT = "-createdAt"


class Action(Wire, kw_only=True):
    """One requested action and how far it got."""

    id: str
    server_id: str
    action: ActionKind
    state: ActionState
    previous_status: ServerStatus
    error: str | None = None
    result: str | None = None
    requested_by: str
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    updated_at: str


@dataclass(frozen=True)
class NewAction:
    """What POST /api/servers/{id}/actions asks for, with who asked and their key."""

    server_id: str
    action: ActionKind
    requested_by: str
    idempotency_key: str | None = None
    request_hash: str | None = None


_COLS = (
    "id, server_id, action, state, previous_status, error, result, requested_by, "
    "created_at, started_at, finished_at, updated_at"
)


def _action(row: Any) -> Action:
    return Action(
        id=row[0],
        server_id=row[1],
        action=row[2],
        state=row[3],
        previous_status=row[4],
        error=row[5],
        result=row[6],
        requested_by=row[7],
        created_at=row[8],
        started_at=row[9],
        finished_at=row[10],
        updated_at=row[11],
    )


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class ActionStore:
    """The actions table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def _one(self, conn: Connection, ident: str) -> Action | None:
        async with conn.execute(f"SELECT {_COLS} FROM actions WHERE id = ?", (ident,)) as cur:
            row = await cur.fetchone()
        return _action(row) if row else None

    async def get(self, ident: str) -> Action:
        """One action or 404."""
        async with self.db.read() as conn:
            found = await self._one(conn, ident)
        if found is None:
            raise not_found("action", ident)
        return found

    async def page(
        self,
        server_id: str | None,
        states: tuple[str, ...],
        limit: int,
        cursor: str | None,
        servers: Collection[str] | None = None,
    ) -> tuple[list[Action], str | None]:
        """Newest first, optionally for one server and some states; keyset-paged. ``servers``
        (a scoped caller's reach) keeps only those servers' actions, in the SQL so pages stay
        full; bound as one JSON array, so thousands of ids are one parameter."""
        where: list[str] = []
        args: list[Any] = []
        if server_id is not None:
            where.append("server_id = ?")
            args.append(server_id)
        if servers is not None:
            where.append("server_id IN (SELECT value FROM json_each(?))")
            args.append(json.dumps(list(servers)))
        if states:
            where.append(f"state IN ({', '.join('?' for _ in states)})")
            args += states
        if cursor:
            created, last_id = decode_cursor(cursor, SORT)
            where.append("(created_at < ? OR (created_at = ? AND id < ?))")
            args += [created, created, last_id]
        sql = f"SELECT {_COLS} FROM actions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
        args.append(limit + 1)
        async with self.db.read() as conn, conn.execute(sql, args) as cur:
            rows = list(await cur.fetchall())
        items = [_action(r) for r in rows[:limit]]
        more = len(rows) > limit
        return items, encode_cursor(SORT, items[-1].created_at, items[-1].id) if more else None

    async def create(
        self, new: NewAction, check: Callable[[str, Action | None], None]
    ) -> tuple[Action, bool]:
        """Insert a queued action; returns it and True, or a replay of the key's action and False.

        ``check(server_status, pending_action)`` raises the 409 for an impossible transition.
        It runs after the key lookup, so a client retrying a request that already started an
        action gets that action back instead of a conflict with it.
        """
        now = datetime.now(UTC)
        async with self.db.write() as conn:
            # The server's row lock queues a second request for the same server (this core's
            # or another's) behind this one, so it sees this action: as its replay, or pending.
            await lock_row(self.db, conn, "servers", new.server_id)
            if new.idempotency_key is not None:
                replay = await self._replay(conn, new, _iso(now - KEY_TTL))
                if replay is not None:
                    return replay, False
            sql = "SELECT status FROM servers WHERE id = ?"
            async with conn.execute(sql, (new.server_id,)) as cur:
                row = await cur.fetchone()
            if row is None:
                raise not_found("server", new.server_id)
            sql = f"SELECT {_COLS} FROM actions WHERE server_id = ? AND state IN (?, ?)"
            async with conn.execute(sql, (new.server_id, *PENDING)) as cur:
                pending = await cur.fetchone()
            check(str(row[0]), _action(pending) if pending else None)
            ident, stamp = str(uuid.uuid4()), _iso(now)
            await conn.execute(
                "INSERT INTO actions (id, server_id, action, state, previous_status, "
                "requested_by, idempotency_key, request_hash, created_at, updated_at) "
                "VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?)",
                (
                    ident,
                    new.server_id,
                    new.action,
                    row[0],
                    new.requested_by,
                    new.idempotency_key,
                    new.request_hash,
                    stamp,
                    stamp,
                ),
            )
            created = await self._one(conn, ident)
        assert created is not None
        return created, True

    async def _replay(self, conn: Connection, new: NewAction, cutoff: str) -> Action | None:
        """The live action this caller's key made, or None; 422 if it came with another request."""
        sql = (
            f"SELECT {_COLS}, request_hash FROM actions "
            "WHERE requested_by = ? AND idempotency_key = ?"
        )
        async with conn.execute(sql, (new.requested_by, new.idempotency_key)) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        found = _action(row)
        if found.created_at < cutoff:
            # Expired: forget the key on the old row so the unique index lets it be reused.
            sql = "UPDATE actions SET idempotency_key = NULL WHERE id = ?"
            await conn.execute(sql, (found.id,))
            return None
        if row[-1] != new.request_hash:
            raise invalid(
                "Idempotency-Key",
                f"already used with a different request (action {found.id}); "
                "send a new key for a new request",
            )
        return found

    async def move(
        self, ident: str, source: ActionState, target: ActionState, **fields: str | None
    ) -> Action | None:
        """Move an action from source to target state, setting fields; None if it was not in
        source (another worker or a delete got there first)."""
        now = now_iso()
        changes: dict[str, str | None] = {**fields, "state": target, "updated_at": now}
        if target == "running":
            changes["started_at"] = now
        elif target == "queued":  # put back: as far as anyone can tell it never started
            changes["started_at"] = None
        else:
            changes["finished_at"] = now
        assignments = ", ".join(f"{column} = ?" for column in changes)
        async with self.db.write() as conn:
            cur = await conn.execute(
                f"UPDATE actions SET {assignments} WHERE id = ? AND state = ?",
                [*changes.values(), ident, source],
            )
            if cur.rowcount == 0:
                return None
            return await self._one(conn, ident)

    async def recover(self, reason: str) -> tuple[list[Action], list[Action]]:
        """At start: fail every action caught running (returned first), and list the queued
        ones in the order they were asked for (returned second). One transaction."""
        now = now_iso()
        async with self.db.write() as conn:
            sql = f"SELECT {_COLS} FROM actions WHERE state = 'running'"
            async with conn.execute(sql) as cur:
                running = [r[0] for r in await cur.fetchall()]
            await conn.execute(
                "UPDATE actions SET state = 'failed', error = ?, finished_at = ?, updated_at = ? "
                "WHERE state = 'running'",
                (reason, now, now),
            )
            failed = [a for ident in running if (a := await self._one(conn, ident)) is not None]
            sql = f"SELECT {_COLS} FROM actions WHERE state = 'queued' ORDER BY created_at, id"
            async with conn.execute(sql) as cur:
                queued = [_action(r) for r in await cur.fetchall()]
        return failed, queued
