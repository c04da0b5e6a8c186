"""The app factory: the one place where services are built, wired together and started."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path

from aiohttp import web

from . import __version__, demo, lifecycle
from .api import middleware, openapi, routes
from .api.http import encode
from .auth.authenticator import Authenticator
from .auth.jwt import JwtVerifier
from .auth.limiter import FailureLimiter
from .auth.tokens import TokenAuth
from .bus import LocalBus
from .cache import MemoryCache
from .config import Config
from .crypto import KEYS_ENV
from .dashboard import DashboardService
from .inventory import InventoryService
from .keys import (
    AUDIT,
    AUTH_LIMITER,
    AUTHENTICATOR,
    BUS,
    CACHE,
    CONFIG,
    DASHBOARD,
    DATABASE,
    DOCS_ASSETS,
    HISTORY_QUERY,
    HISTORY_WRITER,
    INVENTORY,
    MAINTENANCE,
    MONITORS,
    NOTIFIER,
    OPENAPI,
    ROUTE_INDEX,
    ROUTE_OF,
    SETTINGS,
    VAULT,
    DocsAssets,
)
from .maintenance import MaintenanceService
from .model import InventoryChanged
from .monitoring.engine import Engine
from .monitoring.service import MonitorService
from .notify.dispatcher import Dispatcher
from .store.audit import AuditStore
from .store.db import Database
from .store.history import HistoryQuery, HistoryWriter
from .store.inventory import InventoryStore
from .store.maintenance import MaintenanceStore
from .store.monitors import MonitorStore
from .store.notifications import NotificationStore
from .store.settings import SettingsStore
from .store.tokens import TokenStore
from .store.vault import VaultStore
from .vault import VaultService

log = logging.getLogger("dragonopsd")


def _docs_assets() -> DocsAssets:
    web_dir = resources.files("dragonopsd.web")
    return DocsAssets(
        html=web_dir.joinpath("docs.html").read_bytes(),
        css=web_dir.joinpath("docs.css").read_bytes(),
        js=web_dir.joinpath("docs.js").read_bytes(),
    )


def _wire_auth(app: web.Application, cfg: Config, db: Database) -> None:
    """Tokens, JWTs, failure limiting, audit log and settings."""
    token_store = TokenStore(db)
    tokens = TokenAuth(token_store)
    jwt = JwtVerifier(cfg.auth)
    audit = AuditStore(db)
    app[AUTHENTICATOR] = Authenticator(cfg.auth, tokens, jwt, token_store)
    app[AUTH_LIMITER] = FailureLimiter(cfg.auth.failure_limit, cfg.auth.failure_window)
    app[AUDIT] = audit
    app[SETTINGS] = SettingsStore(db)
    app.cleanup_ctx.append(lifecycle.auth_ctx(cfg, tokens, jwt))
    app.cleanup_ctx.append(lifecycle.audit_retention_ctx(audit, cfg.audit.retention_days))


def _wire_monitoring(
    app: web.Application, cfg: Config, db: Database, bus: LocalBus, config_path: Path | None
) -> None:
    """Maintenance, notifications, history and the probe engine, in start order."""
    maintenance = app[MAINTENANCE] = MaintenanceService(MaintenanceStore(db))
    notifier = app[NOTIFIER] = Dispatcher(
        NotificationStore(db), allow_metadata=cfg.probes.allow_metadata
    )
    history = app[HISTORY_WRITER] = HistoryWriter(db, cfg.history)
    history_query = app[HISTORY_QUERY] = HistoryQuery(db)
    engine = Engine(
        cfg,
        store=MonitorStore(db),
        history=history,
        notifier=notifier,
        maintenance=maintenance,
        bus=bus,
    )
    monitors = app[MONITORS] = MonitorService(engine, history_query, config_path)
    dashboard = app[DASHBOARD]
    dashboard.monitor_counts = engine.counts
    engine.on_change.append(dashboard.invalidate)
    app.cleanup_ctx.append(lifecycle.maintenance_ctx)
    app.cleanup_ctx.append(lifecycle.notifier_ctx)
    app.cleanup_ctx.append(lifecycle.history_ctx(history))
    app.cleanup_ctx.append(lifecycle.engine_ctx(cfg, monitors, bus))


def build_app(
    cfg: Config, *, demo_data: bool = False, config_path: Path | None = None
) -> web.Application:
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
    vault = app[VAULT] = VaultService(
        VaultStore(db), cfg.resolve(cfg.secrets.key_file), os.environ.get(KEYS_ENV), bus
    )

    async def database_ctx(app: web.Application) -> AsyncIterator[None]:
        await db.open()
        log.info("store %s at schema version %d", db.path, db.schema_version)
        if demo_data and await demo.seed(inventory):
            log.info("seeded the demo inventory")
        yield
        await db.close()

    async def vault_ctx(app: web.Application) -> AsyncIterator[None]:
        await vault.start()  # a key file that does not match the database refuses the start
        yield

    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(vault_ctx)
    _wire_monitoring(app, cfg, db, bus, config_path)
    _wire_auth(app, cfg, db)
    table = routes.table()
    app[ROUTE_OF] = routes.register(app, table)
    app[ROUTE_INDEX] = {(r.method, r.path): r for r in table}
    app[OPENAPI] = encode(openapi.build(table, __version__))
    # Read once at build time: a few KB from the installed package, before any request.
    app[DOCS_ASSETS] = _docs_assets()
    app.on_response_prepare.append(middleware.on_response_prepare)
    return app
