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
from prometheus_client.registry import Collector

from . import __version__, lifecycle, snapshots, surface
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
    PUSHES,
    REDIS,
    RESTART_REQUIRED,
    SAMPLER,
    SETTINGS,
    STATUS_PAGES,
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
from .metrics.alerts import AlertCollector
from .metrics.assistant import AssistantCollector
from .metrics.cluster import ClusterCollector
from .metrics.exporter import Exporter
from .metrics.labels import InventoryLabels
from .metrics.redislink import RedisCollector
from .model.inventory import InventoryChanged
from .monitoring.alert_rules import RuleBook
from .monitoring.alerts import AlertService
from .monitoring.engine import Engine
from .monitoring.maintenance import MaintenanceService
from .monitoring.multi import Rounds
from .monitoring.prober import Prober
from .monitoring.push import Pushes
from .monitoring.remote import RemoteProbes
from .monitoring.runtime import Runtimes
from .monitoring.service import MonitorService
from .monitoring.statuspage import StatusPages
from .monitoring.topology import Topology
from .monitoring.verdict import Verdict
from .monitoring.views import EngineView, status_counts
from .netguard import AddressGuard, AddressSet
from .notify.dispatcher import Dispatcher
from .redislink.client import RedisLink
from .reload import RELOADER, Reloader, sighup_ctx
from .sampling.sampler import Sampler
from .secrets.crypto import KEYS_ENV
from .secrets.vault import VaultService
from .store.actions import ActionStore
from .store.alerts import AlertStore
from .store.audit import AuditStore
from .store.backend import database_for
from .store.history import HistoryWriter
from .store.history_query import HistoryQuery
from .store.inventory import InventoryStore
from .store.maintenance import MaintenanceStore
from .store.monitors import MonitorStore
from .store.notifications import NotificationStore
from .store.pings import PingStore
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


@dataclass(frozen=True)
class _Monitoring:
    """What the monitoring builder made that others read, start or reconfigure."""

    maintenance: MaintenanceService
    notifier: Dispatcher
    history: HistoryWriter
    store: MonitorStore
    engine: Engine
    remote: RemoteProbes
    view: EngineView
    monitors: MonitorService
    status_pages: StatusPages


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


def _monitoring(
    app: web.Application,
    cfg: Config,
    db: Database,
    bus: LocalBus,
    *,
    link: RedisLink | None,
    config_path: Path | None,
    guard: AddressGuard,
    vault: VaultService,
    index: InventoryIndex,
    runtimes: Runtimes,
    dashboard: DashboardService,
    core: Core | None,
) -> _Monitoring:
    """Maintenance, notifications, history and the probe engine with its one verdict path."""
    maintenance = app[MAINTENANCE] = MaintenanceService(MaintenanceStore(db))
    notifier = app[NOTIFIER] = Dispatcher(NotificationStore(db, keys=vault), guard=guard)
    history = HistoryWriter(db, cfg.history)
    app[HISTORY_WRITER] = history
    history_query = app[HISTORY_QUERY] = HistoryQuery(db)
    store = MonitorStore(db)
    verdict = Verdict(
        store=store,
        history=history,
        maintenance=maintenance,
        notifier=notifier,
        bus=bus,
        runtimes=runtimes,
        topology=Topology(index),
        on_change=[dashboard.invalidate],
    )
    prober = Prober(cfg.probes, guard, secrets=vault.value_by_name)
    remote = RemoteProbes(link, history, core.node if core is not None else "")
    rounds = Rounds(runtimes=runtimes, verdict=verdict, prober=prober, remote=remote)
    pushes = app[PUSHES] = Pushes(verdict=verdict, pings=PingStore(db), runtimes=runtimes)
    engine = Engine(
        cfg,
        store=store,
        history_query=history_query,
        runtimes=runtimes,
        verdict=verdict,
        rounds=rounds,
        prober=prober,
        pushes=pushes,
        core=core,
    )
    # With several cores the metrics export the monitors this core owns, and only those.
    owned = engine.owned if core is not None else None
    view = app[ENGINE_VIEW] = EngineView(runtimes, engine.scheduler, history, owned)
    monitors = app[MONITORS] = MonitorService(engine, view, history_query, config_path)
    pages = app[STATUS_PAGES] = StatusPages(cfg.status_page, view, store, history_query)
    return _Monitoring(maintenance, notifier, history, store, engine, remote, view, monitors, pages)


