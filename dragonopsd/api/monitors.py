"""Monitor routes: CRUD, run-now, history, uptime, the latest-state board, incidents, push."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from datetime import datetime

from aiohttp import web

from ..keys import HISTORY_QUERY, MONITORS, PRINCIPAL
from ..model import Wire
from ..monitor import Monitor, MonitorSpec, shown_to
from ..monitoring.report import CheckReport, EngineStats, MonitorState
from ..monitoring.service import decode_spec
from ..problem import Problem, invalid, not_found
from ..store.history_query import Point, UptimeWindow
from ..store.monitors import MonitorRow
from .http import (
    IF_MATCH_DOC,
    IF_NONE_MATCH_DOC,
    cacheable_response,
    if_match,
    json_response,
    read_json,
)
from .route import Param, Route

_DURATION = re.compile(r"^(\d{1,6})(s|m|h|d)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


class MonitorPage(Wire, kw_only=True):
    """GET /api/monitors."""

    items: list[Monitor]
    next_cursor: str | None = None


class Board(Wire, kw_only=True):
    """GET /api/monitoring: every monitor's latest state and the counts per status."""

    items: list[MonitorState]
    counts: dict[str, int]


class History(Wire, kw_only=True):
    """GET /api/monitors/{id}/history."""

    monitor_id: str
    step: float
    points: list[Point]


class Uptime(Wire, kw_only=True):
    """GET /api/monitors/{id}/uptime."""

    monitor_id: str
    windows: list[UptimeWindow]
    incidents: dict[str, int]
    mttr_seconds: dict[str, float | None]


class PushAck(Wire, kw_only=True):
    """Answer to a push call."""

    ok: bool


def duration(text: str, name: str) -> float:
    """``90s``, ``15m``, ``24h``, ``30d`` -> seconds; 422 naming the parameter otherwise."""
    m = _DURATION.match(text.strip())
    if not m:
        raise invalid(name, f"expected a duration like 24h or 30d, got {text[:20]!r}")
    return int(m[1]) * _UNITS[m[2]]


def _ident(request: web.Request) -> str:
    raw = request.match_info["id"]
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise not_found("monitor", raw) from None


async def list_monitors(request: web.Request) -> web.Response:
    """Monitors, filtered by kind, status, tag, serverId, environmentId."""
    q = request.query
    for name in q:
        if name not in ("kind", "status", "tag", "serverId", "environmentId", "q"):
            raise invalid(name, "unknown query parameter")
    service = request.app[MONITORS]
    items = [service.view(r) for r in await service.store.all()]
    text = q.get("q", "").lower()
    items = [
        m
        for m in items
        if (not q.get("kind") or m.kind == q["kind"])
        and (not q.get("status") or m.status == q["status"])
        and (not q.get("tag") or q["tag"] in m.tags)
        and (not q.get("serverId") or m.server_id == q["serverId"])
        and (not q.get("environmentId") or m.environment_id == q["environmentId"])
        and (not text or text in m.name.lower())
    ]
    role = request[PRINCIPAL].role
    return json_response(MonitorPage(items=[shown_to(role, m) for m in items]))


async def create_monitor(request: web.Request) -> web.Response:
    """Create and schedule a monitor."""
    raw = await read_json(request, dict)
    monitor = await request.app[MONITORS].create(decode_spec(raw))
    return json_response(
        monitor, status=201, etag=True, headers={"Location": f"/api/monitors/{monitor.id}"}
    )


async def get_monitor(request: web.Request) -> web.Response:
    """One monitor with its current status."""
    service = request.app[MONITORS]
    monitor = service.view(await service.store.get(_ident(request)))
    return cacheable_response(request, shown_to(request[PRINCIPAL].role, monitor))


def _precondition(request: web.Request) -> Callable[[MonitorRow], None] | None:
    service = request.app[MONITORS]
    return if_match(request, service.view)  # the ETag GET gave: the spec and its status


