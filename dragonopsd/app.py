"""The app factory: the one place where services are built, wired together and started.

build_app reads top to bottom in dependency order: connections, secrets, inventory, auth,
monitoring, websockets, actions and sampling, assistant, metrics, reload, HTTP (surface.py).
Every collaborator goes into a constructor (nothing is set on a service once built), and the
start order is one list at the end, each entry a lifecycle.py factory.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from aiohttp import web

from . import __version__, builders, lifecycle, snapshots, surface
from .actions.queue import RedisQueue
from .actions.service import ActionService
from .api.metrics import listener_ctx as metrics_listener_ctx
from .appkeys import (
    ACTIONS,
    ALERTS,
    ASSISTANT,
    AUDIT,
    AUTH_LIMITER,
    AUTHENTICATOR,
    BUS,
    CACHE,
    CLUSTER,
    CONFIG,
    DASHBOARD,
    DATABASE,
    HUB,
    INCIDENTS,
    INVENTORY,
    INVENTORY_INDEX,
    METRICS,
    REDIS,
    RESTART_REQUIRED,
    SAMPLER,
    SETTINGS,
    UNIT_OF_WORK,
    VAULT,
)
from .assistant.credentials import secret_value
from .assistant.service import AssistantService
from .auth.authenticator import Authenticator
from .auth.jwt import JwtVerifier
from .auth.limiter import FailureLimiter
from .auth.tokens import TokenAuth
from .bus import LocalBus, RedisBus
from .cache import Cache, MemoryCache, RedisCache
from .cluster.core import Core
from .config import Config
from .dashboard import DashboardService
from .inventory.index import InventoryIndex
from .inventory.service import InventoryService
from .live.caps import SocketCaps
from .live.hub import Hub
from .live.redis_state import StateMirror
from .livescope import ScopeGates
from .model.inventory import InventoryChanged
from .monitoring.alert_peers import AlertPeers
from .monitoring.alert_rules import RuleBook
from .monitoring.alerts import AlertService
from .monitoring.config_sync import ConfigSync
from .monitoring.runtime import Runtimes
from .monitoring.views import status_counts
from .netguard import AddressGuard, AddressSet
from .redislink.client import RedisLink
from .reload import RELOADER, Reloader, sighup_ctx
from .sampling.sampler import Sampler
from .secrets.crypto import KEYS_ENV
from .secrets.vault import VaultService
from .store.actions import ActionStore
from .store.alerts import AlertStore
from .store.audit import AuditStore
from .store.backend import database_for
from .store.inventory import InventoryStore
from .store.samples import SampleQuery, SampleWriter
from .store.settings import SettingsStore
from .store.sql import Database
from .store.tokens import TokenStore
from .store.vault import VaultStore
from .systemd import Notifier


@dataclass(frozen=True)
class _Auth:
    """What the auth builder made that others start or reconfigure."""

    tokens: TokenAuth
    jwt: JwtVerifier
    authenticator: Authenticator
    limiter: FailureLimiter
    audit: AuditStore


def _inventory(
    app: web.Application, db: Database, cache: Cache, bus: LocalBus, runtimes: Runtimes
) -> tuple[InventoryService, DashboardService]:
    """The inventory service and the dashboard's cached counts, which its writes drop."""
    store = InventoryStore(db)
    dashboard = app[DASHBOARD] = DashboardService(
        store, cache, monitor_counts=partial(status_counts, runtimes)
    )

    async def invalidate_stats(_: InventoryChanged) -> None:
        await dashboard.invalidate()

    inventory = app[INVENTORY] = InventoryService(store, bus, hooks=[invalidate_stats])
    return inventory, dashboard


