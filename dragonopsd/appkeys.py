"""Typed keys for everything the app owns. A leaf: imports from the package are for typing only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from .actions.service import ActionService
    from .assistant.service import AssistantService
    from .auth.authenticator import Authenticator
    from .auth.limiter import FailureLimiter
    from .bus import LocalBus
    from .cache import Cache
    from .cluster.core import Core
    from .config import Config
    from .dashboard import DashboardService
    from .inventory.index import InventoryIndex
    from .inventory.service import InventoryService
    from .live.hub import Hub
    from .metrics.exporter import Exporter
    from .model.principal import Principal
    from .monitoring.alerts import AlertService
    from .monitoring.incident_desk import IncidentDesk
    from .monitoring.maintenance import MaintenanceService
    from .monitoring.push import Pushes
    from .monitoring.remote import RemoteProbes
    from .monitoring.service import MonitorService
    from .monitoring.statuspage import StatusPages
    from .monitoring.views import EngineView
    from .notify.dispatcher import Dispatcher
    from .redislink.client import RedisLink
    from .sampling.sampler import Sampler
    from .secrets.vault import VaultService
    from .store.audit import PendingEntry
    from .store.placement import MonitorPlaces
    from .store.protocols import AuditLog, HistoryReader, HistorySink, SettingsRepo, StoreHealth
    from .store.unit import UnitOfWork


@dataclass(frozen=True)
class DocsAssets:
    """The API reference page and the stylesheet and script it loads (no inline code, for CSP)."""

    html: bytes
    css: bytes
    js: bytes


CONFIG: web.AppKey[Config] = web.AppKey("config")
DATABASE: web.AppKey[StoreHealth] = web.AppKey("database")
# The same database, for the one caller that writes through several stores at once (import).
UNIT_OF_WORK: web.AppKey[UnitOfWork] = web.AppKey("unit_of_work")
CACHE: web.AppKey[Cache] = web.AppKey("cache")
# The Redis connection and its health; None when [redis] url is empty (one host, in-process).
REDIS: web.AppKey[RedisLink | None] = web.AppKey("redis")
# This core of a deployment of several (cluster/); None without [redis] url.
CLUSTER: web.AppKey[Core | None] = web.AppKey("cluster")
BUS: web.AppKey[LocalBus] = web.AppKey("bus")
INVENTORY: web.AppKey[InventoryService] = web.AppKey("inventory")
# The hierarchy in memory, for the engine, the sampler and the metric labels.
INVENTORY_INDEX: web.AppKey[InventoryIndex] = web.AppKey("inventory_index")
DASHBOARD: web.AppKey[DashboardService] = web.AppKey("dashboard")
OPENAPI: web.AppKey[bytes] = web.AppKey("openapi")
DOCS_ASSETS: web.AppKey[DocsAssets] = web.AppKey("docs_assets")

AUTHENTICATOR: web.AppKey[Authenticator] = web.AppKey("authenticator")
AUTH_LIMITER: web.AppKey[FailureLimiter] = web.AppKey("auth_limiter")
AUDIT: web.AppKey[AuditLog] = web.AppKey("audit")
SETTINGS: web.AppKey[SettingsRepo] = web.AppKey("settings")
VAULT: web.AppKey[VaultService] = web.AppKey("vault")
# The lead's scheduler calls app[NOTIFIER].publish(event) on transitions.
NOTIFIER: web.AppKey[Dispatcher] = web.AppKey("notifier")
MAINTENANCE: web.AppKey[MaintenanceService] = web.AppKey("maintenance")
# Resource alerts: the rule book (.rules) and their evaluation over the samples stream.
ALERTS: web.AppKey[AlertService] = web.AppKey("alerts")

HISTORY_WRITER: web.AppKey[HistorySink] = web.AppKey("history_writer")
HISTORY_QUERY: web.AppKey[HistoryReader] = web.AppKey("history_query")
MONITORS: web.AppKey[MonitorService] = web.AppKey("monitors")
# Which server and environment any monitor is attached to (scoped callers' filters).
MONITOR_PLACES: web.AppKey[MonitorPlaces] = web.AppKey("monitor_places")
# Manual incidents, updates and acknowledgements (monitoring/incident_desk.py).
INCIDENTS: web.AppKey[IncidentDesk] = web.AppKey("incidents")
# Push monitors' calls, ping log and schedule clocks (monitoring/push.py).
PUSHES: web.AppKey[Pushes] = web.AppKey("pushes")
# Read-only: the board, counts and engine figures (monitoring/views.py).
ENGINE_VIEW: web.AppKey[EngineView] = web.AppKey("engine_view")
# Remote probing over Redis: jobs out, results in, and which locations have live workers.
REMOTE: web.AppKey[RemoteProbes] = web.AppKey("remote")
# The public status pages of [status_page] (monitoring/statuspage.py).
STATUS_PAGES: web.AppKey[StatusPages] = web.AppKey("status_pages")
# The websocket hub: clients, topic index, seq counters, snapshot providers (live/hub.py).
HUB: web.AppKey[Hub] = web.AppKey("hub")
ACTIONS: web.AppKey[ActionService] = web.AppKey("actions")
# The infrastructure assistant: providers, per-caller limit, .usage counters (assistant/).
ASSISTANT: web.AppKey[AssistantService] = web.AppKey("assistant")
# Prometheus: the registry, the scrape, and the request counters the request front feeds.
METRICS: web.AppKey[Exporter] = web.AppKey("metrics")

# Server samples: the tick, agent pushes, latest()/all_latest(), .writer and .query (history).
SAMPLER: web.AppKey[Sampler] = web.AppKey("sampler")

# The config keys a reload (SIGHUP) could not apply, kept current by the reloader (/readyz).
RESTART_REQUIRED: web.AppKey[list[str]] = web.AppKey("restart_required")

REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id")
PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal")
# An audited call's entry until it is written (api/access.py, store/audit.py).
AUDIT_PENDING: web.RequestKey[PendingEntry] = web.RequestKey("audit_pending")