async def patch_monitor(request: web.Request) -> web.Response:
    """Merge-patch a monitor (null resets a field to its default)."""
    ident = _ident(request)
    patch = await read_json(request, dict)
    service = request.app[MONITORS]
    return json_response(await service.update(ident, patch, _precondition(request)), etag=True)


async def delete_monitor(request: web.Request) -> web.Response:
    """Delete a monitor and its history."""
    await request.app[MONITORS].delete(_ident(request), _precondition(request))
    return web.Response(status=204)


async def check_monitor(request: web.Request) -> web.Response:
    """Run the monitor's probe now and return the result (it is recorded like any check)."""
    ident = _ident(request)
    service = request.app[MONITORS]
    await service.store.get(ident)  # 404 for unknown ids
    report = await service.engine.check_now(ident)
    if report is None:
        raise Problem(409, "push monitors are checked by their push calls, not on demand")
    return json_response(report)


async def engine_stats(request: web.Request) -> web.Response:
    """Scheduler drift, checks in flight, history writer backlog."""
    return json_response(request.app[MONITORS].engine.stats())


async def monitoring(request: web.Request) -> web.Response:
    """Latest state of every monitor (the seed's GET /api/monitoring)."""
    engine = request.app[MONITORS].engine
    return json_response(Board(items=engine.states(), counts=engine.counts()))


async def history(request: web.Request) -> web.Response:
    """Heartbeat history aggregated per step (from raw rows or rollups)."""
    service = request.app[MONITORS]
    row = await service.store.get(_ident(request))
    q = request.query
    now = time.time()
    until = _timestamp(q.get("until"), "until", now)
    since = _timestamp(q.get("since"), "since", until - 86_400)
    if since >= until:
        raise invalid("since", "must be before until")
    step = duration(q["step"], "step") if "step" in q else max(60.0, (until - since) / 200)
    try:
        points = await request.app[HISTORY_QUERY].series(row.seq, since, until, step)
    except ValueError as exc:
        raise invalid("step", str(exc)) from None
    return json_response(History(monitor_id=row.monitor.id, step=step, points=points))


async def uptime(request: web.Request) -> web.Response:
    """Uptime %, p50/p95/p99, incident count and MTTR per window."""
    service = request.app[MONITORS]
    row = await service.store.get(_ident(request))
    names = [w.strip() for w in request.query.get("windows", "24h,7d,30d").split(",") if w.strip()]
    if not names or len(names) > 8:
        raise invalid("windows", "1 to 8 windows, e.g. 24h,7d,30d,365d")
    seconds = [duration(w, "windows") for w in names]
    if max(seconds) > 400 * 86_400:
        raise invalid("windows", "at most 400d")
    windows = await request.app[HISTORY_QUERY].uptime(row.seq, seconds)
    incidents = await service.store.incidents(
        monitor_id=row.monitor.id,
        state=None,
        since=_iso(time.time() - max(seconds)),
        before=None,
        limit=10_000,
    )
    counts: dict[str, int] = {}
    mttr: dict[str, float | None] = {}
    for name, span in zip(names, seconds, strict=True):
        start = _iso(time.time() - span)
        inside = [i for i in incidents if (i.closed_at or "9999") >= start]
        closed = [i.duration_seconds for i in inside if i.duration_seconds is not None]
        counts[name] = len(inside)
        mttr[name] = sum(closed) / len(closed) if closed else None
    return json_response(
        Uptime(monitor_id=row.monitor.id, windows=windows, incidents=counts, mttr_seconds=mttr)
    )