def _auth(app: web.Application, cfg: Config, db: Database) -> _Auth:
    """Tokens, JWTs, failure limiting, audit log and settings."""
    token_store = TokenStore(db)
    tokens = TokenAuth(token_store)
    jwt = JwtVerifier(cfg.auth)
    authenticator = app[AUTHENTICATOR] = Authenticator(cfg.auth, tokens, jwt, token_store)
    limiter = app[AUTH_LIMITER] = FailureLimiter(cfg.auth.failure_limit, cfg.auth.failure_window)
    audit = AuditStore(db)
    app[AUDIT] = audit
    app[SETTINGS] = SettingsStore(db)
    return _Auth(tokens, jwt, authenticator, limiter, audit)


def _hub(cfg: Config, bus: LocalBus, gates: ScopeGates) -> Hub:
    """The websocket hub, with the per-principal and per-address socket caps and the gates of
    scoped subscribers."""
    server = cfg.server
    caps = SocketCaps(
        server.max_websockets_per_principal,
        server.max_websockets_per_address,
        AddressSet(server.per_address_exempt),
    )
    return Hub(bus, caps, gates=gates)


def _assistant(cfg: Config, vault: VaultService, inventory: InventoryService) -> AssistantService:
    """The assistant. The API key secret is read per call, so a rotated key is used at once."""
    name = cfg.ai.api_key_secret

    async def secret_key() -> str:
        return await secret_value(vault, name)

    return AssistantService(cfg.ai, inventory, secret_key if name else None)


