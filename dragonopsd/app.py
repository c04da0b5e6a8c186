"""The app factory: the one place where services are built, wired together and started."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from importlib import resources

from aiohttp import web

from . import __version__, demo
from .api import middleware, openapi, routes
from .api.http import encode
from .bus import LocalBus
from .cache import MemoryCache
from .config import Config
from .dashboard import DashboardService
from .inventory import InventoryService
from .keys import (
    BUS,
    CACHE,
    CONFIG,
    DASHBOARD,
    DATABASE,
    DOCS_ASSETS,
    INVENTORY,
    OPENAPI,
    DocsAssets,
)
from .model import InventoryChanged
from .store.db import Database
from .store.inventory import InventoryStore

log = logging.getLogger("dragonopsd")


def _docs_assets() -> DocsAssets:
    web_dir = resources.files("dragonopsd.web")
    return DocsAssets(
        html=web_dir.joinpath("docs.html").read_bytes(),
        css=web_dir.joinpath("docs.css").read_bytes(),
        js=web_dir.joinpath("docs.js").read_bytes(),
    )


def build_app(cfg: Config, *, demo_data: bool = False) -> web.Application:
    """Build the application for cfg; nothing touches disk or network until it starts."""
    app = web.Application(
        middlewares=[middleware.front_middleware],
        client_max_size=cfg.server.max_body_bytes,
    )
    db = Database(
        cfg.resolve(cfg.storage.path),
        synchronous=cfg.storage.synchronous,
        busy_timeout_ms=cfg.storage.busy_timeout_ms,
        readers=cfg.storage.readers,
    )
    cache = MemoryCache()
    bus = LocalBus()
    store = InventoryStore(db)
    dashboard = DashboardService(store, cache)

    async def invalidate_stats(_: InventoryChanged) -> None:
        await dashboard.invalidate()

    inventory = InventoryService(store, bus, hooks=[invalidate_stats])

    app[CONFIG] = cfg
    app[DATABASE] = db
    app[CACHE] = cache
    app[BUS] = bus
    app[DASHBOARD] = dashboard
    app[INVENTORY] = inventory
    table = routes.table()
    routes.register(app, table)
    app[OPENAPI] = encode(openapi.build(table, __version__))
    # Read once at build time: a few KB from the installed package, before any request.
    app[DOCS_ASSETS] = _docs_assets()

    async def database_ctx(app: web.Application) -> AsyncIterator[None]:
        await db.open()
        log.info("store %s at schema version %d", db.path, db.schema_version)
        if demo_data and await demo.seed(inventory):
            log.info("seeded the demo inventory")
        yield
        await db.close()

    app.cleanup_ctx.append(database_ctx)
    app.on_response_prepare.append(middleware.on_response_prepare)
    return app
