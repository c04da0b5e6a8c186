"""What people write about incidents: incidents opened by hand, updates, acknowledgements.

A manual incident names its targets (monitors, servers, environments, projects, clients) and
moves through investigating → identified → monitoring → resolved by updates; "resolved"
closes it, and a later update in another state re-opens it (and forgets its acknowledgement).
Automatic incidents (store/monitors.py) take updates and acknowledgements too: those rows
name the incident by id, whichever table holds it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from ..clock import not_before, now_iso
from ..model.inventory import Body, FieldError, Wire
from ..problem import Problem, invalid, not_found
from .monitors import Incident
from .placement import Within, targets_within
from .sql import Connection, Database, note_created

Severity = Literal["minor", "major", "critical"]
State = Literal["investigating", "identified", "monitoring", "resolved"]
TargetKind = Literal["monitor", "server", "environment", "project", "client"]
TABLES: dict[str, str] = {
    "monitor": "monitors",
    "server": "servers",
    "environment": "environments",
    "project": "projects",
    "client": "clients",
}
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"\S")]
Message = Annotated[str, msgspec.Meta(min_length=1, max_length=5000, pattern=r"\S")]
TargetId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class IncidentTarget(Body, kw_only=True):
    """One thing an incident is about."""

    kind: TargetKind
    id: TargetId


class IncidentSpec(Body, kw_only=True):
    """POST /api/incidents: a manual incident, optionally with its first update."""

    title: Title
    severity: Severity
    targets: Annotated[list[IncidentTarget], msgspec.Meta(min_length=1, max_length=100)]
    state: State = "investigating"
    message: Message | None = None

    def __post_init__(self) -> None:
        if self.state == "resolved":
            raise FieldError("$.state", "an incident cannot open resolved")
        if len({(t.kind, t.id) for t in self.targets}) != len(self.targets):
            raise FieldError("$.targets", "each target may appear once")


class UpdateSpec(Body, kw_only=True):
    """POST /api/incidents/{id}/updates."""

    state: State
    message: Message


class IncidentUpdate(Wire, kw_only=True):
    """One update of an incident's story."""

    state: str
    message: str
    author: str
    at: str


class Acknowledgement(Wire, kw_only=True):
    """Who took an incident on, and when."""

    acknowledged_by: str
    acknowledged_at: str


class MonitorIncident(Incident, tag="monitor", tag_field="kind", kw_only=True):
    """An automatic incident (a monitor went down) with what people added to it."""

    acknowledged_by: str | None = None
    acknowledged_at: str | None = None
    updates: list[IncidentUpdate] = []


class ManualIncident(Wire, tag="manual", tag_field="kind", kw_only=True):
    """An incident opened by hand."""

    id: str
    title: str
    severity: str
    state: str
    targets: list[IncidentTarget]
    opened_by: str
    opened_at: str
    closed_at: str | None = None
    duration_seconds: float | None = None
    acknowledged_by: str | None = None
    acknowledged_at: str | None = None
    updates: list[IncidentUpdate] = []


class Change(msgspec.Struct, frozen=True):
    """What an update did to a manual incident: closed it, re-opened it, or neither."""

    incident_id: str
    state: str
    closed: bool = False
    reopened: bool = False


_MANUAL = "id, title, severity, state, opened_by, opened_at, closed_at, duration_seconds"
_UPDATE_COLS = "incident_id, state, message, author, at"


