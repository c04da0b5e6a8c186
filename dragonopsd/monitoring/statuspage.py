"""Public status pages: the monitors a page lists, reduced to what anyone may see.

A page shows each listed monitor's name, current status and daily uptime, the recent
incidents of those monitors (when, how long; never the cause, which can quote a target) with
the updates people wrote (their messages only), manual incidents on anything a listed monitor
sits under, and the maintenance windows planned for them. Targets,
URLs, hosts, messages and ids of the inventory never leave this module: the Structs below are
the whole public shape. The pages are unauthenticated, so the expensive part (90 days of
rollups per monitor, incidents) is read at most once per ``cache_seconds`` per page, under one
lock, whatever the number of visitors; the status itself is read live from the engine view.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..config import StatusPageConfig
from ..model.inventory import Wire
from ..model.monitor import Scope
from ..store.incident_notes import IncidentUpdate, ManualIncident
from ..store.protocols import HistoryReader, MonitorRepo
from .incident_desk import IncidentDesk
from .maintenance import MaintenanceService
from .views import EngineView

log = logging.getLogger("dragonopsd.statuspage")
DAY = 86_400.0
DAYS = 90
INCIDENTS = 20
PLANNED_DAYS = 30  # maintenance further ahead than this is not news yet


class DayBar(Wire, kw_only=True):
    """One UTC day of one monitor: uptime share (null: no checks that day)."""

    date: str
    uptime: float | None
    down: int


class PublicMonitor(Wire, kw_only=True):
    """A monitor as a status page shows it."""

    name: str
    status: str
    uptime: float | None  # over the days shown
    days: list[DayBar]


class PublicUpdate(Wire, kw_only=True):
    """An update as a status page shows it: the state, the words, the time (not the author)."""

    state: str
    message: str
    at: str


class PublicIncident(Wire, kw_only=True, omit_defaults=True):
    """An incident as a status page shows it: which service, when, and for how long; a
    manual one has its title, severity and state. Only what an incident has is sent."""

    id: str
    monitor_name: str
    opened_at: str
    closed_at: str | None
    duration_seconds: float | None
    title: str | None = None
    severity: str | None = None
    state: str | None = None
    updates: list[PublicUpdate] = []


class PublicMaintenance(Wire, kw_only=True):
    """A maintenance window planned for listed monitors: its name and its times."""

    name: str
    starts_at: str
    ends_at: str
    active: bool


class PublicPage(Wire, kw_only=True):
    """GET /api/status-page and /api/status-page/{slug}: everything a status page renders."""

    slug: str
    title: str
    status: str  # operational | degraded | outage | maintenance | empty
    updated_at: str
    monitors: list[PublicMonitor]
    incidents: list[PublicIncident]
    planned: list[PublicMaintenance] = []
    # What the configuration gets wrong about this page (a name that matches no monitor, or
    # several): said here, in the log and by check-config, instead of showing nothing.
    warnings: list[str] = []


@dataclass(frozen=True)
class PageSpec:
    """A page as configured: slug ("" for /status), title, monitor references, and the
    config key that lists them (for warnings)."""

    slug: str
    title: str
    refs: tuple[str, ...]
    key: str = "status_page.monitors"


@dataclass
class _Cached:
    expires: float
    ids: list[str]
    monitors: list[PublicMonitor]
    incidents: list[PublicIncident]
    planned: list[PublicMaintenance] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def reference_warnings(
    key: str, refs: tuple[str, ...], names: dict[str, int], ids: set[str]
) -> list[str]:
    """What is wrong with a page's monitor references, given how many monitors carry each
    name and which ids exist."""
    warnings = []
    for ref in refs:
        count = names.get(ref, 0)
        if count > 1:
            warnings.append(f"{key}: '{ref}' matches {count} monitors; all of them are shown")
        elif count == 0 and ref not in ids:
            warnings.append(f"{key}: '{ref}' names no monitor; nothing is shown for it")
    return warnings


def _public_updates(updates: list[IncidentUpdate]) -> list[PublicUpdate]:
    return [PublicUpdate(state=u.state, message=u.message, at=u.at) for u in updates]


def _touches(incident: ManualIncident, scope: Scope) -> bool:
    place = {
        "monitor": scope.monitor_id,
        "server": scope.server_id,
        "environment": scope.environment_id,
        "project": scope.project_id,
        "client": scope.client_id,
    }
    return any(place[t.kind] == t.id for t in incident.targets)


def _iso(ts: float) -> str:
    """The API's time format (clock.now_iso), so it compares with stored times as text."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


