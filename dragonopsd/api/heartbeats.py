"""GET /api/monitors/{id}/heartbeats: the newest raw checks of a monitor (the heartbeat bar)."""

from __future__ import annotations

import uuid

from aiohttp import web

from ..keys import HISTORY_QUERY, MONITORS
from ..model import Wire
from ..monitor import STATUS_CODES
from ..problem import invalid, not_found
from .http import json_response
from .route import Param, Route

STATUS_NAMES = {code: name for name, code in STATUS_CODES.items()}
MAX_LIMIT = 500


class Beat(Wire, kw_only=True):
    """One check as history keeps it (message only on checks that were not up)."""

    at: float
    status: str
    latency_ms: float | None
    message: str | None


class Heartbeats(Wire, kw_only=True):
    """GET /api/monitors/{id}/heartbeats: newest first."""

    monitor_id: str
    items: list[Beat]


async def heartbeats(request: web.Request) -> web.Response:
    """The newest raw heartbeats (kept [history] raw_hours), newest first."""
    raw = request.match_info["id"]
    try:
        ident = str(uuid.UUID(raw))
    except ValueError:
        raise not_found("monitor", raw) from None
    for name in request.query:
        if name != "limit":
            raise invalid(name, "unknown query parameter (allowed: limit)")
    try:
        limit = int(request.query.get("limit", "50"))
    except ValueError:
        raise invalid("limit", "expected an integer") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise invalid("limit", f"must be between 1 and {MAX_LIMIT}")
    row = await request.app[MONITORS].store.get(ident)
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
    """/api/monitors/{id}/heartbeats."""
    return [
        Route(
            "GET",
            "/api/monitors/{id}/heartbeats",
            heartbeats,
            "Newest raw heartbeats of a monitor",
            "Monitors",
            "viewer",
            response=Heartbeats,
            params=(
                Param("id", "The monitor's UUID", {"type": "string", "format": "uuid"}, "path"),
                Param("limit", "How many, 1 to 500 (default 50)", {"type": "integer"}),
            ),
            errors=(404, 422),
        ),
    ]
