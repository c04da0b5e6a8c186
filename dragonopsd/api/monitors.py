"""Monitor routes: CRUD, run-now, the latest-state board, engine figures."""

from __future__ import annotations

import re
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import msgspec
from aiohttp import web

from ..appkeys import ENGINE_VIEW, MONITORS, NOTIFIER, PRINCIPAL
from ..inventory.reach import Reach
from ..model.inventory import Wire
from ..model.monitor import KINDS, SECRET_REF, STATUSES, Monitor, MonitorSpec, shown_to
from ..monitoring.report import CheckReport, EngineStats, MonitorState, TrialReport
from ..monitoring.service import decode_spec
from ..netguard import REFUSED, check_host_literal
from ..problem import Problem, invalid
from ..store.monitors import MonitorRow
from .access import reach
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
from .scoped import check_monitor_reach, monitor_row

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
    seen = await reach(request)
    if not seen.everything:
        items = [m for m in items if seen.monitor(m.server_id, m.environment_id)]
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


def _links(seen: Reach, server_id: Any, environment_id: Any, *, attached: bool = True) -> None:
    """For a scoped caller: a serverId or environmentId outside its reach gets the answer of
    one that does not exist (as the store words it), and a monitor attached to neither would
    belong to no client of its scope, so it may not save one (``attached``)."""
    for field, kind, value in (
        ("$.serverId", "server", server_id),
        ("$.environmentId", "environment", environment_id),
    ):
        if value is not None and not seen.entity(f"{kind}s", str(value)):
            raise invalid(field, f"{kind} {value} does not exist")
    if attached and server_id is None and environment_id is None:
        raise invalid(
            "$.serverId",
            "this caller is scoped to some clients: attach the monitor to one of their "
            "servers (serverId) or environments (environmentId)",
        )


def _no_secret(request: web.Request, value: Any) -> None:
    """For a scoped caller: a monitor that reads a secret may not be saved. Secrets are global
    configuration (every client's, /api/secrets is refused to it), and the probe sends what a
    reference resolves to wherever the monitor points: another client's credential would
    reach a host of the caller's choosing."""
    field = _secret_field(value)
    if field is not None:
        raise invalid(
            field,
            f"this {request[PRINCIPAL].kind} is scoped to some clients; secrets are global "
            "configuration, so only an unscoped caller may save a monitor that reads one",
            status=403,
        )


def _patched(patch: dict[str, Any], key: str, current: Any) -> Any:
    """A link as the merge patch leaves it (decode_spec has checked it is a UUID)."""
    if key not in patch:
        return current
    value = patch[key]
    return None if value is None else uuid.UUID(str(value))


async def create_monitor(request: web.Request) -> web.Response:
    """Create and schedule a monitor."""
    raw = await read_json(request, dict)
    spec = decode_spec(raw)
    seen = await reach(request)
    if not seen.everything:
        _no_secret(request, raw)
        _links(seen, spec.server_id, spec.environment_id)
    monitor = await request.app[MONITORS].create(spec)
    return json_response(
        monitor, status=201, etag=True, headers={"Location": f"/api/monitors/{monitor.id}"}
    )


async def get_monitor(request: web.Request) -> web.Response:
    """One monitor with its current status."""
    service = request.app[MONITORS]
    monitor = service.view(await monitor_row(request, path_uuid(request, "monitor")))
    return cacheable_response(request, shown_to(request[PRINCIPAL].role, monitor))


def _precondition(request: web.Request) -> Callable[[MonitorRow], None] | None:
    service = request.app[MONITORS]
    return if_match(request, service.view)  # the ETag GET gave: the spec and its status


async def patch_monitor(request: web.Request) -> web.Response:
    """Merge-patch a monitor (null resets a field to its default)."""
    ident = path_uuid(request, "monitor")
    patch = await read_json(request, dict)
    service = request.app[MONITORS]
    precondition = _precondition(request)
    seen = await reach(request)
    if not seen.everything:
        _no_secret(request, patch)
        await monitor_row(request, ident)
        matches = precondition

        def precondition(current: MonitorRow) -> None:
            # Where the store checks that the links exist: after If-Match.
            if matches is not None:
                matches(current)
            # One that reads a secret already: a new URL or header would take it elsewhere.
            _no_secret(request, msgspec.to_builtins(current.spec))
            _links(
                seen,
                _patched(patch, "serverId", current.spec.server_id),
                _patched(patch, "environmentId", current.spec.environment_id),
            )

    return json_response(await service.update(ident, patch, precondition), etag=True)


async def delete_monitor(request: web.Request) -> web.Response:
    """Delete a monitor and its history."""
    ident = path_uuid(request, "monitor")
    await check_monitor_reach(request, ident)
    await request.app[MONITORS].delete(ident, _precondition(request))
    return web.Response(status=204)


async def check_monitor(request: web.Request) -> web.Response:
    """Run the monitor's probe now and return the result (it is recorded like any check)."""
    ident = path_uuid(request, "monitor")
    service = request.app[MONITORS]
    await monitor_row(request, ident)  # 404 for unknown ids and those outside the reach
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
    seen = await reach(request)
    # A scoped caller's trial names only its own servers and environments; one attached to
    # neither reads nothing of any client (nothing is stored), so it may run.
    if not seen.everything:
        _links(seen, spec.server_id, spec.environment_id, attached=False)
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
    seen = await reach(request)
    if seen.everything:
        return json_response(Board(items=view.states(), counts=view.counts()))
    items = [s for s in view.states() if seen.monitor(s.server_id, s.environment_id)]
    return json_response(Board(items=items, counts=dict(Counter(s.status for s in items))))


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
            scope="filtered",
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
            scope="filtered",
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
            scope="filtered",
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
            scope="filtered",
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
            scope="filtered",
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
            scope="filtered",
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
            scope="filtered",
        ),
        Route(
            "GET",
            "/api/monitoring",
            monitoring,
            "Latest state of every monitor",
            "Monitors",
            "viewer",
            response=Board,
            scope="filtered",
        ),
        Route(
            "GET",
            "/api/stats/engine",
            engine_stats,
            "Probe engine figures",
            "Monitors",
            "viewer",
            response=EngineStats,
            scope="unscoped",
        ),
    ]