def build_app(
    cfg: Config,
    *,
    demo_data: bool = False,
    config_path: Path | None = None,
    reread: Callable[[], Config] | None = None,
    notifier: Notifier | None = None,
) -> web.Application:
    """Build the application for cfg; nothing touches disk or network until it starts.

    reread: how SIGHUP gets the config again (`dragonopsd serve` passes one; without it no
    signal handler is installed, as in tests); notifier tells systemd about reloads.
    """
    # No middlewares: every handler is wrapped in the request front at registration.
    app = web.Application(client_max_size=cfg.server.max_body_bytes)
    app[CONFIG] = cfg
    db = database_for(cfg)
    app[DATABASE] = db
    app[UNIT_OF_WORK] = db
    link = app[REDIS] = RedisLink(cfg.redis) if cfg.redis.url else None
    # With Redis the cache and the bus live there, shared by every process; else in memory.
    cache = app[CACHE] = RedisCache(link) if link else MemoryCache()
    bus = app[BUS] = RedisBus(link) if link else LocalBus()
    # With Redis this process is a core of a deployment (a core alone owns everything).
    core = app[CLUSTER] = Core(link, bus, cfg, __version__) if link else None
    vault = app[VAULT] = VaultService(
        VaultStore(db),
        cfg.key_file(),
        os.environ.get(KEYS_ENV),
        bus,
        create=not cfg.secrets.key_file,  # the default file is ours to make; a named one is not
        shared=bool(cfg.storage.url),  # PostgreSQL: other cores sealed with the same key
    )
    guard = AddressGuard(cfg.probes)  # where probes and notifications may connect
    # The monitors' live state: the engine writes it; the dashboard and the views count it.
    runtimes = Runtimes()
    index = app[INVENTORY_INDEX] = InventoryIndex(db, bus)
    inventory, dashboard = _inventory(app, db, cache, bus, runtimes)
    auth = _auth(app, cfg, db)
    mon = builders.monitoring(
        app,
        cfg,
        db,
        bus,
        link=link,
        config_path=config_path,
        guard=guard,
        vault=vault,
        index=index,
        runtimes=runtimes,
        dashboard=dashboard,
        core=core,
    )
    hub = app[HUB] = _hub(cfg, bus, ScopeGates(index, mon.view))
    queue = RedisQueue(link) if link is not None else None
    actions = app[ACTIONS] = ActionService(
        ActionStore(db), inventory, bus, cfg.actions, queue=queue
    )
    # Resource alerts read the samples stream the sampler hands them, as it goes.
    alert_store = AlertStore(db)
    # With several cores each server's alerts are judged by its owner alone.
    alert_peers = AlertPeers(core, bus) if core is not None else None
    alerts = app[ALERTS] = AlertService(
        RuleBook(alert_store, bus if core is not None else None),
        alert_store,
        index=index,
        maintenance=mon.maintenance,
        notifier=mon.notifier,
        bus=bus,
        runtimes=runtimes,
        owns=alert_peers.owns if alert_peers is not None else None,
    )
    if alert_peers is not None:
        alert_peers.follow(alerts)
    sampler = app[SAMPLER] = Sampler(
        cfg.sampling,
        db,
        bus,
        inventory=inventory,
        index=index,
        writer=SampleWriter(db, cfg.sampling, cfg.history),
        query=SampleQuery(db),
        watchers=[alerts.observe],
    )
    snapshots.register(
        hub,
        view=mon.view,
        monitors=mon.store,
        sampler=sampler,
        actions=actions,
        alerts=alerts,
        desk=app[INCIDENTS],
    )
    # With Redis, other processes read the latest state of monitors and servers from there.
    mirror = None
    if link is not None:

        def servers() -> list[str]:
            return [s.server_id for s in sampler.all_latest()]

        mirror = StateMirror(bus, link, monitors=mon.view.ids, servers=servers)
    assistant = app[ASSISTANT] = _assistant(cfg, vault, inventory)
    exporter = app[METRICS] = builders.exporter(
        cfg,
        link,
        bus,
        mon,
        index=index,
        sampler=sampler,
        hub=hub,
        assistant=assistant,
        core=core,
        alerts=alerts,
    )
    # The config file's [[monitors]], [[maintenance]] and [[notifications]], at start and SIGHUP.
    declared = ConfigSync(mon.monitors, mon.maintenance, mon.notifier, bus, core)
    reloader = app[RELOADER] = Reloader(
        cfg,
        guard=guard,
        authenticator=auth.authenticator,
        jwt=auth.jwt,
        limiter=auth.limiter,
        exporter=exporter,
        declared=declared,
        status_pages=mon.status_pages,
        alert_rules=alerts.rules,
    )
    app[RESTART_REQUIRED] = reloader.restart_required  # the reloader updates it in place
    surface.register(app, cfg, exporter.http)

    # Start order; aiohttp stops them in reverse, and only those that started.
    started = [
        # First up, last down: every Redis user starts after it.
        lifecycle.redis_ctx(link, bus) if link is not None else None,
        lifecycle.database_ctx(db, demo_inventory=inventory if demo_data else None),
        lifecycle.vault_ctx(vault),
        # Before its readers (the engine, the sampler, the metric labels): loaded when they start.
        lifecycle.inventory_index_ctx(index),
        lifecycle.maintenance_ctx(mon.maintenance),
        lifecycle.notifier_ctx(mon.notifier, bus),
        lifecycle.task_ctx(mon.reminders.run),  # repeat notifications of open incidents
        lifecycle.history_ctx(mon.history, core),  # stops after the engine: the last results land
        lifecycle.engine_ctx(cfg, mon.monitors, declared),
        lifecycle.remote_results_ctx(mon.remote, mon.engine),
        lifecycle.auth_ctx(cfg, auth.tokens, auth.jwt),
        lifecycle.audit_retention_ctx(auth.audit, cfg.audit.retention_days),
        lifecycle.hub_ctx(hub),
        lifecycle.mirror_ctx(mirror) if mirror is not None else None,
        lifecycle.actions_ctx(actions, core),
        lifecycle.alerts_ctx(alerts, cfg.alert_rules, alert_peers),  # before the samples it reads
        lifecycle.sampling_ctx(sampler, core),
        lifecycle.assistant_ctx(assistant),
        metrics_listener_ctx(cfg.metrics),  # the optional /metrics listener of its own
        lifecycle.scheduler_ctx(mon.engine),  # probing starts once the rest has loaded
        # Last up, first down: no reload reaches a service that has stopped.
        sighup_ctx(reloader, reread, config_path, notifier) if reread is not None else None,
    ]
    app.cleanup_ctx.extend(ctx for ctx in started if ctx is not None)
    app.on_shutdown.append(lifecycle.going_away(hub))
    return app