async def push(request: web.Request) -> web.Response:
    """Push (heartbeat) monitors call this; the token in the path is the credential."""
    q = request.query
    status = q.get("status", "up")
    if status not in ("up", "down"):
        raise invalid("status", "up or down")
    message = q.get("msg")
    if message is not None and len(message) > 500:
        raise invalid("msg", "at most 500 characters")
    ping = None
    if "ping" in q:
        try:
            ping = float(q["ping"])
        except ValueError:
            raise invalid("ping", "expected milliseconds as a number") from None
        if not 0 <= ping <= 3_600_000:
            raise invalid("ping", "between 0 and 3600000 ms")
    engine = request.app[MONITORS].engine
    if not await engine.push(request.match_info["token"][:200], status == "up", message, ping):
        raise Problem(404, "no push monitor has this token")
    return json_response(PushAck(ok=True))


def _timestamp(raw: str | None, name: str, default: float) -> float:
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise invalid(name, "expected Unix seconds or an ISO 8601 time") from None


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


def routes() -> list[Route]:
    """Everything under /api/monitors, plus /api/monitoring, /api/incidents, /api/push."""
    mid = Param("id", "The monitor's UUID", {"type": "string", "format": "uuid"}, "path", True)
    token = Param("token", "The push monitor's token", {"type": "string"}, "path", True)
    body_errors = (400, 404, 409, 413, 415, 422)
    if_match_param = Param("If-Match", IF_MATCH_DOC, {"type": "string"}, "header")
    return [
        Route(
            "GET",
            "/api/monitors",
            list_monitors,
            "List monitors",
            "Monitors",
            "viewer",
            response=MonitorPage,
            errors=(422,),
        ),
        Route(
            "POST",
            "/api/monitors",
            create_monitor,
            "Create a monitor",
            "Monitors",
            "operator",
            body=MonitorSpec,
            response=Monitor,
            status=201,
            errors=body_errors,
        ),
        Route(
            "GET",
            "/api/monitors/{id}",
            get_monitor,
            "Get a monitor",
            "Monitors",
            "viewer",
            response=Monitor,
            params=(mid, Param("If-None-Match", IF_NONE_MATCH_DOC, {"type": "string"}, "header")),
            errors=(404,),
        ),
        Route(
            "PATCH",
            "/api/monitors/{id}",
            patch_monitor,
            "Update a monitor (merge patch)",
            "Monitors",
            "operator",
            body=MonitorSpec,
            response=Monitor,
            params=(mid, if_match_param),
            errors=(*body_errors, 412),
        ),
        Route(
            "DELETE",
            "/api/monitors/{id}",
            delete_monitor,
            "Delete a monitor",
            "Monitors",
            "operator",
            status=204,
            params=(mid, if_match_param),
            errors=(404, 409, 412),
        ),
        Route(
            "POST",
            "/api/monitors/{id}/check",
            check_monitor,
            "Run a check now",
            "Monitors",
            "operator",
            response=CheckReport,
            params=(mid,),
            errors=(404, 409),
        ),
        Route(
            "GET",
            "/api/monitors/{id}/history",
            history,
            "Heartbeat history",
            "Monitors",
            "viewer",
            response=History,
            params=(mid,),
            errors=(404, 422),
        ),
        Route(
            "GET",
            "/api/monitors/{id}/uptime",
            uptime,
            "Uptime and latency percentiles",
            "Monitors",
            "viewer",
            response=Uptime,
            params=(mid,),
            errors=(404, 422),
        ),
        Route(
            "GET",
            "/api/monitoring",
            monitoring,
            "Latest state of every monitor",
            "Monitors",
            "viewer",
            response=Board,
        ),
        Route(
            "GET",
            "/api/stats/engine",
            engine_stats,
            "Probe engine figures",
            "Monitors",
            "viewer",
            response=EngineStats,
        ),
        Route(
            "GET",
            "/api/push/{token}",
            push,
            "Push a heartbeat",
            "Monitors",
            "public",
            response=PushAck,
            params=(token,),
            errors=(404, 422),
        ),
        Route(
            "POST",
            "/api/push/{token}",
            push,
            "Push a heartbeat",
            "Monitors",
            "public",
            response=PushAck,
            params=(token,),
            errors=(404, 422),
        ),
    ]
