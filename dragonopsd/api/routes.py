"""The route table: one flat list, read top to bottom, registered on the app in one place."""

from __future__ import annotations

from aiohttp import web

from . import (
    actions,
    alerts,
    assistant,
    audit,
    badges,
    cluster,
    heartbeats,
    imports,
    incidents,
    inventory,
    locations,
    maintenance,
    metrics,
    monitors,
    notifications,
    push,
    samples,
    secrets,
    settings,
    statuspage,
    system,
    tokens,
    webui,
    ws,
)
from .front import Front
from .route import Route


def table() -> list[Route]:
    """Every route the daemon serves."""
    return [
        *system.routes(),
        *cluster.routes(),
        *metrics.routes(),
        *inventory.routes(),
        *samples.routes(),
        *monitors.routes(),
        *locations.routes(),
        *push.routes(),
        *heartbeats.routes(),
        *imports.routes(),
        *incidents.routes(),
        *settings.routes(),
        *secrets.routes(),
        *tokens.routes(),
        *audit.routes(),
        *notifications.routes(),
        *maintenance.routes(),
        *alerts.routes(),
        *ws.routes(),
        *actions.routes(),
        *assistant.routes(),
        *webui.routes(),
        *statuspage.routes(),
        *badges.routes(),
    ]


def register(app: web.Application, routes: list[Route], front: Front) -> None:
    """Add the routes to the app's router (HEAD along with GET), each handler behind the
    front, then the front's catch-all for whatever matches none of them."""
    for r in routes:
        handler = front.wrap(r)
        app.router.add_route(r.method, r.path, handler)
        if r.method == "GET":
            app.router.add_route("HEAD", r.path, handler)
    front.register(app)
