"""A monitor's heartbeat history: raw checks (the heartbeat bar), series per step, uptime."""

from __future__ import annotations

import time

from aiohttp import web

from ..appkeys import HISTORY_QUERY, MONITORS
from ..model.inventory import Wire
from ..model.monitor import STATUS_CODES
from ..problem import invalid
from ..store.history_query import Point, UptimeWindow
from .codec import duration, id_param, iso_time, json_response, page_limit, path_uuid, query_time
from .route import Param, Route
from .scoped import monitor_row

STATUS_NAMES = {code: name for name, code in STATUS_CODES.items()}


class Beat(Wire, kw_only=True):
    """One check as history keeps it (message only on checks that were not up)."""

    at: float
    status: str
    latency_ms: float | None
    message: str | None


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


class Heartbeats(Wire, kw_only=True):
    """GET /api/monitors/{id}/heartbeats: newest first."""

    monitor_id: str
    items: list[Beat]


async def history(request: web.Request) -> web.Response:
    """Heartbeat history aggregated per step (from raw rows or rollups)."""
    row = await monitor_row(request, path_uuid(request, "monitor"))
    q = request.query
    now = time.time()
    until = query_time(q.get("until"), "until", now)
    since = query_time(q.get("since"), "since", until - 86_400)
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
    row = await monitor_row(request, path_uuid(request, "monitor"))
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
        since=iso_time(time.time() - max(seconds)),
        before=None,
        limit=10_000,
    )
    counts: dict[str, int] = {}
    mttr: dict[str, float | None] = {}
    for name, span in zip(names, seconds, strict=True):
        start = iso_time(time.time() - span)
        inside = [i for i in incidents if (i.closed_at or "9999") >= start]
        closed = [i.duration_seconds for i in inside if i.duration_seconds is not None]
        counts[name] = len(inside)
        mttr[name] = sum(closed) / len(closed) if closed else None
    return json_response(
        Uptime(monitor_id=row.monitor.id, windows=windows, incidents=counts, mttr_seconds=mttr)
    )


async def heartbeats(request: web.Request) -> web.Response:
    """The newest raw heartbeats (kept [history] raw_hours), newest first."""
    ident = path_uuid(request, "monitor")
    limit = page_limit(request.query, 50)
    row = await monitor_row(request, ident)
    beats = await request.app[HISTORY_QUERY].recent(row.seq, limit)
    items = [
        Beat(
            at=b.at,
            status=STATUS_NAMES.get(b.status, "pending"),
            latency_ms=b.latency_ms,
            message=b.message,
        )
        for b in beats
    ]
    return json_response(Heartbeats(monitor_id=row.monitor.id, items=items))


def routes() -> list[Route]:
    """/api/monitors/{id}/heartbeats, /history and /uptime."""
    mid = id_param("monitor")
    when = "Unix seconds, ISO 8601, or relative to now (-24h, -7d)"
    series = (
        Param("since", f"Start ({when}); default: a day before until", {"type": "string"}),
        Param("until", f"End ({when}); default: now", {"type": "string"}),
        Param("step", "Bucket size like 5m or 1h; default: about 200 points", {"type": "string"}),
    )
    windows = Param("windows", "Comma-separated durations (default 24h,7d,30d)", {"type": "string"})
    return [
        Route(
            "GET",
            "/api/monitors/{id}/history",
            history,
            "Heartbeat history",
            "Monitors",
            "viewer",
            response=History,
            params=(mid, *series),
            errors=(404, 422),
            scope="filtered",
        ),
        Route(
            "GET",
            "/api/monitors/{id}/uptime",
            uptime,
            "Uptime and latency percentiles",
            "Monitors",
            "viewer",
            response=Uptime,
            params=(mid, windows),
            errors=(404, 422),
            scope="filtered",
        ),
        Route(
            "GET",
            "/api/monitors/{id}/heartbeats",
            heartbeats,
            "Newest raw heartbeats of a monitor",
            "Monitors",
            "viewer",
            response=Heartbeats,
            params=(
                mid,
                Param("limit", "How many, 1 to 500 (default 50)", {"type": "integer"}),
            ),
            errors=(404, 422),
            scope="filtered",
        ),
    ]
