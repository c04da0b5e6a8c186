"""Typed keys for everything the app owns. A leaf: imports from the package are for typing only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from .bus import LocalBus
    from .cache import MemoryCache
    from .config import Config
    from .dashboard import DashboardService
    from .inventory import InventoryService
    from .store.db import Database

CONFIG: web.AppKey[Config] = web.AppKey("config")
DATABASE: web.AppKey[Database] = web.AppKey("database")
CACHE: web.AppKey[MemoryCache] = web.AppKey("cache")
BUS: web.AppKey[LocalBus] = web.AppKey("bus")
INVENTORY: web.AppKey[InventoryService] = web.AppKey("inventory")
DASHBOARD: web.AppKey[DashboardService] = web.AppKey("dashboard")
OPENAPI: web.AppKey[bytes] = web.AppKey("openapi")
DOCS_PAGE: web.AppKey[bytes] = web.AppKey("docs_page")

REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id")
