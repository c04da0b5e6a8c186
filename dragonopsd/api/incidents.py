"""GET /api/incidents: open and closed incidents, newest first."""

from __future__ import annotations

from aiohttp import web

from ..keys import MONITORS
from ..model import Wire
from ..problem import invalid
from ..store.monitors import Incident
from .http import json_response
from .route import Route


class IncidentPage(Wire, kw_only=True):
    """GET /api/incidents."""

    items: list[Incident]
    next_cursor: str | None = None


async def incidents(request: web.Request) -> web.Response:
    """Open and closed incidents, newest first."""
    q = request.query
    for name in q:
        if name not in ("status", "monitorId", "limit", "cursor"):
            raise invalid(name, "unknown query parameter")
    state = q.get("status")
    if state not in (None, "open", "closed"):
        raise invalid("status", "open or closed")
    try:
        limit = int(q.get("limit", "50"))
    except ValueError:
        raise invalid("limit", "expected an integer") from None
    if not 1 <= limit <= 500:
        raise invalid("limit", "must be between 1 and 500")
    before = None
    if "cursor" in q:
        at, _, ident = q["cursor"].partition("|")
        if not at or not ident:
            raise invalid("cursor", "malformed cursor")
        before = (at, ident)
    items = await request.app[MONITORS].store.incidents(
        monitor_id=q.get("monitorId"), state=state, since=None, before=before, limit=limit + 1
    )
    cursor = f"{items[limit - 1].opened_at}|{items[limit - 1].id}" if len(items) > limit else None
    return json_response(IncidentPage(items=items[:limit], next_cursor=cursor))


def routes() -> list[Route]:
    """/api/incidents."""
    return [
        Route(
            "GET",
            "/api/incidents",
            incidents,
            "Incidents, newest first",
            "Incidents",
            "viewer",
            response=IncidentPage,
            errors=(422,),
        ),
    ]