def _hub(cfg: Config, bus: LocalBus) -> Hub:
    """The websocket hub, with the per-principal and per-address socket caps."""
    server = cfg.server
    caps = SocketCaps(
        server.max_websockets_per_principal,
        server.max_websockets_per_address,
        AddressSet(server.per_address_exempt),
    )
    return Hub(bus, caps)


def _assistant(cfg: Config, vault: VaultService, inventory: InventoryService) -> AssistantService:
    """The assistant. The API key secret is read per call, so a rotated key is used at once."""
    name = cfg.ai.api_key_secret

    async def secret_key() -> str:
        return await secret_value(vault, name)

    return AssistantService(cfg.ai, inventory, secret_key if name else None)


def _exporter(
    cfg: Config,
    link: RedisLink | None,
    bus: LocalBus,
    mon: _Monitoring,
    *,
    index: InventoryIndex,
    sampler: Sampler,
    hub: Hub,
    assistant: AssistantService,
    core: Core | None,
    alerts: AlertService,
) -> Exporter:
    """Prometheus: collectors over the services built before it, labelled from the index."""
    labels = InventoryLabels(index)
    collectors: list[Collector] = [
        AssistantCollector(assistant.usage),
        AlertCollector(alerts, labels),
    ]
    if link is not None:
        redis_bus = bus if isinstance(bus, RedisBus) else None
        collectors.append(RedisCollector(link, redis_bus, mon.remote))
    if core is not None:
        collectors.append(ClusterCollector(core, mon.view))
    return Exporter(
        view=mon.view,
        scheduler=mon.engine.scheduler,
        history=mon.history,
        sampler=sampler,
        hub=hub,
        notifier=mon.notifier,
        labels=labels,
        version=__version__,
        token=cfg.metrics.token,
        redis_up=(lambda: link.up) if link is not None else None,
        collectors=collectors,
    )


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
    mon = _monitoring(
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
    hub = app[HUB] = _hub(cfg, bus)
    queue = RedisQueue(link) if link is not None else None
    actions = app[ACTIONS] = ActionService(
        ActionStore(db), inventory, bus, cfg.actions, queue=queue
    )
    # Resource alerts read the samples stream the sampler hands them, as it goes.
    alert_store = AlertStore(db)
    alerts = app[ALERTS] = AlertService(
        RuleBook(alert_store, bus if core is not None else None),
        alert_store,
        index=index,
        maintenance=mon.maintenance,
        notifier=mon.notifier,
        bus=bus,
        runtimes=runtimes,
        owns=core.owns if core is not None else None,
    )
    if core is not None:
        core.on_change(alerts.adopt)  # servers whose owner went away come to their new owner
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
        hub, view=mon.view, monitors=mon.store, sampler=sampler, actions=actions, alerts=alerts
    )
    # With Redis, other processes read the latest state of monitors and servers from there.
    mirror = None
    if link is not None:

        def servers() -> list[str]:
            return [s.server_id for s in sampler.all_latest()]

        mirror = StateMirror(bus, link, monitors=mon.view.ids, servers=servers)
    assistant = app[ASSISTANT] = _assistant(cfg, vault, inventory)
    exporter = app[METRICS] = _exporter(
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
    reloader = app[RELOADER] = Reloader(
        cfg,
        guard=guard,
        authenticator=auth.authenticator,
        jwt=auth.jwt,
        limiter=auth.limiter,
        exporter=exporter,
        monitors=mon.monitors,
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
        lifecycle.history_ctx(mon.history, core),  # stops after the engine: the last results land
        lifecycle.engine_ctx(cfg, mon.monitors),
        lifecycle.remote_results_ctx(mon.remote, mon.engine),
        lifecycle.auth_ctx(cfg, auth.tokens, auth.jwt),
        lifecycle.audit_retention_ctx(auth.audit, cfg.audit.retention_days),
        lifecycle.hub_ctx(hub),
        lifecycle.mirror_ctx(mirror) if mirror is not None else None,
        lifecycle.actions_ctx(actions, core),
        lifecycle.alerts_ctx(alerts, cfg.alert_rules),  # before the samples it reads
        lifecycle.sampling_ctx(sampler, core),
        lifecycle.assistant_ctx(assistant),
        metrics_listener_ctx(cfg.metrics),  # the optional /metrics listener of its own
        # Last up, first down: no reload reaches a service that has stopped.
        sighup_ctx(reloader, reread, config_path, notifier) if reread is not None else None,
    ]
    app.cleanup_ctx.extend(ctx for ctx in started if ctx is not None)
    app.on_shutdown.append(lifecycle.going_away(hub))
    return app
