"""/api/incidents: automatic (monitor) and manual incidents, newest first; operators open
manual ones, post updates to any incident, and acknowledge open ones."""

from __future__ import annotations

from aiohttp import web

from ..appkeys import INCIDENTS, MONITORS, PRINCIPAL
from ..model.inventory import Wire
from ..problem import invalid, not_found
from ..store.incident_notes import IncidentSpec, ManualIncident, MonitorIncident, UpdateSpec
from .codec import iso_time, json_response, page_limit, page_params, query_time, read_json
from .route import Param, Route
from .targets import Target, outside, within

AnyIncident = MonitorIncident | ManualIncident


class IncidentPage(Wire, kw_only=True):
    """GET /api/incidents: ``kind`` tells a monitor's incident from a manual one."""

    items: list[AnyIncident]
    next_cursor: str | None = None


async def incidents(request: web.Request) -> web.Response:
    """Open and closed incidents of both kinds, newest first (one keyset over both)."""
    q = request.query
    state = q.get("status")
    if state not in (None, "open", "closed"):
        raise invalid("status", "open or closed")
    kind = q.get("kind")
    if kind not in (None, "monitor", "manual"):
        raise invalid("kind", "monitor or manual")
    limit = page_limit(q, 50)
    since = iso_time(query_time(q["since"], "since", 0)) if "since" in q else None
    before = None
    if "cursor" in q:
        at, _, ident = q["cursor"].partition("|")
        if not at or not ident:
            raise invalid("cursor", "malformed cursor")
        before = (at, ident)
    monitor_id = q.get("monitorId")
    desk = request.app[INCIDENTS]
    where = await within(request)  # a scoped caller's: filtered in the queries, pages stay right
    items: list[AnyIncident] = []
    if kind != "manual":
        rows = await request.app[MONITORS].store.incidents(
            monitor_id=monitor_id,
            state=state,
            since=since,
            before=before,
            limit=limit + 1,
            within=where,
        )
        items += await desk.notes.annotate(rows)
    if kind != "monitor":
        items += await desk.notes.manual_incidents(
            state=state,
            since=since,
            before=before,
            limit=limit + 1,
            target=("monitor", monitor_id) if monitor_id else None,
            within=where,
        )
    # Each side is sorted and cut at limit + 1, so the merged first limit + 1 are exact.
    items.sort(key=lambda i: (i.opened_at, i.id), reverse=True)
    cursor = f"{items[limit - 1].opened_at}|{items[limit - 1].id}" if len(items) > limit else None
    return json_response(IncidentPage(items=items[:limit], next_cursor=cursor))


def _targets(found: AnyIncident) -> list[Target]:
    if isinstance(found, ManualIncident):
        return [(t.kind, t.id) for t in found.targets]
    return [("monitor", found.monitor_id)]


async def _find(request: web.Request) -> AnyIncident | None:
    """The incident of the path (404 unknown); for a scoped caller also 404 when anything it
    names is out of reach. None for an unscoped caller, who is not looked up first."""
    where = await within(request)
    if where is None:
        return None
    ident = request.match_info["id"]
    found = await request.app[INCIDENTS].find(ident)
    if await outside(request, where, _targets(found)) is not None:
        raise not_found("incident", ident[:64])  # as find() answers an unknown id
    return found


async def incident(request: web.Request) -> web.Response:
    """One incident, open or closed, with its updates."""
    found = await _find(request)
    if found is None:
        found = await request.app[INCIDENTS].find(request.match_info["id"])
    return json_response(found)


async def open_incident(request: web.Request) -> web.Response:
    """Open a manual incident; a scoped caller's targets must all be in its reach (one that
    is not gets the answer of one that does not exist)."""
    spec = await read_json(request, IncidentSpec)
    where = await within(request)
    if where is not None:
        n = await outside(request, where, [(t.kind, t.id) for t in spec.targets])
        if n is not None:
            t = spec.targets[n]
            raise invalid(f"$.targets[{n}].id", f"{t.kind} {t.id[:64]} does not exist")
    found = await request.app[INCIDENTS].open(spec, request[PRINCIPAL].name)
    return json_response(found, status=201, headers={"Location": f"/api/incidents/{found.id}"})


async def add_update(request: web.Request) -> web.Response:
    """Add an update to any incident; a manual one takes its state."""
    spec = await read_json(request, UpdateSpec)
    await _find(request)
    desk = request.app[INCIDENTS]
    found = await desk.update(request.match_info["id"], spec, request[PRINCIPAL].name)
    return json_response(found, status=201)


async def acknowledge(request: web.Request) -> web.Response:
    """Take an open incident on: who and when; its repeat notifications stop."""
    await _find(request)
    desk = request.app[INCIDENTS]
    return json_response(await desk.acknowledge(request.match_info["id"], request[PRINCIPAL].name))


def routes() -> list[Route]:
    """/api/incidents, /api/incidents/{id}, its updates and acknowledgement."""
    ident = Param("id", "The incident's id", {"type": "string"}, "path", True)
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
                Param(
                    "kind",
                    "Only a monitor's (automatic) or only manual ones",
                    {"enum": ["monitor", "manual"]},
                ),
                Param(
                    "monitorId",
                    "Only this monitor's (and manual ones naming it)",
                    {"type": "string"},
                ),
                Param(
                    "since",
                    "Only those open at or after this time: Unix seconds, ISO 8601, or "
                    "relative to now (-24h, -7d)",
                    {"type": "string"},
                ),
                *page_params("50"),
            ),
            errors=(422,),
            scope="filtered",
        ),
        Route(
            "POST",
            "/api/incidents",
            open_incident,
            "Open a manual incident",
            "Incidents",
            "operator",
            body=IncidentSpec,
            response=ManualIncident,
            status=201,
            errors=(400, 413, 415, 422),
            scope="filtered",
        ),
        Route(
            "GET",
            "/api/incidents/{id}",
            incident,
            "One incident",
            "Incidents",
            "viewer",
            response=AnyIncident,
            params=(ident,),
            errors=(404,),
            scope="filtered",
        ),
        Route(
            "POST",
            "/api/incidents/{id}/updates",
            add_update,
            "Add an update to an incident",
            "Incidents",
            "operator",
            body=UpdateSpec,
            response=AnyIncident,
            status=201,
            params=(ident,),
            errors=(400, 404, 413, 415, 422),
            scope="filtered",
        ),
        Route(
            "POST",
            "/api/incidents/{id}/acknowledge",
            acknowledge,
            "Acknowledge an open incident (its repeat notifications stop)",
            "Incidents",
            "operator",
            response=AnyIncident,
            params=(ident,),
            errors=(404, 409),
            scope="filtered",
        ),
    ]
