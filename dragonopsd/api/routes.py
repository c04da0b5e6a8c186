"""The route table: one flat list, read top to bottom, registered on the app in one place."""

from __future__ import annotations

from aiohttp import web

from . import (
    actions,
    assistant,
    audit,
    heartbeats,
    incidents,
    inventory,
    maintenance,
    metrics,
    monitors,
    notifications,
    samples,
    secrets,
    settings,
    statuspage,
    system,
    tokens,
    webui,
    ws,
)
from .route import Route


def table() -> list[Route]:
    """Every route the daemon serves."""
    return [
        *system.routes(),
        *metrics.routes(),
        *inventory.routes(),
        *samples.routes(),
        *monitors.routes(),
        *heartbeats.routes(),
        *incidents.routes(),
        *settings.routes(),
        *secrets.routes(),
        *tokens.routes(),
        *audit.routes(),
        *notifications.routes(),
        *maintenance.routes(),
        *ws.routes(),
        *actions.routes(),
        *assistant.routes(),
        *webui.routes(),
        *statuspage.routes(),
    ]


def register(app: web.Application, routes: list[Route]) -> dict[web.AbstractRoute, Route]:
    """Add the routes to the app's router (HEAD along with GET); returns router route -> row,
    so the per-request lookup is one dict hit on the route aiohttp already matched."""
    index: dict[web.AbstractRoute, Route] = {}
    for r in routes:
        index[app.router.add_route(r.method, r.path, r.handler)] = r
        if r.method == "GET":
            index[app.router.add_route("HEAD", r.path, r.handler)] = r
    return index
