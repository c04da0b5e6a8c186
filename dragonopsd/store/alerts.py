"""Resource alert rules and the incidents they open on servers: shapes, validation, tables.

A rule reads ``cpu > 90 for 5m``: a metric of the server's samples above a threshold for a
duration, or ``no-samples for 10m`` (an agent server that stopped pushing). ``__post_init__``
checks the cross-field rules and raises ``FieldError`` naming the field, so bad input is a 422.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from ..clock import now_iso
from ..model.inventory import Body, FieldError, Name, Wire
from ..problem import invalid, not_found
from .sql import Connection, Database, note_created

AlertMetric = Literal["cpu", "memory", "disk", "load", "no-samples"]
RuleSource = Literal["api", "config"]
PERCENT_METRICS = frozenset({"cpu", "memory", "disk"})
MAX_FOR = 7 * 86_400
MAX_LOAD = 100_000.0
# "for": whole seconds, or a duration like 90s, 5m, 2h, 1d (what a person writes in a rule).
ForText = Annotated[str, msgspec.Meta(max_length=20)]
ForSeconds = Annotated[int, msgspec.Meta(ge=0, le=MAX_FOR)]
_DURATION = re.compile(r"^\s*(\d{1,7})\s*(s|m|h|d)?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, None: 1}
TARGETS = ("server_id", "environment_id", "project_id", "client_id")


def seconds_of(value: int | str) -> int:
    """``for`` as seconds; FieldError naming ``$.for`` when it is not a duration in range."""
    if isinstance(value, int):
        return value
    m = _DURATION.match(value)
    if m is None:
        raise FieldError("$.for", f"expected seconds or a duration like 90s, 5m, 1h; got {value!r}")
    seconds = int(m[1]) * _UNITS[m[2]]
    if seconds > MAX_FOR:
        raise FieldError("$.for", f"at most {MAX_FOR} seconds (7 days)")
    return seconds


def spell(seconds: int) -> str:
    """``300`` -> ``5m``: the largest whole unit, as a rule is read."""
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def expression(metric: str, threshold: float | None, seconds: int) -> str:
    """``cpu > 90 for 5m``, ``no-samples for 10m``."""
    if metric == "no-samples":
        return f"no-samples for {spell(seconds)}"
    return f"{metric} > {threshold:g} for {spell(seconds)}"


class AlertRuleSpec(Body, kw_only=True):
    """POST /api/alert-rules, a PATCH merged onto a rule, and one ``[[alert_rules]]`` table.

    At most one of serverId, environmentId, projectId and clientId; none: every server.
    """

    name: Name | None = None
    metric: AlertMetric
    threshold: float | None = None
    for_: ForSeconds | ForText = msgspec.field(default=0, name="for")
    enabled: bool = True
    server_id: uuid.UUID | None = None
    environment_id: uuid.UUID | None = None
    project_id: uuid.UUID | None = None
    client_id: uuid.UUID | None = None

    def __post_init__(self) -> None:
        self.for_ = seconds_of(self.for_)
        if self.metric == "no-samples":
            if self.threshold is not None:
                raise FieldError("$.threshold", "not used by metric no-samples")
            if self.for_ < 1:
                raise FieldError("$.for", "no-samples needs at least 1 second")
        elif self.threshold is None:
            raise FieldError("$.threshold", f"required for metric {self.metric}")
        elif self.metric in PERCENT_METRICS and not 0 <= self.threshold < 100:
            raise FieldError("$.threshold", f"{self.metric} is a percentage: from 0, below 100")
        elif self.metric == "load" and not 0 <= self.threshold <= MAX_LOAD:
            raise FieldError("$.threshold", f"load: from 0 to {MAX_LOAD:g}")
        named = [t for t in TARGETS if getattr(self, t) is not None]
        if len(named) > 1:
            second = _camel(named[1])
            raise FieldError(
                f"$.{second}", "a rule targets one server, environment, project or client"
            )

    @property
    def seconds(self) -> int:
        """``for`` in seconds (validated to an int at decode)."""
        assert isinstance(self.for_, int)
        return self.for_


class AlertRulePatch(Body, kw_only=True):
    """PATCH /api/alert-rules/{id}: the fields sent replace the current ones."""

    name: Name | UnsetType | None = UNSET
    metric: AlertMetric | UnsetType = UNSET
    threshold: float | UnsetType | None = UNSET
    for_: ForSeconds | ForText | UnsetType = msgspec.field(default=UNSET, name="for")
    enabled: bool | UnsetType = UNSET
    server_id: uuid.UUID | UnsetType | None = UNSET
    environment_id: uuid.UUID | UnsetType | None = UNSET
    project_id: uuid.UUID | UnsetType | None = UNSET
    client_id: uuid.UUID | UnsetType | None = UNSET


class AlertRule(Wire, kw_only=True):
    """A rule as stored and shown; ``for`` is seconds, ``expression`` the rule as read."""

    id: str
    name: str
    metric: AlertMetric
    threshold: float | None
    for_: int = msgspec.field(name="for")
    enabled: bool
    server_id: str | None = None
    environment_id: str | None = None
    project_id: str | None = None
    client_id: str | None = None
    expression: str
    managed_by: RuleSource = "api"
    created_at: str
    updated_at: str


def rule_of(
    ident: str, spec: AlertRuleSpec, created: str, updated: str, source: RuleSource
) -> AlertRule:
    """The rule a validated spec describes."""
    text = expression(spec.metric, spec.threshold, spec.seconds)
    return AlertRule(
        id=ident,
        name=spec.name or text,
        metric=spec.metric,
        threshold=spec.threshold,
        for_=spec.seconds,
        enabled=spec.enabled,
        server_id=_str(spec.server_id),
        environment_id=_str(spec.environment_id),
        project_id=_str(spec.project_id),
        client_id=_str(spec.client_id),
        expression=text,
        managed_by=source,
        created_at=created,
        updated_at=updated,
    )


def merge_patch(current: AlertRule, patch: AlertRulePatch) -> dict[str, Any]:
    """The wire form of current with patch applied, to validate as an AlertRuleSpec.

    A name equal to the old expression was the default: it follows the new expression.
    """
    base: dict[str, Any] = msgspec.to_builtins(current)
    for key in ("id", "expression", "managedBy", "createdAt", "updatedAt"):
        base.pop(key)
    if current.name == current.expression:
        base.pop("name")
    if current.metric != "no-samples" and getattr(patch, "metric", None) == "no-samples":
        base.pop("threshold")  # switching to no-samples drops the threshold it cannot use
    changes: dict[str, Any] = msgspec.to_builtins(patch)
    return base | changes


class AlertIncident(Wire, kw_only=True):
    """A period during which a rule fired on a server."""

    id: str
    server_id: str
    rule_id: str
    rule_name: str
    metric: str
    opened_at: str
    closed_at: str | None = None
    duration_seconds: float | None = None
    cause: str
    root_cause: str | None = None
    resolution: str | None = None


_RULE_COLS = (
    "id, name, metric, threshold, duration, enabled, server_id, environment_id, project_id, "
    "client_id, created_at, updated_at"
)
_INCIDENT_COLS = tuple(f.name for f in msgspec.structs.fields(AlertIncident))


def _rule(r: Any) -> AlertRule:
    return AlertRule(
        id=r[0],
        name=r[1],
        metric=r[2],
        threshold=r[3],
        for_=r[4],
        enabled=bool(r[5]),
        server_id=r[6],
        environment_id=r[7],
        project_id=r[8],
        client_id=r[9],
        expression=expression(r[2], r[3], r[4]),
        created_at=r[10],
        updated_at=r[11],
    )


class AlertStore:
    """CRUD on alert_rules; alert_incidents opened and closed one at a time."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def rules(self) -> list[AlertRule]:
        """Every stored rule, by name."""
        async with (
            self.db.read() as conn,
            conn.execute(f"SELECT {_RULE_COLS} FROM alert_rules ORDER BY name, id") as cur,
        ):
            return [_rule(r) for r in await cur.fetchall()]

    async def _check_target(self, conn: Connection, spec: AlertRuleSpec) -> None:
        for field in TARGETS:
            value = getattr(spec, field)
            if value is None:
                continue
            table = field.removesuffix("_id") + "s"
            async with conn.execute(f"SELECT 1 FROM {table} WHERE id = ?", (str(value),)) as cur:
                if await cur.fetchone() is None:
                    raise invalid(f"$.{_camel(field)}", f"{table[:-1]} {value} does not exist")

    async def _get(self, conn: Connection, ident: str) -> AlertRule:
        sql = f"SELECT {_RULE_COLS} FROM alert_rules WHERE id = ?"
        async with conn.execute(sql, (ident,)) as cur:
            row = await cur.fetchone()
        if row is None:
            raise not_found("alert rule", ident)
        return _rule(row)

    async def insert(self, spec: AlertRuleSpec) -> AlertRule:
        """Store a new rule; 422 naming the target field when it names nothing."""
        now = now_iso()
        async with self.db.write() as conn:
            await self._check_target(conn, spec)
            ident = str(uuid.uuid4())
            rule = rule_of(ident, spec, now, now, "api")
            await conn.execute(
                f"INSERT INTO alert_rules ({_RULE_COLS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (ident, *_values(rule), now, now),
            )
            note_created(ident)
            return await self._get(conn, ident)

    async def replace(self, ident: str, spec: AlertRuleSpec) -> AlertRule:
        """Overwrite a rule or 404."""
        async with self.db.write() as conn:
            current = await self._get(conn, ident)
            await self._check_target(conn, spec)
            rule = rule_of(ident, spec, current.created_at, now_iso(), "api")
            await conn.execute(
                "UPDATE alert_rules SET name = ?, metric = ?, threshold = ?, duration = ?, "
                "enabled = ?, server_id = ?, environment_id = ?, project_id = ?, client_id = ?, "
                "updated_at = ? WHERE id = ?",
                (*_values(rule), rule.updated_at, ident),
            )
            return await self._get(conn, ident)

    async def delete(self, ident: str) -> AlertRule:
        """Remove a rule or 404."""
        async with self.db.write() as conn:
            current = await self._get(conn, ident)
            await conn.execute("DELETE FROM alert_rules WHERE id = ?", (ident,))
            return current

    async def open_incidents(self) -> list[AlertIncident]:
        """Every incident still open (a restart resumes them)."""
        cols = ", ".join(_INCIDENT_COLS)
        async with (
            self.db.read() as conn,
            conn.execute(f"SELECT {cols} FROM alert_incidents WHERE closed_at IS NULL") as cur,
        ):
            return [
                AlertIncident(**dict(zip(_INCIDENT_COLS, r, strict=True)))
                for r in await cur.fetchall()
            ]

    async def incidents(self, server_id: str, limit: int) -> list[AlertIncident]:
        """A server's incidents, newest first."""
        cols = ", ".join(_INCIDENT_COLS)
        sql = (
            f"SELECT {cols} FROM alert_incidents WHERE server_id = ? "
            "ORDER BY opened_at DESC, id DESC LIMIT ?"
        )
        async with self.db.read() as conn, conn.execute(sql, (server_id, limit)) as cur:
            return [
                AlertIncident(**dict(zip(_INCIDENT_COLS, r, strict=True)))
                for r in await cur.fetchall()
            ]

    async def open(
        self, incident: AlertIncident, *, stored_rule: bool
    ) -> tuple[AlertIncident | None, bool]:
        """Record an opened incident unless its rule already has one open on the server (the
        unique index of open rows says so, whichever core wrote it): (the incident open for the
        rule on the server, whether this call opened it). (None, False) when none can open: the
        server was deleted meanwhile, or the rule is ``stored_rule`` (one of alert_rules, not
        the config file's) and another core deleted or disabled it (this core's book has not
        reloaded yet)."""
        values = msgspec.structs.asdict(incident)
        marks = ", ".join("?" for _ in _INCIDENT_COLS)
        cols = ", ".join(_INCIDENT_COLS)
        async with self.db.write() as conn:
            async with conn.execute(
                "SELECT 1 FROM servers WHERE id = ?", (incident.server_id,)
            ) as cur:
                if await cur.fetchone() is None:
                    return None, False
            if stored_rule:
                sql = "SELECT 1 FROM alert_rules WHERE id = ? AND enabled = 1"
                async with conn.execute(sql, (incident.rule_id,)) as cur:
                    if await cur.fetchone() is None:
                        return None, False
            cur = await conn.execute(
                f"INSERT INTO alert_incidents ({cols}) VALUES ({marks}) ON CONFLICT DO NOTHING",
                [values[c] for c in _INCIDENT_COLS],
            )
            if cur.rowcount == 1:
                return incident, True
            sql = (
                f"SELECT {cols} FROM alert_incidents "
                "WHERE rule_id = ? AND server_id = ? AND closed_at IS NULL"
            )
            async with conn.execute(sql, (incident.rule_id, incident.server_id)) as cur:
                row = await cur.fetchone()
        if row is None:  # closed between the two statements (PostgreSQL): as good as gone
            return None, False
        return AlertIncident(**dict(zip(_INCIDENT_COLS, row, strict=True))), False

    async def close(self, incident: AlertIncident) -> bool:
        """Record an incident's closing (closed_at, duration_seconds, resolution); False when
        its row was closed already (by another core, which told of it). A row that is gone
        (its server deleted) counts as closed by this call: nobody else told."""
        async with self.db.write() as conn:
            cur = await conn.execute(
                "UPDATE alert_incidents SET closed_at = ?, duration_seconds = ?, resolution = ? "
                "WHERE id = ? AND closed_at IS NULL",
                (incident.closed_at, incident.duration_seconds, incident.resolution, incident.id),
            )
            if cur.rowcount == 1:
                return True
            async with conn.execute(
                "SELECT 1 FROM alert_incidents WHERE id = ?", (incident.id,)
            ) as found:
                return await found.fetchone() is None


def _values(rule: AlertRule) -> tuple[Any, ...]:
    """Column values after id, up to client_id."""
    return (
        rule.name,
        rule.metric,
        rule.threshold,
        rule.for_,
        int(rule.enabled),
        rule.server_id,
        rule.environment_id,
        rule.project_id,
        rule.client_id,
    )


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def _str(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)
