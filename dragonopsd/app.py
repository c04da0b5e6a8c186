"""The app factory: the one place where services are built, wired together and started."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable
from importlib import resources
from pathlib import Path

from aiohttp import web

from . import __version__, demo, lifecycle
from .actions.queue import RedisQueue
from .actions.service import ActionService
from .api import bundle, openapi, routes
from .api.bundle import WEB_BUNDLE
from .api.codec import encode
from .api.forwarded import PROXIES, Proxies
from .api.front import FRONT, Front
from .api.metrics import listener_ctx as metrics_listener_ctx
from .api.route import ROUTE_INDEX
from .appkeys import (
    ACTIONS,
    ASSISTANT,
    AUDIT,
    AUTH_LIMITER,
    AUTHENTICATOR,
    BUS,
    CACHE,
    CONFIG,
    DASHBOARD,
    DATABASE,
    DOCS_ASSETS,
    ENGINE_VIEW,
    HISTORY_QUERY,
    HISTORY_WRITER,
    HUB,
    INVENTORY,
    INVENTORY_INDEX,
    MAINTENANCE,
    METRICS,
    MONITORS,
    NOTIFIER,
    OPENAPI,
    REDIS,
    RESTART_REQUIRED,
    SAMPLER,
    SETTINGS,
    STATUS_PAGES,
    VAULT,
    DocsAssets,
)
from .assistant.credentials import secret_value
from .assistant.service import AssistantService
from .auth.authenticator import Authenticator
from .auth.jwt import JwtVerifier
from .auth.limiter import FailureLimiter
from .auth.tokens import TokenAuth
from .bus import Bus, LocalBus, RedisBus
from .cache import Cache, MemoryCache, RedisCache
from .config import Config
from .dashboard import DashboardService
from .inventory.index import InventoryIndex
from .inventory.service import InventoryService
from .live.caps import SocketCaps
from .live.hub import Hub, Item
from .live.redis_state import StateMirror
from .live.topics import topic_id
from .metrics.assistant import AssistantCollector
from .metrics.exporter import Exporter
from .metrics.labels import InventoryLabels
from .metrics.redislink import RedisCollector
from .model.inventory import InventoryChanged
from .monitoring.engine import Engine
from .monitoring.maintenance import MaintenanceService
from .monitoring.multi import Rounds
from .monitoring.prober import Prober
from .monitoring.remote import RemoteProbes
from .monitoring.runtime import Runtimes
from .monitoring.service import MonitorService
from .monitoring.statuspage import StatusPages
from .monitoring.topology import Topology
from .monitoring.verdict import Verdict
from .monitoring.views import EngineView
from .netguard import AddressGuard, AddressSet
from .notify.dispatcher import Dispatcher
from .redislink.client import RedisLink
from .reload import RELOADER, Reloader
from .sampling.sampler import Sampler
from .secrets.crypto import KEYS_ENV
from .secrets.vault import VaultService
from .store.actions import ActionStore
from .store.audit import AuditStore
from .store.backend import database_for
from .store.history import HistoryWriter
from .store.history_query import HistoryQuery
from .store.inventory import InventoryStore
from .store.maintenance import MaintenanceStore
from .store.monitors import MonitorStore
from .store.notifications import NotificationStore
from .store.samples import SampleQuery, SampleWriter
from .store.settings import SettingsStore
from .store.sql import Database
from .store.tokens import TokenStore
from .store.vault import VaultStore

log = logging.getLogger("dragonopsd")


def _docs_assets() -> DocsAssets:
    web_dir = resources.files("dragonopsd.web")
    return DocsAssets(
        html=web_dir.joinpath("docs.html").read_bytes(),
        css=web_dir.joinpath("docs.css").read_bytes(),
        js=web_dir.joinpath("docs.js").read_bytes(),
    )


def _wire_inventory(
    app: web.Application, db: Database, cache: Cache, bus: LocalBus
) -> tuple[InventoryService, InventoryIndex]:
    """The inventory service (its writes drop the dashboard's cached counts) and the index
    its readers look the hierarchy up in (started in build_app, once the database is open)."""
    store = InventoryStore(db)
    dashboard = app[DASHBOARD] = DashboardService(store, cache, monitor_counts=_monitor_counts(app))

    async def invalidate_stats(_: InventoryChanged) -> None:
        await dashboard.invalidate()

    inventory = app[INVENTORY] = InventoryService(store, bus, hooks=[invalidate_stats])
    index = app[INVENTORY_INDEX] = InventoryIndex(db, bus)
    return inventory, index


def _wire_auth(app: web.Application, cfg: Config, db: Database) -> JwtVerifier:
    """Tokens, JWTs, failure limiting, audit log and settings; returns the JWT verifier."""
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
    return jwt


def _wire_monitoring(
    app: web.Application,
    cfg: Config,
    db: Database,
    bus: LocalBus,
    config_path: Path | None,
    *,
    guard: AddressGuard,
    index: InventoryIndex,
) -> None:
    """Maintenance, notifications, history and the probe engine, in start order."""
    maintenance = app[MAINTENANCE] = MaintenanceService(MaintenanceStore(db))
    notifier = app[NOTIFIER] = Dispatcher(NotificationStore(db, keys=app[VAULT]), guard=guard)
    history = app[HISTORY_WRITER] = HistoryWriter(db, cfg.history)
    history_query = app[HISTORY_QUERY] = HistoryQuery(db)
    store = MonitorStore(db)
    dashboard = app[DASHBOARD]
    runtimes = Runtimes()
    verdict = Verdict(
        store=store,
        history=history,
        maintenance=maintenance,
        notifier=notifier,
        bus=bus,
        runtimes=runtimes,
        topology=Topology(app[INVENTORY_INDEX]),
        on_change=[dashboard.invalidate],
    )
    prober = Prober(cfg.probes, guard, secrets=app[VAULT].value_by_name)
    remote = RemoteProbes(app[REDIS], history)
    rounds = Rounds(runtimes=runtimes, verdict=verdict, prober=prober, remote=remote)
    engine = Engine(
        cfg,
        store=store,
        history_query=history_query,
        runtimes=runtimes,
        verdict=verdict,
        rounds=rounds,
        prober=prober,
    )
    view = app[ENGINE_VIEW] = EngineView(runtimes, engine.scheduler, history)
    monitors = app[MONITORS] = MonitorService(engine, view, history_query, config_path)
    app[STATUS_PAGES] = StatusPages(cfg.status_page, view, store, history_query)
    app.cleanup_ctx.append(lifecycle.maintenance_ctx)
    app.cleanup_ctx.append(lifecycle.notifier_ctx)
    app.cleanup_ctx.append(lifecycle.history_ctx(history))
    app.cleanup_ctx.append(lifecycle.engine_ctx(cfg, monitors))
    app.cleanup_ctx.append(
        lifecycle.task_ctx(lambda: remote.consume(engine.remote_result), recancel=True)
    )


def _wire_live(app: web.Application, bus: LocalBus) -> None:
    """The websocket hub and the snapshots of the topics whose state lives here (sampling
    and actions register theirs the same way: live/hub.py's docstring)."""
    server = app[CONFIG].server
    caps = SocketCaps(
        server.max_websockets_per_principal,
        server.max_websockets_per_address,
        AddressSet(server.per_address_exempt),
    )
    hub = app[HUB] = Hub(bus, caps)
    view = app[ENGINE_VIEW]
    store = app[MONITORS].store

    async def all_monitors(topic: str) -> list[Item]:
        return [(topic, "monitor.state", s) for s in view.states()]

    async def one_monitor(topic: str) -> list[Item]:
        state = view.state(topic_id(topic) or "")
        return [] if state is None else [(topic, "monitor.state", state)]

    async def open_incidents(topic: str) -> list[Item]:
        rows = await store.incidents(
            monitor_id=None, state="open", since=None, before=None, limit=1000
        )
        return [(topic, "incident.open", i) for i in rows]

    async def nothing(topic: str) -> list[Item]:
        return []  # inventory has no "latest state": clients read it over REST

    hub.register_snapshot("monitors", all_monitors)
    hub.register_snapshot("monitors.{id}", one_monitor)
    hub.register_snapshot("incidents", open_incidents)
    hub.register_snapshot("inventory", nothing)

    async def going_away(app: web.Application) -> None:
        await hub.close_all()  # before aiohttp waits (shutdown_timeout) for open handlers

    app.on_shutdown.append(going_away)
    app.cleanup_ctx.append(lifecycle.hub_ctx(hub))
    link = app[REDIS]
    if link is not None:  # other processes read the latest state from Redis
        mirror = StateMirror(
            bus,
            link,
            monitors=view.ids,
            servers=lambda: [s.server_id for s in app[SAMPLER].all_latest()],
        )
        app.cleanup_ctx.append(lifecycle.task_ctx(mirror.run, recancel=True))


def _wire_sampling(
    app: web.Application,
    cfg: Config,
    db: Database,
    bus: LocalBus,
    inventory: InventoryService,
    *,
    index: InventoryIndex,
) -> None:
    """The sampler with its history writer, and its websocket snapshot (after the hub)."""
    writer = SampleWriter(db, cfg.sampling, cfg.history)
    sampler = app[SAMPLER] = Sampler(
        cfg.sampling,
        db,
        bus,
        inventory=inventory,
        index=index,
        writer=writer,
        query=SampleQuery(db),
    )

    async def metrics_snapshot(topic: str) -> list[Item]:
        wanted = topic_id(topic)  # None for servers.*.metrics
        one = sampler.latest(wanted) if wanted else None
        samples = sampler.all_latest() if wanted is None else [one] if one else []
        return [(f"servers.{s.server_id}.metrics", "server.metrics", s) for s in samples]

    app[HUB].register_snapshot("servers.*.metrics", metrics_snapshot)
    app[HUB].register_snapshot("servers.{id}.metrics", metrics_snapshot)
    app.cleanup_ctx.append(lifecycle.sampling_ctx(sampler))


def _wire_actions(
    app: web.Application, db: Database, bus: LocalBus, inventory: InventoryService
) -> None:
    """Server actions, and their websocket snapshot: the ones queued or running (after the hub)."""
    link = app[REDIS]
    queue = RedisQueue(link) if link is not None else None
    actions = app[ACTIONS] = ActionService(
        ActionStore(db), inventory, bus, app[CONFIG].actions, queue=queue
    )

    async def pending_actions(topic: str) -> list[Item]:
        return [(topic, "action.updated", e) for e in await actions.pending()]

    app[HUB].register_snapshot("actions", pending_actions)
    app.cleanup_ctx.append(lifecycle.actions_ctx)


def _wire_metrics(app: web.Application, cfg: Config, bus: Bus, index: InventoryIndex) -> None:
    """Prometheus: collectors over the services built above, labelled from the inventory
    index, and the optional listener of its own (started last, stopped first)."""
    link = app[REDIS]
    exporter = app[METRICS] = Exporter(
        view=app[ENGINE_VIEW],
        scheduler=app[MONITORS].engine.scheduler,
        history=app[HISTORY_WRITER],
        sampler=app[SAMPLER],
        hub=app[HUB],
        notifier=app[NOTIFIER],
        labels=InventoryLabels(index),
        version=__version__,
        token=cfg.metrics.token,
        redis_up=(lambda: link.up) if link is not None else None,
    )
    exporter.add(AssistantCollector(app[ASSISTANT].usage))
    if link is not None:
        redis_bus = bus if isinstance(bus, RedisBus) else None
        exporter.add(RedisCollector(link, redis_bus, app[MONITORS].engine.remote))
    app.cleanup_ctx.append(metrics_listener_ctx(cfg.metrics))


def _wire_assistant(app: web.Application, cfg: Config, inventory: InventoryService) -> None:
    """The assistant; with [ai] provider = "openai" its one model client opens at start and
    closes at shutdown. The API key secret is read per call, so a rotated key is used at once."""
    vault = app[VAULT]
    name = cfg.ai.api_key_secret

    async def secret_key() -> str:
        return await secret_value(vault, name)

    assistant = app[ASSISTANT] = AssistantService(cfg.ai, inventory, secret_key if name else None)

    async def assistant_ctx(app: web.Application) -> AsyncIterator[None]:
        await assistant.start()
        yield
        await assistant.close()

    app.cleanup_ctx.append(assistant_ctx)


def _monitor_counts(app: web.Application) -> Callable[[], dict[str, int]]:
    """The engine view's counts, read at call time: the view is built later from the same app,
    so the dashboard is whole when built and nothing is patched onto it."""

    def counts() -> dict[str, int]:
        return app[ENGINE_VIEW].counts()

    return counts


def build_app(
    cfg: Config, *, demo_data: bool = False, config_path: Path | None = None
) -> web.Application:
    """Build the application for cfg; nothing touches disk or network until it starts."""
    # No middlewares: every handler is wrapped in the request front at registration.
    app = web.Application(client_max_size=cfg.server.max_body_bytes)
    db = database_for(cfg)
    link = RedisLink(cfg.redis) if cfg.redis.url else None
    cache: Cache = RedisCache(link) if link else MemoryCache()
    bus = RedisBus(link) if link else LocalBus()
    app[REDIS] = link
    inventory, index = _wire_inventory(app, db, cache, bus)
    app[CONFIG] = cfg
    app[DATABASE] = db
    app[CACHE] = cache
    app[BUS] = bus
    vault = app[VAULT] = VaultService(
        VaultStore(db),
        cfg.key_file(),
        os.environ.get(KEYS_ENV),
        bus,
        create=not cfg.secrets.key_file,  # the default file is ours to make; a named one is not
    )

    async def database_ctx(app: web.Application) -> AsyncIterator[None]:
        await db.open()
        log.info("store %s at schema version %d", db.where, db.schema_version)
        if demo_data and await demo.seed(inventory):
            log.info("seeded the demo inventory")
        yield
        await db.close()

    async def vault_ctx(app: web.Application) -> AsyncIterator[None]:
        await vault.start()  # a key file that does not match the database refuses the start
        yield

    if link is not None:  # first up, last down: every Redis user starts after it
        app.cleanup_ctx.append(lifecycle.redis_ctx(link, bus))
    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(vault_ctx)
    # Before its readers (the engine, the sampler, the metric labels): loaded when they start.
    app.cleanup_ctx.append(lifecycle.inventory_index_ctx(index))
    guard = AddressGuard(cfg.probes)
    _wire_monitoring(app, cfg, db, bus, config_path, guard=guard, index=index)
    jwt = _wire_auth(app, cfg, db)
    _wire_live(app, bus)
    _wire_actions(app, db, bus, inventory)
    _wire_sampling(app, cfg, db, bus, inventory, index=index)
    _wire_assistant(app, cfg, inventory)
    _wire_metrics(app, cfg, bus, index)
    reloader = app[RELOADER] = Reloader(
        cfg,
        guard=guard,
        authenticator=app[AUTHENTICATOR],
        jwt=jwt,
        limiter=app[AUTH_LIMITER],
        exporter=app[METRICS],
        monitors=app[MONITORS],
        status_pages=app[STATUS_PAGES],
    )
    app[RESTART_REQUIRED] = reloader.restart_required  # the reloader updates it in place
    table = routes.table()
    app[PROXIES] = Proxies(cfg.server.trusted_proxies)
    front = app[FRONT] = Front(cfg.server.cors_origins, app[METRICS].http)
    routes.register(app, table, front)
    app[ROUTE_INDEX] = {(r.method, r.path): r for r in table}
    app[OPENAPI] = encode(openapi.build(table, __version__))
    # Read once at build time: a few KB from the installed package, before any request.
    app[DOCS_ASSETS] = _docs_assets()
    app[WEB_BUNDLE] = bundle.load()
    return app
