"""Monitor rows, their persisted state, and incidents."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import msgspec

from ..clock import now_iso
from ..model.inventory import Wire
from ..model.monitor import Monitor, MonitorSpec
from ..model.schedule import seconds
from ..problem import FieldIssue, Problem, invalid, not_found
from .placement import Within, monitors_within
from .sql import Connection, Database, RowLocks, lock_row, note_created

_encode = msgspec.json.Encoder().encode
_decode_spec = msgspec.json.Decoder(MonitorSpec).decode
T = TypeVar("T")
_COLS = "seq, id, managed_by, server_id, environment_id, push_token, spec, created_at, updated_at"


@dataclass
class MonitorRow:
    """A monitor as stored: the integer key history uses, and the public shape."""

    seq: int
    monitor: Monitor
    spec: MonitorSpec


def _row(r: Any) -> MonitorRow:
    seq, ident, managed_by, server_id, environment_id, push_token, raw, created, updated = r
    spec = _decode_spec(raw)
    data = msgspec.structs.asdict(spec)
    del data["given_timeout"]
    data.update(
        timeout=spec.timeout,  # the one in force, given or default
        interval=None if spec.cron else spec.period,
        grace=seconds(spec.grace),  # "5m" as given, 300 as the API answers
        max_runtime=spec.max_runtime_seconds,
        id=ident,
        server_id=server_id,  # the column wins: ON DELETE SET NULL keeps it honest
        environment_id=environment_id,
        push_token=push_token,
        managed_by=managed_by,
        created_at=created,
        updated_at=updated,
    )
    return MonitorRow(seq, Monitor(**data), spec)


async def _naming(where: str, step: Awaitable[T]) -> T:
    """Await step; a Problem it raises names ``where`` (a config table) in front of its field."""
    try:
        return await step
    except Problem as exc:
        errors = [FieldIssue(f"{where}{e.field[1:]}", e.message) for e in exc.errors]
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors) or f"{where}: {exc.detail}"
        raise Problem(exc.status, detail, errors=errors) from None


class Incident(Wire, kw_only=True):
    """A period during which a monitor was down."""

    id: str
    monitor_id: str
    monitor_name: str
    opened_at: str
    closed_at: str | None = None
    duration_seconds: float | None = None
    cause: str
    root_cause: str | None = None
    locations: list[str] = []
    resolution: str | None = None  # how it ended, when not by the monitor coming back up


class Closing(NamedTuple):
    """An incident being closed: when, after how long, and how it ended (None: recovered)."""

    incident_id: str
    closed_at: str
    duration_seconds: float
    resolution: str | None = None


_INCIDENT_COLS = tuple(f.name for f in msgspec.structs.fields(Incident))


def _incident(r: Any) -> Incident:
    data = dict(zip(_INCIDENT_COLS, r, strict=True))
    data["locations"] = msgspec.json.decode(data["locations"])
    return Incident(**data)


class MonitorStore:
    """CRUD on monitors, their last status, and incidents."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._rows = RowLocks()

    async def _check_links(self, conn: Connection, spec: MonitorSpec) -> None:
        for field, table, value in (
            ("$.serverId", "servers", spec.server_id),
            ("$.environmentId", "environments", spec.environment_id),
        ):
            if value is None:
                continue
            async with conn.execute(f"SELECT 1 FROM {table} WHERE id = ?", (str(value),)) as cur:
                if await cur.fetchone() is None:
                    raise invalid(field, f"{table[:-1]} {value} does not exist")

    async def create(self, spec: MonitorSpec, managed_by: str = "api") -> MonitorRow:
        """Insert a monitor (push monitors get their token here)."""
        return (await self.create_many([spec], managed_by))[0]

    async def create_many(self, specs: list[MonitorSpec], managed_by: str) -> list[MonitorRow]:
        """Insert monitors in one transaction (a config file may declare thousands)."""
        async with self.db.write() as conn:
            return await self._insert(conn, specs, managed_by)

    async def _insert(
        self, conn: Connection, specs: list[MonitorSpec], managed_by: str
    ) -> list[MonitorRow]:
        now = now_iso()
        ids = []
        for spec in specs:
            await self._check_links(conn, spec)
            ident = str(uuid.uuid4())
            token = secrets.token_urlsafe(24) if spec.kind == "push" else None
            ids.append(ident)
            note_created(ident)
            await conn.execute(
                "INSERT INTO monitors (id, name, kind, enabled, managed_by, server_id, "
                "environment_id, push_token, spec, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    ident,
                    spec.name,
                    spec.kind,
                    int(spec.enabled),
                    managed_by,
                    _str(spec.server_id),
                    _str(spec.environment_id),
                    token,
                    _encode(spec).decode(),
                    now,
                    now,
                ),
            )
        async with conn.execute(
            f"SELECT {_COLS} FROM monitors WHERE id IN (SELECT value FROM json_each(?))",
            (_encode(ids).decode(),),
        ) as cur:
            rows = {r[1]: _row(r) for r in await cur.fetchall()}
        return [rows[i] for i in ids]

    async def replace(
        self,
        ident: str,
        spec: MonitorSpec,
        precondition: Callable[[MonitorRow], None] | None = None,
    ) -> MonitorRow:
        """Store a new spec for a monitor (PATCH result or config sync); precondition
        (If-Match) sees the current row inside the transaction and may refuse the write."""
        async with self._rows.hold(ident), self.db.write() as conn:
            await lock_row(self.db, conn, "monitors", ident)
            current = await self._get(conn, ident)
            if precondition is not None:
                precondition(current)
            return await self._update(conn, current, spec)

    async def _update(self, conn: Connection, current: MonitorRow, spec: MonitorSpec) -> MonitorRow:
        await self._check_links(conn, spec)
        token = current.monitor.push_token
        if spec.kind == "push" and token is None:
            token = secrets.token_urlsafe(24)
        elif spec.kind != "push":
            token = None
        await conn.execute(
            "UPDATE monitors SET name = ?, kind = ?, enabled = ?, server_id = ?, "
            "environment_id = ?, push_token = ?, spec = ?, updated_at = ? WHERE id = ?",
            (
                spec.name,
                spec.kind,
                int(spec.enabled),
                _str(spec.server_id),
                _str(spec.environment_id),
                token,
                _encode(spec).decode(),
                now_iso(),
                current.monitor.id,
            ),
        )
        return await self._get(conn, current.monitor.id)

    async def apply_config(
        self,
        create: dict[str, MonitorSpec],
        replace: dict[str, tuple[MonitorRow, MonitorSpec]],
        delete: list[MonitorRow],
        adopt: Collection[str] = (),
    ) -> list[MonitorRow]:
        """One ``[[monitors]]`` sync in one transaction: all of it or, on a Problem (a
        serverId that does not exist), none of it. Keys name the config table the change
        comes from, so the Problem can say which one; the replaced rows under the keys in
        adopt become the file's. Returns the created and replaced rows."""
        changed: list[MonitorRow] = []
        async with self.db.write() as conn:
            for where, spec in create.items():
                changed += await _naming(where, self._insert(conn, [spec], "config"))
            for where, (current, spec) in replace.items():
                if where in adopt:
                    await conn.execute(
                        "UPDATE monitors SET managed_by = 'config' WHERE id = ?",
                        (current.monitor.id,),
                    )
                changed.append(await _naming(where, self._update(conn, current, spec)))
            for row in delete:
                await conn.execute("DELETE FROM monitors WHERE id = ?", (row.monitor.id,))
        return changed

    async def delete(
        self, ident: str, precondition: Callable[[MonitorRow], None] | None = None
    ) -> MonitorRow:
        """Delete a monitor, its state and incidents (history is dropped by its owner)."""
        async with self._rows.hold(ident), self.db.write() as conn:
            await lock_row(self.db, conn, "monitors", ident)
            current = await self._get(conn, ident)
            if precondition is not None:
                precondition(current)
            await conn.execute("DELETE FROM monitors WHERE id = ?", (ident,))
            return current

    async def _get(self, conn: Connection, ident: str) -> MonitorRow:
        async with conn.execute(f"SELECT {_COLS} FROM monitors WHERE id = ?", (ident,)) as cur:
            row = await cur.fetchone()
        if row is None:
            raise not_found("monitor", ident)
        return _row(row)

    async def get(self, ident: str) -> MonitorRow:
        """One monitor or 404."""
        async with self.db.read() as conn:
            return await self._get(conn, ident)

    async def all(self, managed_by: str | None = None) -> list[MonitorRow]:
        """Every monitor (the engine loads them all at start), or those managed_by one source
        (the config sync: filtered here, so it does not decode every other monitor again)."""
        where, params = ("WHERE managed_by = ? ", (managed_by,)) if managed_by else ("", ())
        async with (
            self.db.read() as conn,
            conn.execute(f"SELECT {_COLS} FROM monitors {where}ORDER BY name, id", params) as cur,
        ):
            return [_row(r) for r in await cur.fetchall()]

    async def names(self) -> list[tuple[str, str]]:
        """(name, id) of every monitor, by name: what the config sync resolves windows' and
        channels' monitor names with, without decoding every spec (0.35 s at 25,000 on start)."""
        async with self.db.read() as conn:
            rows = await conn.execute_fetchall("SELECT name, id FROM monitors ORDER BY name, id")
        return [(str(r[0]), str(r[1])) for r in rows]

    async def versions(self) -> dict[str, tuple[int, str]]:
        """id -> (seq, updated_at) of every monitor: what a reconcile compares, without
        decoding and validating every spec (tens of microseconds a row, all on the loop)."""
        async with self.db.read() as conn:
            rows = await conn.execute_fetchall("SELECT id, seq, updated_at FROM monitors")
        return {str(r[0]): (int(r[1]), str(r[2])) for r in rows}

    async def states(self) -> dict[int, tuple[str, str, str | None]]:
        """seq -> (status, since, message) as last persisted."""
        async with (
            self.db.read() as conn,
            conn.execute("SELECT seq, status, since, message FROM monitor_state") as cur,
        ):
            return {r[0]: (r[1], r[2], r[3]) for r in await cur.fetchall()}

    async def transition(
        self,
        seq: int,
        status: str | None,
        message: str | None,
        opened: Incident | None,
        closed: Closing | None,
    ) -> None:
        """Persist a status change (None: the status stays) with the incident it opens or
        closes, in one transaction."""
        now = now_iso()
        async with self.db.write() as conn:
            if status is not None:
                await conn.execute(
                    "INSERT INTO monitor_state (seq, status, since, message) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(seq) DO UPDATE SET status = excluded.status, "
                    "since = excluded.since, message = excluded.message",
                    (seq, status, now, message),
                )
            if closed is not None:
                await _close(conn, closed)
            if opened is not None:
                values = msgspec.structs.asdict(opened)
                values["locations"] = _encode(opened.locations).decode()
                marks = ", ".join("?" for _ in _INCIDENT_COLS)
                await conn.execute(
                    f"INSERT INTO incidents ({', '.join(_INCIDENT_COLS)}) VALUES ({marks})",
                    [values[c] for c in _INCIDENT_COLS],
                )

    async def open_incidents(self) -> dict[str, Incident]:
        """monitor id -> its open incident."""
        cols = ", ".join(_INCIDENT_COLS)
        async with (
            self.db.read() as conn,
            conn.execute(f"SELECT {cols} FROM incidents WHERE closed_at IS NULL") as cur,
        ):
            return {i.monitor_id: i for i in map(_incident, await cur.fetchall())}

    async def incident(self, ident: str) -> Incident | None:
        """One incident by id."""
        cols = ", ".join(_INCIDENT_COLS)
        async with (
            self.db.read() as conn,
            conn.execute(f"SELECT {cols} FROM incidents WHERE id = ?", (ident,)) as cur,
        ):
            row = await cur.fetchone()
        return None if row is None else _incident(row)

    async def incidents(
        self,
        *,
        monitor_id: str | None,
        state: str | None,
        since: str | None,
        before: tuple[str, str] | None,
        limit: int,
        within: Within | None = None,
    ) -> list[Incident]:
        """Incidents newest first, filtered; ``before`` is the (openedAt, id) keyset cursor;
        within keeps a scoped caller's (those of monitors in its reach)."""
        where: list[str] = []
        args: list[Any] = []
        if within is not None:
            clause, more = monitors_within(within, "monitor_id")
            where.append(clause)
            args += more
        if monitor_id:
            where.append("monitor_id = ?")
            args.append(monitor_id)
        if state == "open":
            where.append("closed_at IS NULL")
        elif state == "closed":
            where.append("closed_at IS NOT NULL")
        if since:
            where.append("(closed_at IS NULL OR closed_at >= ?)")
            args.append(since)
        if before:
            where.append("(opened_at < ? OR (opened_at = ? AND id < ?))")
            args += [before[0], before[0], before[1]]
        sql = f"SELECT {', '.join(_INCIDENT_COLS)} FROM incidents"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY opened_at DESC, id DESC LIMIT ?"
        args.append(limit)
        async with self.db.read() as conn, conn.execute(sql, args) as cur:
            return [_incident(r) for r in await cur.fetchall()]


async def _close(conn: Connection, closed: Closing) -> None:
    await conn.execute(
        "UPDATE incidents SET closed_at = ?, duration_seconds = ?, resolution = ? WHERE id = ?",
        (closed.closed_at, closed.duration_seconds, closed.resolution, closed.incident_id),
    )


def _str(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)
