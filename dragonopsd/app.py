"""The app factory: the one place where services are built, wired together and started."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

from aiohttp import web

from . import __version__, demo
from .api import middleware, openapi, routes
from .api.http import encode
from .auth.authenticator import Authenticator
from .auth.jwt import JwtVerifier
from .auth.limiter import FailureLimiter
from .auth.tokens import TokenAuth, bootstrap_admin
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
    INVENTORY,
    OPENAPI,
    ROUTE_INDEX,
    ROUTE_OF,
    SETTINGS,
    VAULT,
    DocsAssets,
)
from .model import InventoryChanged
from .store.audit import AuditStore
from .store.db import Database
from .store.inventory import InventoryStore
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


CleanupCtx = Callable[[web.Application], AsyncIterator[None]]


def _task_ctx(factory: Callable[[], Coroutine[Any, Any, None]]) -> CleanupCtx:
    """A cleanup_ctx entry that runs one background task for the app's lifetime."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(factory())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return ctx


def _auth_ctx(cfg: Config, tokens: TokenAuth, jwt: JwtVerifier) -> CleanupCtx:
    """Load tokens (minting the first admin token if there is no way in), watch for changes."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        await tokens.reload()
        if not jwt.enabled and await tokens.store.count() == 0:
            await bootstrap_admin(tokens, cfg.resolve(cfg.auth.admin_token_file))
        async for _ in _task_ctx(tokens.watch)(app):
            yield
        await jwt.close()

    return ctx


async def _prune_audit(audit: AuditStore, days: int) -> None:
    cutoff = (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    try:
        gone = await audit.prune(cutoff)
    except Exception:  # a busy store must not end retention for good
        log.exception("audit pruning failed")
    else:
        if gone:
            log.info("pruned %d audit entries older than %s", gone, cutoff)


def _audit_retention_ctx(audit: AuditStore, days: int) -> CleanupCtx:
    """Prune the audit log at start (so a long-stopped daemon starts bounded), then hourly."""

    async def hourly() -> None:
        while True:
            await asyncio.sleep(3600)
            await _prune_audit(audit, days)

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        await _prune_audit(audit, days)
        async for _ in _task_ctx(hourly)(app):
            yield

    return ctx


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
    token_store = TokenStore(db)
    tokens = TokenAuth(token_store)
    jwt = JwtVerifier(cfg.auth)
    audit = AuditStore(db)
    app[AUTHENTICATOR] = Authenticator(cfg.auth, tokens, jwt, token_store)
    app[AUTH_LIMITER] = FailureLimiter(cfg.auth.failure_limit, cfg.auth.failure_window)
    app[AUDIT] = audit
    app[SETTINGS] = SettingsStore(db)
    vault = VaultService(
        VaultStore(db), cfg.resolve(cfg.secrets.key_file), os.environ.get(KEYS_ENV), bus
    )
    app[VAULT] = vault
    table = routes.table()
    app[ROUTE_OF] = routes.register(app, table)
    app[ROUTE_INDEX] = {(r.method, r.path): r for r in table}
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

    async def vault_ctx(app: web.Application) -> AsyncIterator[None]:
        await vault.start()  # a key file that does not match the database refuses the start
        yield

    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(vault_ctx)
    app.cleanup_ctx.append(_auth_ctx(cfg, tokens, jwt))
    app.cleanup_ctx.append(_audit_retention_ctx(audit, cfg.audit.retention_days))
    app.on_response_prepare.append(middleware.on_response_prepare)
    return app
