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
from ..problem import Problem, invalid, not_found
from ..store.maintenance import (
    MAX_DURATION,
    Window,
    WindowPatch,
    WindowScope,
    WindowSpec,
    check_cron,
    check_instant,
    merge_patch,
)
from ..store.placement import Within
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
from .targets import Places, Target, first_outside, global_refused, outside, places, within

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


# What each id list of a window's scope names, and its field on the wire.
_LISTS = (
    ("monitor", "monitor_ids", "monitorIds"),
    ("server", "server_ids", "serverIds"),
    ("environment", "environment_ids", "environmentIds"),
    ("project", "project_ids", "projectIds"),
    ("client", "client_ids", "clientIds"),
)


def _named(scope: WindowScope) -> tuple[list[Target], list[str]]:
    """The targets a window names (none when it covers all monitors) and their fields."""
    targets: list[Target] = []
    fields: list[str] = []
    if scope.all:
        return targets, fields
    for kind, attr, wire in _LISTS:
        for i, ident in enumerate(getattr(scope, attr)):
            targets.append((kind, str(ident)))
            fields.append(f"$.scope.{wire}[{i}]")
    return targets, fields


def _reached(where: Within, window: Window, placed: Places) -> bool:
    return first_outside(where, _named(window.scope)[0], placed) is None


async def _window(request: web.Request, ident: str) -> Window:
    """The window of the path; 404 when it does not exist, or (for a scoped caller) when
    anything it covers is out of reach, a window on all monitors included."""
    window = request.app[MAINTENANCE].get(ident)
    where = await within(request)
    if where is not None and await outside(request, where, _named(window.scope)[0]) is not None:
        raise not_found("maintenance window", ident)  # as get() answers an unknown id
    return window


async def _check_scope(request: web.Request, spec: WindowSpec) -> None:
    """A scoped caller's window covers only what it reaches: an id out of reach (or that
    does not exist) is a 422 naming it, all monitors a 403."""
    where = await within(request)
    if where is None:
        return
    if spec.scope.all:
        raise global_refused(request, "a window on all monitors")
    targets, fields = _named(spec.scope)
    n = await outside(request, where, targets)
    if n is not None:
        kind, ident = targets[n]
        raise invalid(fields[n], f"{kind} {ident} does not exist")


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
    limit, after = page_limit(request.query, DEFAULT_LIMIT), request.query.get("cursor") or None
    where = await within(request)
    if where is None:
        items, cursor = svc.page(limit, after)
    else:
        windows = svc.all()
        placed = await places(request, (t for w in windows for t in _named(w.scope)[0]))
        items, cursor = svc.page(limit, after, lambda w: _reached(where, w, placed))
    now = time.time()
    return json_response(WindowPage(items=[svc.view(w, now) for w in items], next_cursor=cursor))


async def create_window(request: web.Request) -> web.Response:
    """Create a window; it is honoured from this response on."""
    spec = await read_json(request, WindowSpec)
    await _check_scope(request, spec)
    window = await request.app[MAINTENANCE].create(spec)
    resp = _view(request, window.id)
    resp.set_status(201)
    resp.headers["Location"] = f"{BASE}/{window.id}"
    return resp


async def get_window(request: web.Request) -> web.Response:
    """One window."""
    ident = path_uuid(request, "maintenance window")
    await _window(request, ident)
    return _view(request, ident)


async def patch_window(request: web.Request) -> web.Response:
    """Change some fields; the result is validated as a whole, like a create."""
    ident = path_uuid(request, "maintenance window")
    patch = await read_json(request, WindowPatch)
    svc = request.app[MAINTENANCE]
    current = await _window(request, ident)
    _writable(current)
    spec = convert(merge_patch(current, patch), WindowSpec)
    await _check_scope(request, spec)
    await svc.replace(ident, spec, _precondition(request))
    return _view(request, ident)


async def delete_window(request: web.Request) -> web.Response:
    """Remove a window."""
    ident = path_uuid(request, "maintenance window")
    _writable(await _window(request, ident))
    await request.app[MAINTENANCE].delete(ident, _precondition(request))
    return web.Response(status=204)


async def list_occurrences(request: web.Request) -> web.Response:
    """The next occurrences of a window's schedule, to check a cron and its time zone."""
    ident = path_uuid(request, "maintenance window")
    no_repeats(request)
    count = _count(request)
    await _window(request, ident)
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
            # A cron computed in a time zone: no window is read, nothing of any client.
            scope="global",
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
            scope="filtered",
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
            scope="filtered",
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
            scope="filtered",
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
            scope="filtered",
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
            scope="filtered",
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
            scope="filtered",
        ),
    ]