def _seconds(start: str, end: str) -> float:
    return max(0.0, (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds())


def _ids(ids: list[str]) -> str:
    return msgspec.json.encode(ids).decode()


class IncidentNotesStore:
    """Manual incidents, and the updates and acknowledgements of every incident."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------------ manual incidents

    async def create(self, spec: IncidentSpec, author: str) -> ManualIncident:
        """Open a manual incident; 422 naming the target that does not exist."""
        ident = str(uuid.uuid4())
        now = now_iso()
        async with self.db.write() as conn:
            for i, target in enumerate(spec.targets):
                table = TABLES[target.kind]
                async with conn.execute(f"SELECT 1 FROM {table} WHERE id = ?", (target.id,)) as c:
                    if await c.fetchone() is None:
                        raise invalid(
                            f"$.targets[{i}].id", f"{target.kind} {target.id[:64]} does not exist"
                        )
            note_created(ident)
            await conn.execute(
                f"INSERT INTO manual_incidents ({_MANUAL}) VALUES (?, ?, ?, ?, ?, ?, NULL, NULL)",
                (ident, spec.title, spec.severity, spec.state, author, now),
            )
            await conn.executemany(
                "INSERT INTO manual_incident_targets (incident_id, kind, target_id) "
                "VALUES (?, ?, ?)",
                [(ident, t.kind, t.id) for t in spec.targets],
            )
            if spec.message is not None:
                await conn.execute(
                    f"INSERT INTO incident_updates ({_UPDATE_COLS}) VALUES (?, ?, ?, ?, ?)",
                    (ident, spec.state, spec.message, author, now),
                )
            found = await self._manual(conn, [ident])
        return found[0]

    async def manual(self, ident: str) -> ManualIncident | None:
        """One manual incident with its targets, updates and acknowledgement."""
        async with self.db.read(snapshot=True) as conn:
            found = await self._manual(conn, [ident])
        return found[0] if found else None

    async def manual_incidents(
        self,
        *,
        state: str | None,
        since: str | None,
        before: tuple[str, str] | None,
        limit: int,
        target: tuple[str, str] | None = None,
        within: Within | None = None,
    ) -> list[ManualIncident]:
        """Manual incidents newest first, filtered like ``MonitorStore.incidents``; target
        keeps those about one (kind, id), within a scoped caller's (every target in reach)."""
        where: list[str] = []
        args: list[Any] = []
        if within is not None:
            clause, more = targets_within(within, "manual_incident_targets", "manual_incidents.id")
            where.append(clause)
            args += more
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
        if target:
            where.append(
                "id IN (SELECT incident_id FROM manual_incident_targets "
                "WHERE kind = ? AND target_id = ?)"
            )
            args += list(target)
        sql = "SELECT id FROM manual_incidents"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY opened_at DESC, id DESC LIMIT ?"
        args.append(limit)
        async with self.db.read(snapshot=True) as conn:
            rows = await conn.execute_fetchall(sql, args)
            return await self._manual(conn, [r[0] for r in rows])

    async def _manual(self, conn: Connection, ids: list[str]) -> list[ManualIncident]:
        """The manual incidents ids names, whole, in the order given (missing ones skipped)."""
        if not ids:
            return []
        listed = _ids(ids)
        rows = await conn.execute_fetchall(
            f"SELECT {_MANUAL} FROM manual_incidents WHERE id IN (SELECT value FROM json_each(?))",
            (listed,),
        )
        targets: dict[str, list[IncidentTarget]] = {}
        for incident_id, kind, target_id in await conn.execute_fetchall(
            "SELECT incident_id, kind, target_id FROM manual_incident_targets "
            "WHERE incident_id IN (SELECT value FROM json_each(?)) "
            "ORDER BY incident_id, kind, target_id",
            (listed,),
        ):
            targets.setdefault(incident_id, []).append(IncidentTarget(kind=kind, id=target_id))
        updates = await self._updates(conn, ids)
        acks = await self._acks(conn, ids)
        found: dict[str, ManualIncident] = {}
        for ident, title, severity, state, by, opened, closed, lasted in rows:
            ack = acks.get(ident)
            found[ident] = ManualIncident(
                id=ident,
                title=title,
                severity=severity,
                state=state,
                targets=targets.get(ident, []),
                opened_by=by,
                opened_at=opened,
                closed_at=closed,
                duration_seconds=lasted,
                acknowledged_by=ack.acknowledged_by if ack else None,
                acknowledged_at=ack.acknowledged_at if ack else None,
                updates=updates.get(ident, []),
            )
        return [found[i] for i in ids if i in found]

    # ------------------------------------------------------------------ every incident

    async def _kind_of(self, conn: Connection, ident: str) -> tuple[str, tuple[Any, ...]]:
        """("manual", (state, opened_at, closed_at)) or ("monitor", (closed_at,)); 404."""
        async with conn.execute(
            "SELECT state, opened_at, closed_at FROM manual_incidents WHERE id = ?", (ident,)
        ) as cur:
            row = await cur.fetchone()
        if row is not None:
            return "manual", tuple(row)
        async with conn.execute("SELECT closed_at FROM incidents WHERE id = ?", (ident,)) as cur:
            row = await cur.fetchone()
        if row is not None:
            return "monitor", tuple(row)
        raise not_found("incident", ident[:64])

    async def add_update(self, ident: str, spec: UpdateSpec, author: str) -> Change:
        """Append an update. On a manual incident its state follows: "resolved" closes it, any
        other state after that re-opens it and drops its acknowledgement. An automatic
        incident keeps its own state (it closes when the monitor recovers)."""
        now = now_iso()
        async with self.db.write() as conn:
            kind, row = await self._kind_of(conn, ident)
            await conn.execute(
                f"INSERT INTO incident_updates ({_UPDATE_COLS}) VALUES (?, ?, ?, ?, ?)",
                (ident, spec.state, spec.message, author, now),
            )
            if kind == "monitor":
                return Change(ident, spec.state)
            _, opened_at, closed_at = row
            if spec.state == "resolved" and closed_at is None:
                closed_at = not_before(opened_at, now)
                await conn.execute(
                    "UPDATE manual_incidents SET state = ?, closed_at = ?, duration_seconds = ? "
                    "WHERE id = ?",
                    (spec.state, closed_at, _seconds(opened_at, closed_at), ident),
                )
                return Change(ident, spec.state, closed=True)
            if spec.state != "resolved" and closed_at is not None:
                await conn.execute(
                    "UPDATE manual_incidents SET state = ?, closed_at = NULL, "
                    "duration_seconds = NULL WHERE id = ?",
                    (spec.state, ident),
                )
                await conn.execute("DELETE FROM incident_acks WHERE incident_id = ?", (ident,))
                return Change(ident, spec.state, reopened=True)
            await conn.execute(
                "UPDATE manual_incidents SET state = ? WHERE id = ?", (spec.state, ident)
            )
            return Change(ident, spec.state)

    async def acknowledge(self, ident: str, by: str) -> tuple[Acknowledgement, bool]:
        """Record who took the incident on; (the acknowledgement, whether it is new). A second
        call keeps the first one. 404 for an unknown incident, 409 for a closed one."""
        async with self.db.write() as conn:
            _, row = await self._kind_of(conn, ident)
            if row[-1] is not None:
                raise Problem(409, f"incident {ident} is closed; there is nothing to acknowledge")
            # ON CONFLICT: another core may acknowledge the same incident at the same moment.
            cur = await conn.execute(
                "INSERT INTO incident_acks (incident_id, acknowledged_by, acknowledged_at) "
                "VALUES (?, ?, ?) ON CONFLICT (incident_id) DO NOTHING",
                (ident, by, now_iso()),
            )
            acks = await self._acks(conn, [ident])
            return acks[ident], cur.rowcount == 1

    async def acknowledged(self, ids: list[str]) -> dict[str, Acknowledgement]:
        """incident id -> its acknowledgement, for those of ids that have one."""
        async with self.db.read() as conn:
            return await self._acks(conn, ids)

    async def updates(self, ids: list[str]) -> dict[str, list[IncidentUpdate]]:
        """incident id -> its updates, oldest first."""
        async with self.db.read() as conn:
            return await self._updates(conn, ids)

    async def annotate(self, incidents: list[Incident]) -> list[MonitorIncident]:
        """Automatic incidents with their updates and acknowledgements."""
        ids = [i.id for i in incidents]
        async with self.db.read(snapshot=True) as conn:
            updates = await self._updates(conn, ids)
            acks = await self._acks(conn, ids)
        out = []
        for i in incidents:
            ack = acks.get(i.id)
            out.append(
                MonitorIncident(
                    **msgspec.structs.asdict(i),
                    acknowledged_by=ack.acknowledged_by if ack else None,
                    acknowledged_at=ack.acknowledged_at if ack else None,
                    updates=updates.get(i.id, []),
                )
            )
        return out

    async def _updates(self, conn: Connection, ids: list[str]) -> dict[str, list[IncidentUpdate]]:
        if not ids:
            return {}
        found: dict[str, list[IncidentUpdate]] = {}
        for incident_id, state, message, author, at in await conn.execute_fetchall(
            f"SELECT {_UPDATE_COLS} FROM incident_updates "
            "WHERE incident_id IN (SELECT value FROM json_each(?)) ORDER BY seq",
            (_ids(ids),),
        ):
            found.setdefault(incident_id, []).append(
                IncidentUpdate(state=state, message=message, author=author, at=at)
            )
        return found

    async def _acks(self, conn: Connection, ids: list[str]) -> dict[str, Acknowledgement]:
        if not ids:
            return {}
        rows = await conn.execute_fetchall(
            "SELECT incident_id, acknowledged_by, acknowledged_at FROM incident_acks "
            "WHERE incident_id IN (SELECT value FROM json_each(?))",
            (_ids(ids),),
        )
        return {r[0]: Acknowledgement(acknowledged_by=r[1], acknowledged_at=r[2]) for r in rows}
