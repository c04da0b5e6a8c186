"""Maintenance windows: the request shapes, their validation, and the table they live in.

A window is one-off (``startsAt``..``endsAt``) or recurring (a 5-field cron in an IANA time
zone, each occurrence lasting ``duration`` seconds). ``__post_init__`` checks the cross-field
rules and raises ``FieldError`` naming the field, so every bad input is a 422 that says where.
"""

from __future__ import annotations

import logging
import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from croniter import CroniterError, croniter
from msgspec import UNSET, UnsetType

from ..clock import now_iso
from ..model.inventory import Body, Description, FieldError, Name, Wire
from ..model.schedule import check_timezone
from ..problem import not_found
from .sql import Connection, Database, note_created

log = logging.getLogger("dragonopsd.maintenance")

MAX_DURATION = 31 * 86_400
MAX_IDS = 1000
WindowKind = Literal["one-off", "recurring"]
Ids = Annotated[list[uuid.UUID], msgspec.Meta(max_length=MAX_IDS)]
Duration = Annotated[int, msgspec.Meta(ge=1, le=MAX_DURATION)]
Cron = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
TimeZone = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Instant = Annotated[
    datetime,
    msgspec.Meta(
        tz=True,
        description="ISO 8601 with an offset; from 1970-01-01T00:00:00Z, before year 9000",
    ),
]

# Every instant of a window lies in [EARLIEST, LATEST): the schedule math (croniter, datetime)
# ends at year 9999, and a window must leave it room for its occurrences and their durations.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
INSTANT_FIELDS = ("starts_at", "ends_at", "active_from", "active_until")
ONE_OFF_FIELDS = ("starts_at", "ends_at")
RECURRING_FIELDS = ("cron", "timezone", "duration", "active_from", "active_until")
# croniter's R (random) and H (hashed) would make a window's schedule change on every parse.
_RANDOM = re.compile(r"(?<![A-Za-z])[RH](?![A-Za-z])", re.IGNORECASE)


