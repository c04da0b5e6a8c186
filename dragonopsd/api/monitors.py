"""Monitor routes: CRUD, run-now, the latest-state board, engine figures."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ..appkeys import ENGINE_VIEW, MONITORS, NOTIFIER, PRINCIPAL
from ..model.inventory import Wire
from ..model.monitor import KINDS, SECRET_REF, STATUSES, Monitor, MonitorSpec, shown_to
from ..monitoring.report import CheckReport, EngineStats, MonitorState, TrialReport
from ..monitoring.service import decode_spec
from ..netguard import REFUSED, check_host_literal
from ..problem import Problem, invalid
from ..store.monitors import MonitorRow
from .codec import (
    IF_MATCH,
    IF_NONE_MATCH,
    cacheable_response,
    id_param,
    if_match,
    json_response,
    page_limit,
    page_params,
    path_uuid,
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


LIST_FILTERS = ("kind", "status", "tag", "serverId", "environmentId", "q")


async def list_monitors(request: web.Request) -> web.Response:
    """Monitors by name, filtered; every match unless ``limit`` asks for a page."""
    q = request.query
    limit = page_limit(q, 10**9)
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
    if "cursor" in q:  # keyset: the (name, id) of the previous page's last item
        after = _cursor(q["cursor"])
        items = [m for m in items if (m.name, m.id) > after]
    cursor = f"{items[limit - 1].name}\0{items[limit - 1].id}" if len(items) > limit else None
    role = request[PRINCIPAL].role
    page = [shown_to(role, m) for m in items[:limit]]
    return json_response(MonitorPage(items=page, next_cursor=cursor))


def _cursor(raw: str) -> tuple[str, str]:
    name, sep, ident = raw.rpartition("\0")
    if not sep or not ident:
        raise invalid("cursor", "malformed cursor")
    return name, ident


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
    monitor = service.view(await service.store.get(path_uuid(request, "monitor")))
    return cacheable_response(request, shown_to(request[PRINCIPAL].role, monitor))


def _precondition(request: web.Request) -> Callable[[MonitorRow], None] | None:
    service = request.app[MONITORS]
    return if_match(request, service.view)  # the ETag GET gave: the spec and its status


async def patch_monitor(request: web.Request) -> web.Response:
    """Merge-patch a monitor (null resets a field to its default)."""
    ident = path_uuid(request, "monitor")
    patch = await read_json(request, dict)
    service = request.app[MONITORS]
    return json_response(await service.update(ident, patch, _precondition(request)), etag=True)


async def delete_monitor(request: web.Request) -> web.Response:
    """Delete a monitor and its history."""
    await request.app[MONITORS].delete(path_uuid(request, "monitor"), _precondition(request))
    return web.Response(status=204)


async def check_monitor(request: web.Request) -> web.Response:
    """Run the monitor's probe now and return the result (it is recorded like any check)."""
    ident = path_uuid(request, "monitor")
    service = request.app[MONITORS]
    await service.store.get(ident)  # 404 for unknown ids
    report = await service.engine.check_now(ident)
    if report is None:
        raise Problem(409, "push monitors are checked by their push calls, not on demand")
    return json_response(report)


def _secret_field(value: Any, path: str = "$") -> str | None:
    """The first field of a request body that reads a secret: a ``${secret:…}`` reference or
    a ``passwordSecret``; None when nothing does."""
    if isinstance(value, str):
        return path if SECRET_REF.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("passwordSecret", "password_secret") and item:
                return f"{path}.{key}"
            if (found := _secret_field(item, f"{path}.{key}")) is not None:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            if (found := _secret_field(item, f"{path}[{i}]")) is not None:
                return found
    return None


async def test_monitor(request: web.Request) -> web.Response:
    """Probe a monitor body once without saving it; each condition's verdict comes back."""
    body = await read_json(request, dict)
    # A trial answers with what its conditions read, which may be a secret the target echoes;
    # reading a secret's value is an admin's (the audited reveal), so only an admin may test
    # a body that uses one.
    field = _secret_field(body)
    if field is not None and request[PRINCIPAL].role != "admin":
        raise invalid(
            field,
            "only an admin may test a monitor that uses a secret (its verdict could show the "
            "value); save it and let it run, or ask an admin",
            status=403,
        )
    spec = decode_spec(body)
    # IP literals are refused up front, naming the field, as for notification channels;
    # names are checked where the probe's socket is made, on the address they resolve to.
    guard = request.app[NOTIFIER].guard
    host = urllib.parse.urlsplit(spec.url).hostname if spec.url else None
    resolver = spec.resolver or ""  # IP or IP:port ([v6]:port)
    for field, value in (
        ("$.url", host),
        ("$.host", spec.host),
        ("$.resolver", resolver),
        ("$.resolver", resolver.rpartition(":")[0]),
    ):
        if value and check_host_literal(guard, value):
            raise invalid(field, REFUSED)
    return json_response(await request.app[MONITORS].trial(spec))


async def engine_stats(request: web.Request) -> web.Response:
    """Scheduler drift, checks in flight, history writer backlog."""
    return json_response(request.app[ENGINE_VIEW].stats())


async def monitoring(request: web.Request) -> web.Response:
    """Latest state of every monitor (the seed's GET /api/monitoring)."""
    view = request.app[ENGINE_VIEW]
    return json_response(Board(items=view.states(), counts=view.counts()))


def routes() -> list[Route]:
    """Everything under /api/monitors (but history and pushes), and /api/monitoring."""
    mid = id_param("monitor")
    body_errors = (400, 404, 409, 413, 415, 422)
    return [
        Route(
            "GET",
            "/api/monitors",
            list_monitors,
            "List monitors",
            "Monitors",
            "viewer",
            response=MonitorPage,
            params=(
                Param("kind", "Only this kind", {"enum": list(KINDS)}),
                Param("status", "Only this status", {"enum": list(STATUSES)}),
                Param("tag", "Only monitors with this tag", {"type": "string"}),
                Param("serverId", "Only this server's monitors", {"type": "string"}),
                Param("environmentId", "Only this environment's", {"type": "string"}),
                Param("q", "Name contains this text (any case)", {"type": "string"}),
                *page_params("every match"),
            ),
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
            "POST",
            "/api/monitors/test",
            test_monitor,
            "Probe a monitor body once without saving it (timeout at most 10 s)",
            "Monitors",
            "operator",
            body=MonitorSpec,
            response=TrialReport,
            errors=(400, 403, 413, 415, 422, 429),
        ),
        Route(
            "GET",
            "/api/monitors/{id}",
            get_monitor,
            "Get a monitor",
            "Monitors",
            "viewer",
            response=Monitor,
            params=(mid, IF_NONE_MATCH),
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
            params=(mid, IF_MATCH),
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
            params=(mid, IF_MATCH),
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
    ]
