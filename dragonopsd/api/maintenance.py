"""Maintenance window routes: everyone reads, operators write."""

from __future__ import annotations

import time
from datetime import datetime

from aiohttp import web

from ..appkeys import MAINTENANCE
from ..model.inventory import Wire
from ..monitoring.maintenance import OccurrenceList, WindowView
from ..problem import Problem, invalid
from ..store.maintenance import Window, WindowPatch, WindowSpec, check_instant, merge_patch
from .codec import (
    convert,
    id_param,
    json_response,
    no_repeats,
    page_limit,
    page_params,
    path_uuid,
    read_json,
)
from .route import Param, Route

DEFAULT_LIMIT = 50
MAX_COUNT = 100
DEFAULT_COUNT = 5
BASE = "/api/maintenance"


class WindowPage(Wire, kw_only=True):
    """A page of windows and the cursor of the next page (null on the last)."""

    items: list[WindowView]
    next_cursor: str | None


def _count(request: web.Request) -> int:
    try:
        value = int(request.query.get("count", DEFAULT_COUNT))
    except ValueError:
        raise invalid("count", "expected an integer") from None
    if not 1 <= value <= MAX_COUNT:
        raise invalid("count", f"must be between 1 and {MAX_COUNT}")
    return value


def _writable(window: Window) -> None:
    if window.managed_by == "config":
        raise Problem(
            409,
            f"maintenance window {window.id} is managed by the config file ([[maintenance]]); "
            "change it there",
        )


def _view(request: web.Request, window_id: str) -> web.Response:
    svc = request.app[MAINTENANCE]
    return json_response(svc.view(svc.get(window_id), time.time()))


async def list_windows(request: web.Request) -> web.Response:
    """Every window, by name, with whether it is in force now."""
    no_repeats(request)
    svc = request.app[MAINTENANCE]
    items, cursor = svc.page(
        page_limit(request.query, DEFAULT_LIMIT), request.query.get("cursor") or None
    )
    now = time.time()
    return json_response(WindowPage(items=[svc.view(w, now) for w in items], next_cursor=cursor))


async def create_window(request: web.Request) -> web.Response:
    """Create a window; it is honoured from this response on."""
    spec = await read_json(request, WindowSpec)
    window = await request.app[MAINTENANCE].create(spec)
    resp = _view(request, window.id)
    resp.set_status(201)
    resp.headers["Location"] = f"{BASE}/{window.id}"
    return resp


async def get_window(request: web.Request) -> web.Response:
    """One window."""
    ident = path_uuid(request, "maintenance window")
    return _view(request, ident)


async def patch_window(request: web.Request) -> web.Response:
    """Change some fields; the result is validated as a whole, like a create."""
    ident = path_uuid(request, "maintenance window")
    patch = await read_json(request, WindowPatch)
    svc = request.app[MAINTENANCE]
    current = svc.get(ident)
    _writable(current)
    spec = convert(merge_patch(current, patch), WindowSpec)
    await svc.replace(ident, spec)
    return _view(request, ident)


async def delete_window(request: web.Request) -> web.Response:
    """Remove a window."""
    ident = path_uuid(request, "maintenance window")
    _writable(request.app[MAINTENANCE].get(ident))
    await request.app[MAINTENANCE].delete(ident)
    return web.Response(status=204)


async def list_occurrences(request: web.Request) -> web.Response:
    """The next occurrences of a window's schedule, to check a cron and its time zone."""
    ident = path_uuid(request, "maintenance window")
    no_repeats(request)
    count = _count(request)
    after = time.time()
    if "from" in request.query:
        try:
            start = datetime.fromisoformat(request.query["from"])
        except ValueError:
            raise invalid("from", "expected an ISO 8601 time") from None
        if start.tzinfo is None:
            raise invalid("from", "needs a UTC offset or Z, e.g. 2027-03-28T00:00:00Z")
        if problem := check_instant(start):
            raise invalid("from", problem)
        after = start.timestamp()
    items = request.app[MAINTENANCE].occurrences(ident, after, count)
    return json_response(OccurrenceList(items=items))


def routes() -> list[Route]:
    """/api/maintenance."""
    ident = id_param("window")
    item = f"{BASE}/{{id}}"
    return [
        Route(
            "GET",
            BASE,
            list_windows,
            "List maintenance windows",
            "Maintenance",
            "viewer",
            response=WindowPage,
            params=(*page_params(DEFAULT_LIMIT),),
            errors=(422,),
        ),
        Route(
            "POST",
            BASE,
            create_window,
            "Create a maintenance window",
            "Maintenance",
            "operator",
            body=WindowSpec,
            response=WindowView,
            status=201,
            errors=(400, 413, 415, 422),
        ),
        Route(
            "GET",
            item,
            get_window,
            "Get a maintenance window",
            "Maintenance",
            "viewer",
            response=WindowView,
            params=(ident,),
            errors=(404, 422),
        ),
        Route(
            "PATCH",
            item,
            patch_window,
            "Change a maintenance window",
            "Maintenance",
            "operator",
            body=WindowPatch,
            response=WindowView,
            params=(ident,),
            errors=(400, 404, 409, 413, 415, 422),
        ),
        Route(
            "DELETE",
            item,
            delete_window,
            "Delete a maintenance window",
            "Maintenance",
            "operator",
            status=204,
            params=(ident,),
            errors=(404, 409, 422),
        ),
        Route(
            "GET",
            f"{item}/occurrences",
            list_occurrences,
            "Upcoming occurrences of a maintenance window",
            "Maintenance",
            "viewer",
            response=OccurrenceList,
            params=(
                ident,
                Param(
                    "count",
                    "How many occurrences",
                    {"type": "integer", "minimum": 1, "maximum": MAX_COUNT, "default": 5},
                ),
                Param(
                    "from",
                    "ISO 8601 time to start from (default now); the occurrence covering it "
                    "comes first. From 1970-01-01T00:00:00Z and before 9000-01-01T00:00:00Z",
                    {"type": "string", "format": "date-time"},
                ),
            ),
            errors=(404, 422),
        ),
    ]
