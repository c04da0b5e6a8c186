"""Maintenance window routes: everyone reads, operators write."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from aiohttp import web

from ..appkeys import MAINTENANCE
from ..model.inventory import Wire
from ..model.schedule import check_timezone
from ..monitoring.window_schedule import OccurrenceList, WindowView, preview
from ..problem import Problem, invalid
from ..store.maintenance import (
    MAX_DURATION,
    Window,
    WindowPatch,
    WindowSpec,
    check_cron,
    check_instant,
    merge_patch,
)
from .codec import (
    IF_MATCH,
    IF_NONE_MATCH,
    cacheable_response,
    convert,
    id_param,
    if_match,
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
    """The window as GET shows it, with its ETag (a form sends it back in If-Match)."""
    svc = request.app[MAINTENANCE]
    return cacheable_response(request, svc.view(svc.get(window_id), time.time()))


def _precondition(request: web.Request) -> Callable[[Window], None] | None:
    svc = request.app[MAINTENANCE]
    return if_match(request, lambda w: svc.view(w, time.time()))


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
    await svc.replace(ident, spec, _precondition(request))
    return _view(request, ident)


async def delete_window(request: web.Request) -> web.Response:
    """Remove a window."""
    ident = path_uuid(request, "maintenance window")
    _writable(request.app[MAINTENANCE].get(ident))
    await request.app[MAINTENANCE].delete(ident, _precondition(request))
    return web.Response(status=204)


async def list_occurrences(request: web.Request) -> web.Response:
    """The next occurrences of a window's schedule, to check a cron and its time zone."""
    ident = path_uuid(request, "maintenance window")
    no_repeats(request)
    count = _count(request)
    items = request.app[MAINTENANCE].occurrences(ident, _from(request), count)
    return json_response(OccurrenceList(items=items))


def _from(request: web.Request) -> float:
    """Unix time of the ``from`` parameter, or now."""
    if "from" not in request.query:
        return time.time()
    try:
        start = datetime.fromisoformat(request.query["from"])
    except ValueError:
        raise invalid("from", "expected an ISO 8601 time") from None
    if start.tzinfo is None:
        raise invalid("from", "needs a UTC offset or Z, e.g. 2027-03-28T00:00:00Z")
    if problem := check_instant(start):
        raise invalid("from", problem)
    return start.timestamp()


def _duration(request: web.Request) -> int:
    try:
        value = int(request.query.get("duration", 0))
    except ValueError:
        raise invalid("duration", "expected an integer number of seconds") from None
    if not 0 <= value <= MAX_DURATION:
        raise invalid("duration", f"must be between 0 and {MAX_DURATION}")
    return value


async def preview_schedule(request: web.Request) -> web.Response:
    """The next occurrences of a cron in a time zone, before any window is saved: the
    dashboard's cron helper asks here rather than reimplementing cron in the browser."""
    no_repeats(request)
    cron = " ".join(request.query.get("cron", "").split())
    if not cron:
        raise invalid("cron", "required, e.g. 0 2 * * sun")
    if len(cron) > 200:
        raise invalid("cron", "at most 200 characters")
    if problem := check_cron(cron):
        raise invalid("cron", problem)
    zone = request.query.get("timezone") or "UTC"
    if len(zone) > 64:
        raise invalid("timezone", "at most 64 characters")
    if problem := check_timezone(zone):
        raise invalid("timezone", problem)
    count, duration, after = _count(request), _duration(request), _from(request)
    return json_response(OccurrenceList(items=preview(cron, zone, duration, after, count)))


def routes() -> list[Route]:
    """/api/maintenance."""
    ident = id_param("window")
    item = f"{BASE}/{{id}}"
    counted = Param(
        "count",
        "How many occurrences",
        {"type": "integer", "minimum": 1, "maximum": MAX_COUNT, "default": 5},
    )
    since = Param(
        "from",
        "ISO 8601 time to start from (default now); the occurrence covering it "
        "comes first. From 1970-01-01T00:00:00Z and before 9000-01-01T00:00:00Z",
        {"type": "string", "format": "date-time"},
    )
    return [
        # Before {id}: "preview" would otherwise be read as a window id (and refused).
        Route(
            "GET",
            f"{BASE}/preview",
            preview_schedule,
            "Preview a cron schedule's next occurrences",
            "Maintenance",
            "viewer",
            response=OccurrenceList,
            params=(
                Param(
                    "cron",
                    "5-field cron (minute hour day-of-month month day-of-week) or an @alias",
                    {"type": "string", "maxLength": 200},
                    required=True,
                ),
                Param(
                    "timezone",
                    "IANA time zone the cron reads its wall clock in (default UTC)",
                    {"type": "string", "maxLength": 64, "default": "UTC"},
                ),
                Param(
                    "duration",
                    "Seconds each occurrence lasts (default 0: ends as it starts)",
                    {"type": "integer", "minimum": 0, "maximum": MAX_DURATION, "default": 0},
                ),
                counted,
                since,
            ),
            errors=(422,),
        ),
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
            params=(ident, IF_NONE_MATCH),
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
            params=(ident, IF_MATCH),
            errors=(400, 404, 409, 412, 413, 415, 422),
        ),
        Route(
            "DELETE",
            item,
            delete_window,
            "Delete a maintenance window",
            "Maintenance",
            "operator",
            status=204,
            params=(ident, IF_MATCH),
            errors=(404, 409, 412, 422),
        ),
        Route(
            "GET",
            f"{item}/occurrences",
            list_occurrences,
            "Upcoming occurrences of a maintenance window",
            "Maintenance",
            "viewer",
            response=OccurrenceList,
            params=(ident, counted, since),
            errors=(404, 422),
        ),
    ]
