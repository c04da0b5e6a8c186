"""Health, readiness, dashboard stats, and the API's own description."""

from __future__ import annotations

from collections import Counter

import msgspec
from aiohttp import web

from ..appkeys import (
    CLUSTER,
    CONFIG,
    DASHBOARD,
    DATABASE,
    DOCS_ASSETS,
    ENGINE_VIEW,
    INVENTORY_INDEX,
    OPENAPI,
    REDIS,
    RESTART_REQUIRED,
)
from ..dashboard import count_monitors
from ..inventory.reach import Reach
from ..model.inventory import DashboardStats
from ..store import migrations
from .access import reach
from .codec import json_response
from .route import Route


class Health(msgspec.Struct):
    """Liveness: the process answers."""

    status: str


class Readiness(msgspec.Struct):
    """Readiness: each dependency and whether it is usable, and the config keys changed in
    the file whose new values only a restart applies (the daemon still serves the old ones)."""

    status: str
    checks: dict[str, str]
    restart_required: list[str] = msgspec.field(default_factory=list, name="restartRequired")


async def healthz(request: web.Request) -> web.Response:
    """Liveness probe: answers as long as the loop runs."""
    return web.Response(body=b'{"status":"ok"}', content_type="application/json")


async def readyz(request: web.Request) -> web.Response:
    """Readiness: the store is open, takes writes, and is migrated to this build's schema."""
    db = request.app[DATABASE]
    checks = {
        "store": db.state,  # ok, closed, or locked / full until a write succeeds again
        "migrations": (
            f"ok (version {db.schema_version})"
            if db.schema_version == migrations.latest()
            else f"pending (at {db.schema_version}, want {migrations.latest()})"
        ),
    }
    link = request.app[REDIS]
    if link is not None:
        checks["redis"] = link.state
    core = request.app[CLUSTER]
    if core is not None:  # cut off from Redis with other cores about: it schedules nothing
        checks["cluster"] = (
            "isolated (redis away: not scheduling, the other cores own its monitors)"
            if core.isolated
            else f"ok ({core.cores()} live core(s), node {core.node})"
        )
    # Redis away is "degraded", not "not ready", unless [redis] required says it must be there.
    required = request.app[CONFIG].redis.required
    ready = all(
        v.startswith("ok") or (k in ("redis", "cluster") and not required)
        for k, v in checks.items()
    )
    restart = request.app[RESTART_REQUIRED]
    body = msgspec.json.encode(Readiness("ready" if ready else "not-ready", checks, restart))
    return web.Response(body=body, status=200 if ready else 503, content_type="application/json")


async def dashboard_stats(request: web.Request) -> web.Response:
    """Counts of the inventory, served from cache until the next write; a scoped caller's
    are counted from its reach (not cached: they are a few set lookups)."""
    seen = await reach(request)
    if not seen.everything:
        return json_response(_scoped_stats(request, seen))
    body = await request.app[DASHBOARD].body()
    return web.Response(body=body, content_type="application/json")


def _scoped_stats(request: web.Request, seen: Reach) -> DashboardStats:
    servers = request.app[INVENTORY_INDEX].hierarchy.servers
    statuses = Counter(servers[s].status for s in seen.servers or () if s in servers)
    monitors = Counter(
        s.status
        for s in request.app[ENGINE_VIEW].states()
        if seen.monitor(s.server_id, s.environment_id)
    )
    stats = DashboardStats(
        clients=len(seen.clients or ()),
        projects=len(seen.projects or ()),
        environments=len(seen.environments or ()),
        servers=len(seen.servers or ()),
        servers_by_status=dict(sorted(statuses.items())),
    )
    return count_monitors(stats, dict(monitors))


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document, generated at start from the route table."""
    return web.Response(body=request.app[OPENAPI], content_type="application/json")


async def docs(request: web.Request) -> web.Response:
    """A self-contained page that renders the OpenAPI document (no CDN)."""
    body = request.app[DOCS_ASSETS].html
    return web.Response(body=body, content_type="text/html", charset="utf-8")


async def docs_css(request: web.Request) -> web.Response:
    """The docs page's stylesheet (a file, not inline, so a strict CSP can forbid inline)."""
    body = request.app[DOCS_ASSETS].css
    return web.Response(body=body, content_type="text/css", charset="utf-8")


async def docs_js(request: web.Request) -> web.Response:
    """The docs page's script: fetches /api/openapi.json and renders it with DOM calls."""
    body = request.app[DOCS_ASSETS].js
    return web.Response(body=body, content_type="text/javascript", charset="utf-8")


def routes() -> list[Route]:
    """Routes that are about the daemon rather than the inventory."""
    return [
        Route(
            "GET",
            "/healthz",
            healthz,
            "Liveness",
            "System",
            "public",
            response=Health,
            scope="global",
        ),
        Route(
            "GET",
            "/readyz",
            readyz,
            "Readiness",
            "System",
            "public",
            response=Readiness,
            errors=(503,),
            scope="global",
        ),
        Route(
            "GET",
            "/api/stats/dashboard",
            dashboard_stats,
            "Dashboard counts",
            "Dashboard",
            "viewer",
            response=DashboardStats,
            scope="filtered",
        ),
        Route(
            "GET",
            "/api/openapi.json",
            openapi,
            "This OpenAPI document",
            "System",
            "public",
            response=dict,
            scope="global",
        ),
        Route(
            "GET",
            "/api/docs",
            docs,
            "API reference page",
            "System",
            "public",
            content_type="text/html",
            scope="global",
        ),
        Route(
            "GET",
            "/api/docs/docs.css",
            docs_css,
            "Stylesheet of the API reference page",
            "System",
            "public",
            content_type="text/css",
            scope="global",
        ),
        Route(
            "GET",
            "/api/docs/docs.js",
            docs_js,
            "Script of the API reference page",
            "System",
            "public",
            content_type="text/javascript",
            scope="global",
        ),
    ]
