"""The route table: one flat list, read top to bottom, registered on the app in one place."""

from __future__ import annotations

from aiohttp import web

from . import audit, inventory, secrets, settings, system, tokens
from .route import Route


def table() -> list[Route]:
    """Every route the daemon serves."""
    return [
        *system.routes(),
        *inventory.routes(),
        *settings.routes(),
        *secrets.routes(),
        *tokens.routes(),
        *audit.routes(),
    ]


def register(app: web.Application, routes: list[Route]) -> None:
    """Add the routes to the app's router (HEAD comes free with GET)."""
    for r in routes:
        app.router.add_route(r.method, r.path, r.handler)
