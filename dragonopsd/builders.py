"""Builders for the two largest service groups build_app wires: monitoring (maintenance,
notifications, history, the probe engine with its one verdict path, incidents and status pages)
and the Prometheus exporter over everything built before it. Only app.py calls them; like it,
they build each service with its collaborators in its constructor.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from prometheus_client.registry import Collector

from . import __version__
from .appkeys import (
    ENGINE_VIEW,
    HISTORY_QUERY,
    HISTORY_WRITER,
    INCIDENTS,
    MAINTENANCE,
    MONITOR_PLACES,
    MONITORS,
    NOTIFIER,
    PUSHES,
    REMOTE,
    STATUS_PAGES,
)
from .assistant.service import AssistantService
from .bus import LocalBus, RedisBus
from .cluster.core import Core
from .config import Config
from .dashboard import DashboardService
from .inventory.index import InventoryIndex
from .live.hub import Hub
from .metrics.alerts import AlertCollector
from .metrics.assistant import AssistantCollector
from .metrics.cluster import ClusterCollector
from .metrics.exporter import Exporter
from .metrics.labels import InventoryLabels
from .metrics.redislink import RedisCollector
from .monitoring.alerts import AlertService
from .monitoring.engine import Engine
from .monitoring.incident_desk import IncidentDesk
from .monitoring.maintenance import MaintenanceService
from .monitoring.multi import Rounds
from .monitoring.prober import Prober
from .monitoring.push import Pushes
from .monitoring.reminders import Reminders
from .monitoring.remote import RemoteProbes
from .monitoring.runtime import Runtimes
from .monitoring.service import MonitorService
from .monitoring.statuspage import StatusPages
from .monitoring.topology import Topology
from .monitoring.verdict import Verdict
from .monitoring.views import EngineView
from .netguard import AddressGuard
from .notify.dispatcher import Dispatcher
from .redislink.client import RedisLink
from .sampling.sampler import Sampler
from .secrets.vault import VaultService
from .store.history import HistoryWriter
from .store.history_query import HistoryQuery
from .store.incident_notes import IncidentNotesStore
from .store.maintenance import MaintenanceStore
from .store.monitors import MonitorStore
from .store.notifications import NotificationStore
from .store.pings import PingStore
from .store.placement import MonitorPlaces
from .store.sql import Database


@dataclass(frozen=True)
class Monitoring:
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
    reminders: Reminders


def monitoring(
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
) -> Monitoring:
    """Maintenance, notifications, history and the probe engine with its one verdict path."""
    maintenance = app[MAINTENANCE] = MaintenanceService(MaintenanceStore(db))
    notifier = app[NOTIFIER] = Dispatcher(
        NotificationStore(db, keys=vault), guard=guard, secrets=vault.value_by_name
    )
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
    remote = app[REMOTE] = RemoteProbes(link, history, core.node if core is not None else "")
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
    monitors = app[MONITORS] = MonitorService(engine, view, history_query, config_path, prober)
    app[MONITOR_PLACES] = MonitorPlaces(db)
    desk = app[INCIDENTS] = IncidentDesk(
        notes=IncidentNotesStore(db),
        monitors=store,
        bus=bus,
        notifier=notifier,
        runtimes=runtimes,
        topology=verdict.topology,
    )
    # With several cores each repeats the incidents of what it owns: its monitors, and the
    # manual incidents whose id hashes to it.
    reminders = Reminders(
        cfg.incidents.repeat_interval,
        desk=desk,
        notifier=notifier,
        runtimes=runtimes,
        owns=core.owns if core is not None else lambda _: True,
    )
    pages = app[STATUS_PAGES] = StatusPages(
        cfg.status_page,
        view,
        store,
        history_query,
        maintenance=maintenance,
        desk=desk,
    )
    return Monitoring(
        maintenance, notifier, history, store, engine, remote, view, monitors, pages, reminders
    )


def exporter(
    cfg: Config,
    link: RedisLink | None,
    bus: LocalBus,
    mon: Monitoring,
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