def _iso_exact(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _date(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def overall(statuses: list[str]) -> str:
    """One word for the whole page, from its monitors' statuses."""
    if not statuses:
        return "empty"  # "operational" would claim something about services nobody listed
    down = statuses.count("down")
    if down and down == len(statuses):
        return "outage"
    if down:
        return "degraded"
    if "maintenance" in statuses:
        return "maintenance"
    return "operational"


class StatusPages:
    """The configured pages and their public views."""

    def __init__(
        self,
        cfg: StatusPageConfig,
        view: EngineView,
        store: MonitorRepo,
        history: HistoryReader,
        *,
        maintenance: MaintenanceService,
        desk: IncidentDesk,
    ) -> None:
        self._view = view
        self._store = store
        self._history = history
        self._maintenance = maintenance
        self._desk = desk
        self._logged: set[str] = set()  # warnings already in the log (once each per config)
        self._lock = asyncio.Lock()
        self._cache: dict[str, _Cached] = {}
        self._pages: dict[str, PageSpec] = {}
        self._refs: frozenset[str] = frozenset()
        self._ttl = 0.0
        self.configure(cfg)

    def configure(self, cfg: StatusPageConfig) -> None:
        """Take a (re)loaded [status_page] section; cached views are dropped."""
        pages = [PageSpec("", cfg.title, tuple(cfg.monitors))]
        pages += [
            PageSpec(p.slug, p.title, tuple(p.monitors), f"status_page.pages[{n}].monitors")
            for n, p in enumerate(cfg.pages)
        ]
        self._pages = {p.slug: p for p in pages}
        self._refs = frozenset(ref for p in pages for ref in p.refs)
        self._ttl = cfg.cache_seconds
        self._cache = {}
        self._logged = set()

    def exists(self, slug: str) -> bool:
        """Whether a page has this slug ("" is the main page, always there)."""
        return slug in self._pages

    def listed(self, monitor_id: str) -> str | None:
        """The monitor's name when a page lists it (by name or id), else None: what is public
        about a monitor (its badges) is public only then."""
        state = self._view.state(monitor_id)
        if state is None or (state.name not in self._refs and monitor_id not in self._refs):
            return None
        return state.name

    async def view(self, slug: str) -> PublicPage | None:
        """The public view of a page, or None when no page has this slug."""
        spec = self._pages.get(slug)
        if spec is None:
            return None
        cached = await self._cached(spec)
        monitors = [
            PublicMonitor(
                name=m.name, status=self._view.status_of(ident), uptime=m.uptime, days=m.days
            )
            for ident, m in zip(cached.ids, cached.monitors, strict=True)
        ]
        return PublicPage(
            slug=spec.slug,
            title=spec.title,
            status=overall([m.status for m in monitors]),
            updated_at=_iso(time.time()),
            monitors=monitors,
            incidents=cached.incidents,
            planned=cached.planned,
            warnings=cached.warnings,
        )

    async def _cached(self, spec: PageSpec) -> _Cached:
        hit = self._cache.get(spec.slug)
        if hit is not None and hit.expires > time.monotonic():
            return hit
        async with self._lock:  # one reader refreshes; the visitors queued behind it reuse it
            hit = self._cache.get(spec.slug)
            if hit is not None and hit.expires > time.monotonic():
                return hit
            fresh = await self._read(spec)
            self._cache[spec.slug] = fresh
            return fresh

    def _resolve(self, spec: PageSpec) -> tuple[list[tuple[str, str]], list[str]]:
        """(id, name) of the monitors the page names, in the order listed, each once; and
        the warnings about references that name none or several."""
        by_name: dict[str, list[tuple[str, str]]] = {}
        by_id: dict[str, tuple[str, str]] = {}
        for state in self._view.states():
            pair = (state.monitor_id, state.name)
            by_id[state.monitor_id] = pair
            by_name.setdefault(state.name, []).append(pair)
        found: dict[str, str] = {}
        for ref in spec.refs:
            for ident, name in by_name.get(ref, [by_id[ref]] if ref in by_id else []):
                found.setdefault(ident, name)
        counts = {name: len(pairs) for name, pairs in by_name.items()}
        warnings = reference_warnings(spec.key, spec.refs, counts, set(by_id))
        for text in warnings:
            if text not in self._logged:
                self._logged.add(text)
                log.warning("status page /status%s: %s", f"/{spec.slug}" if spec.slug else "", text)
        return list(found.items()), warnings

    async def _read(self, spec: PageSpec) -> _Cached:
        now = time.time()
        today = now - now % DAY
        since = today - (DAYS - 1) * DAY
        ids: list[str] = []
        monitors: list[PublicMonitor] = []
        incidents: list[PublicIncident] = []
        listed, warnings = self._resolve(spec)
        for ident, name in listed:
            seq = self._view.seq_of(ident)
            if seq is None:
                continue
            points = await self._history.series(seq, since, now, DAY)
            days = [DayBar(date=_date(p.at), uptime=p.uptime, down=p.down) for p in points]
            counted = sum(p.up + p.down + p.pending for p in points)
            uptime = sum(p.up for p in points) / counted if counted else None
            ids.append(ident)
            monitors.append(PublicMonitor(name=name, status="", uptime=uptime, days=days))
            rows = await self._store.incidents(
                monitor_id=ident, state=None, since=_iso(since), before=None, limit=INCIDENTS
            )
            incidents += [
                PublicIncident(
                    id=i.id,
                    monitor_name=name,
                    opened_at=i.opened_at,
                    closed_at=i.closed_at,
                    duration_seconds=i.duration_seconds,
                )
                for i in rows
            ]
        updates = await self._desk.notes.updates([i.id for i in incidents])
        for i in incidents:
            i.updates = _public_updates(updates.get(i.id, []))
        scopes = {ident: await self._desk.monitor_scope(ident) for ident in ids}
        names = dict(listed)
        incidents += await self._manual(scopes, names, _iso(since))
        incidents.sort(key=lambda i: i.opened_at, reverse=True)
        planned = [
            PublicMaintenance(
                name=window.name,
                starts_at=_iso_exact(start),
                ends_at=_iso_exact(end),
                active=start <= now,
            )
            for window, (start, end) in self._maintenance.planned(
                list(scopes.values()), now, PLANNED_DAYS * DAY
            )
        ]
        return _Cached(
            time.monotonic() + self._ttl,
            ids,
            monitors,
            incidents[:INCIDENTS],
            planned,
            warnings,
        )

    async def _manual(
        self, scopes: dict[str, Scope], names: dict[str, str], since: str
    ) -> list[PublicIncident]:
        """Manual incidents about anything a listed monitor sits under, named after the
        listed monitors they touch (their targets are never shown)."""
        if not scopes:
            return []
        found = []
        rows = await self._desk.notes.manual_incidents(
            state=None, since=since, before=None, limit=INCIDENTS * 10
        )
        for incident in rows:
            touched = [names[i] for i, scope in scopes.items() if _touches(incident, scope)]
            if not touched:
                continue
            found.append(
                PublicIncident(
                    id=incident.id,
                    monitor_name=", ".join(touched),
                    opened_at=incident.opened_at,
                    closed_at=incident.closed_at,
                    duration_seconds=incident.duration_seconds,
                    title=incident.title,
                    severity=incident.severity,
                    state=incident.state,
                    updates=_public_updates(incident.updates),
                )
            )
        return found
