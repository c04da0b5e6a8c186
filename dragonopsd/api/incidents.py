"""GET /api/incidents (open and closed, newest first) and GET /api/incidents/{id}."""

from __future__ import annotations

from aiohttp import web

from ..appkeys import MONITORS
from ..model.inventory import Wire
from ..problem import invalid, not_found
from ..store.monitors import Incident
from .codec import iso_time, json_response, page_limit, page_params, query_time
from .route import Param, Route


class IncidentPage(Wire, kw_only=True):
    """GET /api/incidents."""

    items: list[Incident]
    next_cursor: str | None = None


async def incidents(request: web.Request) -> web.Response:
    """Open and closed incidents, newest first."""
    q = request.query
    state = q.get("status")
    if state not in (None, "open", "closed"):
        raise invalid("status", "open or closed")
    limit = page_limit(q, 50)
    since = iso_time(query_time(q["since"], "since", 0)) if "since" in q else None
    before = None
    if "cursor" in q:
        at, _, ident = q["cursor"].partition("|")
        if not at or not ident:
            raise invalid("cursor", "malformed cursor")
        before = (at, ident)
    items = await request.app[MONITORS].store.incidents(
        monitor_id=q.get("monitorId"), state=state, since=since, before=before, limit=limit + 1
    )
    cursor = f"{items[limit - 1].opened_at}|{items[limit - 1].id}" if len(items) > limit else None
    return json_response(IncidentPage(items=items[:limit], next_cursor=cursor))


async def incident(request: web.Request) -> web.Response:
    """One incident, open or closed."""
    ident = request.match_info["id"]
    found = await request.app[MONITORS].store.incident(ident)
    if found is None:
        raise not_found("incident", ident[:64])
    return json_response(found)


def routes() -> list[Route]:
    """/api/incidents and /api/incidents/{id}."""
    return [
        Route(
            "GET",
            "/api/incidents",
            incidents,
            "Incidents, newest first",
            "Incidents",
            "viewer",
            response=IncidentPage,
            params=(
                Param("status", "Only open or only closed ones", {"enum": ["open", "closed"]}),
                Param("monitorId", "Only this monitor's", {"type": "string"}),
                Param(
                    "since",
                    "Only those open at or after this time: Unix seconds, ISO 8601, or "
                    "relative to now (-24h, -7d)",
                    {"type": "string"},
                ),
                *page_params("50"),
            ),
            errors=(422,),
        ),
        Route(
            "GET",
            "/api/incidents/{id}",
            incident,
            "One incident",
            "Incidents",
            "viewer",
            response=Incident,
            params=(Param("id", "The incident's id", {"type": "string"}, "path", True),),
            errors=(404,),
        ),
    ]