def iso(dt: datetime) -> str:
    """UTC, milliseconds, ``Z``: the same text form as every other timestamp in the API."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def check_instant(value: datetime) -> str | None:
    """Why value is outside the range windows may use, or None when it is inside."""
    if not EARLIEST <= value < LATEST:
        return f"must be from {iso(EARLIEST)} and before {iso(LATEST)}"
    return None


def check_cron(expr: str) -> str | None:
    """Why expr is not a usable 5-field cron expression, or None when it is."""
    fields = expr.split()
    if not (len(fields) == 5 or (len(fields) == 1 and expr.startswith("@"))):
        return "expected 5 fields (minute hour day-of-month month day-of-week) or an @alias"
    if _RANDOM.search(expr) or not croniter.is_valid(expr):
        return f"invalid cron expression '{expr}'"
    try:  # valid syntax can still never fire (0 0 30 2 *)
        croniter(expr, datetime(2000, 1, 1, tzinfo=UTC)).get_next(float)
    except CroniterError:
        return f"cron expression '{expr}' never fires"
    return None


class WindowScope(Body, kw_only=True):
    """What a window covers: every monitor, or monitors under any of the listed ids."""

    all: bool = False
    monitor_ids: Ids = []
    server_ids: Ids = []
    environment_ids: Ids = []
    project_ids: Ids = []
    client_ids: Ids = []

    def has_targets(self) -> bool:
        """Whether any id list is non-empty."""
        return bool(
            self.monitor_ids
            or self.server_ids
            or self.environment_ids
            or self.project_ids
            or self.client_ids
        )


class WindowSpec(Body, kw_only=True):
    """POST /api/maintenance, and a PATCH merged onto the current window."""

    name: Name
    description: Description | None = None
    enabled: bool = True
    kind: WindowKind
    starts_at: Instant | None = None
    ends_at: Instant | None = None
    cron: Cron | None = None
    timezone: TimeZone | None = None
    duration: Duration | None = None
    active_from: Instant | None = None
    active_until: Instant | None = None
    scope: WindowScope

    def __post_init__(self) -> None:
        check_spec(self)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def check_spec(spec: WindowSpec) -> None:
    """Kind fields present and foreign ones absent, intervals ordered, a non-empty scope."""
    required: tuple[str, ...]
    foreign: tuple[str, ...]
    if spec.kind == "one-off":
        required, foreign = ONE_OFF_FIELDS, RECURRING_FIELDS
    else:
        required, foreign = ("cron", "duration"), ONE_OFF_FIELDS
        if spec.timezone is None:
            spec.timezone = "UTC"
    for name in required:
        if getattr(spec, name) is None:
            raise FieldError(f"$.{_camel(name)}", f"required for kind {spec.kind}")
    for name in foreign:
        if getattr(spec, name) is not None:
            raise FieldError(f"$.{_camel(name)}", f"not used by kind {spec.kind}")
    for name in INSTANT_FIELDS:
        value = getattr(spec, name)
        if value is not None and (problem := check_instant(value)):
            raise FieldError(f"$.{_camel(name)}", problem)
    if spec.starts_at and spec.ends_at and spec.ends_at <= spec.starts_at:
        raise FieldError("$.endsAt", "must be after startsAt")
    if spec.active_from and spec.active_until and spec.active_until <= spec.active_from:
        raise FieldError("$.activeUntil", "must be after activeFrom")
    if spec.cron is not None:
        spec.cron = " ".join(spec.cron.split())
        if problem := check_cron(spec.cron):
            raise FieldError("$.cron", problem)
    if spec.timezone is not None and (problem := check_timezone(spec.timezone)):
        raise FieldError("$.timezone", problem)
    if spec.scope.all and spec.scope.has_targets():
        raise FieldError("$.scope.all", "all covers every monitor; leave the id lists empty")
    if not spec.scope.all and not spec.scope.has_targets():
        raise FieldError(
            "$.scope",
            "name at least one monitor, server, environment, project or client id, or set all",
        )


class WindowPatch(Body, kw_only=True):
    """PATCH /api/maintenance/{id}: fields sent replace the current ones (scope as a whole)."""

    name: Name | UnsetType = UNSET
    description: Description | UnsetType | None = UNSET
    enabled: bool | UnsetType = UNSET
    kind: WindowKind | UnsetType = UNSET
    starts_at: Instant | UnsetType | None = UNSET
    ends_at: Instant | UnsetType | None = UNSET
    cron: Cron | UnsetType | None = UNSET
    timezone: TimeZone | UnsetType | None = UNSET
    duration: Duration | UnsetType | None = UNSET
    active_from: Instant | UnsetType | None = UNSET
    active_until: Instant | UnsetType | None = UNSET
    scope: WindowScope | UnsetType = UNSET


class Window(Wire, kw_only=True):
    """A stored window; timestamps are ISO 8601 UTC, ``duration`` is seconds."""

    id: str
    name: str
    description: str | None = None
    enabled: bool
    kind: WindowKind
    starts_at: str | None = None
    ends_at: str | None = None
    cron: str | None = None
    timezone: str | None = None
    duration: int | None = None
    active_from: str | None = None
    active_until: str | None = None
    scope: WindowScope
    # "config": declared in the config file's [[maintenance]]; the API refuses to change it.
    managed_by: Literal["api", "config"] = "api"
    created_at: str
    updated_at: str


_SPEC_FIELDS = tuple(f.encode_name for f in msgspec.structs.fields(WindowSpec))


def spec_body(window: Window) -> dict[str, Any]:
    """The wire form of what a user set on window (a WindowSpec's fields)."""
    return {k: v for k, v in msgspec.to_builtins(window).items() if k in _SPEC_FIELDS}


def merge_patch(current: Window, patch: WindowPatch) -> dict[str, Any]:
    """The wire form of current with patch applied, to validate as a WindowSpec.

    Switching kind drops the old kind's fields the patch does not set, so a client need not
    null them one by one.
    """
    base = spec_body(current)
    changes: dict[str, Any] = msgspec.to_builtins(patch)
    if changes.get("kind", current.kind) != current.kind:
        old = ONE_OFF_FIELDS if current.kind == "one-off" else RECURRING_FIELDS
        for name in old:
            base.pop(_camel(name), None)
    return base | changes


_encode = msgspec.json.Encoder().encode
_decode_scope = msgspec.json.Decoder(WindowScope).decode
_COLS = (
    "id, name, description, enabled, kind, starts_at, ends_at, cron, timezone, duration, "
    "active_from, active_until, scope, created_at, updated_at, managed_by"
)


def _window(row: Any) -> Window:
    return Window(
        id=row[0],
        name=row[1],
        description=row[2],
        enabled=bool(row[3]),
        kind=row[4],
        starts_at=row[5],
        ends_at=row[6],
        cron=row[7],
        timezone=row[8],
        duration=row[9],
        active_from=row[10],
        active_until=row[11],
        scope=_decode_scope(row[12]),
        created_at=row[13],
        updated_at=row[14],
        managed_by=row[15],
    )


def _opt(dt: datetime | None) -> str | None:
    return iso(dt) if dt is not None else None


def _values(spec: WindowSpec) -> tuple[Any, ...]:
    """Column values after id, in _COLS order, up to scope."""
    return (
        spec.name,
        spec.description,
        int(spec.enabled),
        spec.kind,
        _opt(spec.starts_at),
        _opt(spec.ends_at),
        spec.cron,
        spec.timezone,
        spec.duration,
        _opt(spec.active_from),
        _opt(spec.active_until),
        _encode(spec.scope).decode(),
    )


class MaintenanceStore:
    """CRUD on the maintenance_windows table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def all(self) -> list[Window]:
        """Every window, by name; a row that does not decode is skipped with a warning, so
        one damaged row cannot keep the others (or the daemon) from loading."""
        async with (
            self.db.read() as conn,
            conn.execute(f"SELECT {_COLS} FROM maintenance_windows ORDER BY name, id") as cur,
        ):
            rows = await cur.fetchall()
        windows = []
        for row in rows:
            try:
                windows.append(_window(row))
            except (msgspec.DecodeError, ValueError, TypeError) as exc:
                log.warning("maintenance window %s is unreadable and is ignored: %s", row[0], exc)
        return windows

    async def _get(self, conn: Connection, ident: str) -> Window:
        sql = f"SELECT {_COLS} FROM maintenance_windows WHERE id = ?"
        async with conn.execute(sql, (ident,)) as cur:
            row = await cur.fetchone()
        if row is None:
            raise not_found("maintenance window", ident)
        return _window(row)

    async def insert(self, spec: WindowSpec, managed_by: str = "api") -> Window:
        """Store a new window (managed_by "config": one of the file's [[maintenance]])."""
        now = now_iso()
        async with self.db.write() as conn:
            ident = str(uuid.uuid4())
            await conn.execute(
                f"INSERT INTO maintenance_windows ({_COLS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (ident, *_values(spec), now, now, managed_by),
            )
            note_created(ident)
            return await self._get(conn, ident)

    async def replace(self, ident: str, spec: WindowSpec, managed_by: str | None = None) -> Window:
        """Overwrite a window's fields (and who manages it, when given) or 404."""
        async with self.db.write() as conn:
            cur = await conn.execute(
                "UPDATE maintenance_windows SET name = ?, description = ?, enabled = ?, kind = ?, "
                "starts_at = ?, ends_at = ?, cron = ?, timezone = ?, duration = ?, "
                "active_from = ?, active_until = ?, scope = ?, updated_at = ?, "
                "managed_by = COALESCE(?, managed_by) WHERE id = ?",
                (*_values(spec), now_iso(), managed_by, ident),
            )
            if cur.rowcount == 0:
                raise not_found("maintenance window", ident)
            return await self._get(conn, ident)

    async def delete(self, ident: str) -> None:
        """Remove a window or 404."""
        async with self.db.write() as conn:
            cur = await conn.execute("DELETE FROM maintenance_windows WHERE id = ?", (ident,))
            if cur.rowcount == 0:
                raise not_found("maintenance window", ident)
