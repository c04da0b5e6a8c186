"""Public status pages: the monitors a page lists, reduced to what anyone may see.

A page shows each listed monitor's name, current status and daily uptime, and the recent
incidents of those monitors (when, how long; never the cause, which can quote a target). Targets,
URLs, hosts, messages and ids of the inventory never leave this module: the Structs below are
the whole public shape. The pages are unauthenticated, so the expensive part (90 days of
rollups per monitor, incidents) is read at most once per ``cache_seconds`` per page, under one
lock, whatever the number of visitors; the status itself is read live from the engine view.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from ..config import StatusPageConfig
from ..model.inventory import Wire
from ..store.protocols import HistoryReader, MonitorRepo
from .views import EngineView

DAY = 86_400.0
DAYS = 90
INCIDENTS = 20


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


class PublicIncident(Wire, kw_only=True):
    """An incident as a status page shows it: which service, when, and for how long."""

    id: str
    monitor_name: str
    opened_at: str
    closed_at: str | None
    duration_seconds: float | None


class PublicPage(Wire, kw_only=True):
    """GET /api/status-page and /api/status-page/{slug}: everything a status page renders."""

    slug: str
    title: str
    status: str  # operational | degraded | outage | maintenance | empty
    updated_at: str
    monitors: list[PublicMonitor]
    incidents: list[PublicIncident]


@dataclass(frozen=True)
class PageSpec:
    """A page as configured: slug ("" for /status), title and monitor references."""

    slug: str
    title: str
    refs: tuple[str, ...]


@dataclass
class _Cached:
    expires: float
    ids: list[str]
    monitors: list[PublicMonitor]
    incidents: list[PublicIncident]


def _iso(ts: float) -> str:
    """The API's time format (clock.now_iso), so it compares with stored times as text."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


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
        self, cfg: StatusPageConfig, view: EngineView, store: MonitorRepo, history: HistoryReader
    ) -> None:
        self._view = view
        self._store = store
        self._history = history
        self._lock = asyncio.Lock()
        self._cache: dict[str, _Cached] = {}
        self._pages: dict[str, PageSpec] = {}
        self._refs: frozenset[str] = frozenset()
        self._ttl = 0.0
        self.configure(cfg)

    def configure(self, cfg: StatusPageConfig) -> None:
        """Take a (re)loaded [status_page] section; cached views are dropped."""
        pages = [PageSpec("", cfg.title, tuple(cfg.monitors))]
        pages += [PageSpec(p.slug, p.title, tuple(p.monitors)) for p in cfg.pages]
        self._pages = {p.slug: p for p in pages}
        self._refs = frozenset(ref for p in pages for ref in p.refs)
        self._ttl = cfg.cache_seconds
        self._cache = {}

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

    def _resolve(self, refs: tuple[str, ...]) -> list[tuple[str, str]]:
        """(id, name) of the monitors refs name, in the order listed, each once."""
        by_name: dict[str, list[tuple[str, str]]] = {}
        by_id: dict[str, tuple[str, str]] = {}
        for state in self._view.states():
            pair = (state.monitor_id, state.name)
            by_id[state.monitor_id] = pair
            by_name.setdefault(state.name, []).append(pair)
        found: dict[str, str] = {}
        for ref in refs:
            for ident, name in by_name.get(ref, [by_id[ref]] if ref in by_id else []):
                found.setdefault(ident, name)
        return list(found.items())

    async def _read(self, spec: PageSpec) -> _Cached:
        now = time.time()
        today = now - now % DAY
        since = today - (DAYS - 1) * DAY
        ids: list[str] = []
        monitors: list[PublicMonitor] = []
        incidents: list[PublicIncident] = []
        for ident, name in self._resolve(spec.refs):
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
        incidents.sort(key=lambda i: i.opened_at, reverse=True)
        return _Cached(time.monotonic() + self._ttl, ids, monitors, incidents[:INCIDENTS])
