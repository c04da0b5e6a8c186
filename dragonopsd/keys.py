"""Typed keys for everything the app owns. A leaf: imports from the package are for typing only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from .bus import LocalBus
    from .cache import MemoryCache
    from .config import Config
    from .dashboard import DashboardService
    from .inventory import InventoryService
    from .store.db import Database


@dataclass(frozen=True)
class DocsAssets:
    """The API reference page and the stylesheet and script it loads (no inline code, for CSP)."""

    html: bytes
    css: bytes
    js: bytes


CONFIG: web.AppKey[Config] = web.AppKey("config")
DATABASE: web.AppKey[Database] = web.AppKey("database")
CACHE: web.AppKey[MemoryCache] = web.AppKey("cache")
BUS: web.AppKey[LocalBus] = web.AppKey("bus")
INVENTORY: web.AppKey[InventoryService] = web.AppKey("inventory")
DASHBOARD: web.AppKey[DashboardService] = web.AppKey("dashboard")
OPENAPI: web.AppKey[bytes] = web.AppKey("openapi")
DOCS_ASSETS: web.AppKey[DocsAssets] = web.AppKey("docs_assets")

REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id")
