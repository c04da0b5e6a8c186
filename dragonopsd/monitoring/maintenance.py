"""Maintenance windows in memory: CRUD through the store, and the check on the probe hot path.

The scheduler asks ``active_for(scope, now)`` for every probe result, so the answer is kept
ready: each enabled window caches its current-or-next occurrence, and the set of windows active
right now is indexed by the ids they cover. Until the next moment any window starts or ends,
a call is one float comparison and a handful of dict lookups; croniter runs only at those
moments, and only for the windows whose cached occurrence has passed.

Recurring windows follow the wall clock of their time zone, with these rules at DST changes:

* a start time that does not exist (spring forward, 02:00 in Europe/Berlin on the last Sunday
  of March) starts at the moment the clock jumps, i.e. 03:00 summer time (croniter's choice,
  and what Vixie cron does);
* a start time that happens twice (fall back, 02:00 on the last Sunday of October) starts only
  once, at its first occurrence, when the cron names fixed hours, so "Sunday 02:00" stays one
  window; with ``*`` in the hour field every real occurrence counts (again as Vixie cron);
* ``duration`` is elapsed seconds, so a 2 h window always lasts 7200 s, whatever the wall clock
  shows at its end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec

from ..model.monitor import Scope
from ..problem import not_found
from ..store.inventory import decode_cursor, encode_cursor
from ..store.maintenance import Window, WindowScope, WindowSpec
from ..store.protocols import MaintenanceRepo
from .window_schedule import INF, Interval, Occurrence, Schedule, WindowView, occurrence

log = logging.getLogger("dragonopsd.maintenance")


@dataclass(slots=True, eq=False)
class _Plan:
    """An enabled window with its cached current-or-next occurrence."""

    window: Window
    schedule: Schedule
    start: float = INF
    end: float = -INF  # nothing cached yet: the first look computes
    computed_at: float = INF

    def at(self, now: float) -> None:
        """Make the cached occurrence the one covering or following now."""
        if now >= self.end or now < self.computed_at:
            interval = self.schedule.current_or_next(now)
            self.start, self.end = interval if interval else (INF, INF)
            self.computed_at = now


@dataclass(slots=True)
class _Active:
    """The windows active now, by what they cover; None never appears as a key, so a scope's
    missing ids look up to nothing without a branch."""

    monitor: dict[str | None, Window] = field(default_factory=dict)
    server: dict[str | None, Window] = field(default_factory=dict)
    environment: dict[str | None, Window] = field(default_factory=dict)
    project: dict[str | None, Window] = field(default_factory=dict)
    client: dict[str | None, Window] = field(default_factory=dict)
    everyone: Window | None = None


def _index(active: list[_Plan]) -> _Active:
    index = _Active()
    # Latest end first so setdefault keeps, per key, the window that lasts longest.
    for plan in sorted(active, key=lambda p: -p.end):
        w, s = plan.window, plan.window.scope
        if s.all and index.everyone is None:
            index.everyone = w
        for ids, by in (
            (s.monitor_ids, index.monitor),
            (s.server_ids, index.server),
            (s.environment_ids, index.environment),
            (s.project_ids, index.project),
            (s.client_ids, index.client),
        ):
            for ident in ids:
                by.setdefault(str(ident), w)
    return index


def covers(s: WindowScope, where: Scope) -> bool:
    """Whether a window's scope covers a monitor sitting at where."""
    if s.all:
        return True
    for ids, ident in (
        (s.monitor_ids, where.monitor_id),
        (s.server_ids, where.server_id),
        (s.environment_ids, where.environment_id),
        (s.project_ids, where.project_id),
        (s.client_ids, where.client_id),
    ):
        if ident and any(str(i) == ident for i in ids):
            return True
    return False


class MaintenanceService:
    """Every window in memory; writes go to the store and reload."""

    def __init__(self, store: MaintenanceRepo) -> None:
        self.store = store
        self._windows: list[Window] = []
        self._by_id: dict[str, Window] = {}
        self._plans: dict[str, _Plan] = {}
        self._active: _Active | None = None
        # The cached answer holds for now in [_valid_from, _valid_until); empty until computed.
        self._valid_from = INF
        self._valid_until = -INF
        # One write-and-reload at a time, so an older reload never lands after a newer one.
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        """Read every window from the store and rebuild the schedules and index."""
        self._install(await self.store.all())

    def _install(self, windows: list[Window]) -> None:
        plans: dict[str, _Plan] = {}
        for w in windows:
            if not w.enabled:
                continue
            old = self._plans.get(w.id)
            if old is not None and old.window == w:
                plans[w.id] = old  # unchanged: keep its cached occurrence, skip croniter
                continue
            try:
                plans[w.id] = _Plan(w, Schedule(w))
            except Exception as exc:  # a row stored by an older build, or edited by hand
                log.warning(
                    "maintenance window %s (%s) cannot be scheduled and is ignored: %r",
                    w.id,
                    w.name,
                    exc,
                )
        self._windows = sorted(windows, key=lambda w: (w.name, w.id))
        self._by_id = {w.id: w for w in windows}
        self._plans = plans
        self._valid_from, self._valid_until = INF, -INF

    # ---------------------------------------------------------------- the hot path

    def any_active(self, now: float) -> bool:
        """Whether any window is in force at Unix time now; when none is (the usual case),
        no monitor's scope needs working out to know it is not in maintenance."""
        if not self._valid_from <= now < self._valid_until:
            self._refresh(now)
        return self._active is not None

    def active_for(self, scope: Scope, now: float) -> Window | None:
        """The window putting this monitor in maintenance at Unix time now, or None.

        The most specific match wins (monitor, server, environment, project, client, all);
        among windows at one level, the one ending last.
        """
        if not self._valid_from <= now < self._valid_until:
            self._refresh(now)
        a = self._active
        if a is None:
            return None  # nothing in force anywhere: the usual case
        return (
            a.monitor.get(scope.monitor_id)
            or a.server.get(scope.server_id)
            or a.environment.get(scope.environment_id)
            or a.project.get(scope.project_id)
            or a.client.get(scope.client_id)
            or a.everyone
        )

    def next_change(self, now: float) -> float | None:
        """The next Unix time at which any window starts or ends, or None if none ever will.

        A scheduler can sleep until then to flip statuses without waiting for a probe.
        """
        if not self._valid_from <= now < self._valid_until:
            self._refresh(now)
        return None if self._valid_until == INF else self._valid_until

    def _refresh(self, now: float) -> None:
        active: list[_Plan] = []
        until = INF
        for ident, plan in list(self._plans.items()):
            try:
                plan.at(now)
            except Exception as exc:
                # One window that cannot be computed must not take the others (and every
                # check) with it: drop it until it is next saved or the windows reload.
                del self._plans[ident]
                log.warning(
                    "maintenance window %s (%s) failed to schedule and is ignored: %r",
                    ident,
                    plan.window.name,
                    exc,
                )
                continue
            if plan.start <= now:
                active.append(plan)
                until = min(until, plan.end)
            else:
                until = min(until, plan.start)
        self._active = _index(active) if active else None
        self._valid_from, self._valid_until = now, until

    # ---------------------------------------------------------------- reads for the API

    def view(self, window: Window, now: float) -> WindowView:
        """window with whether it is in force at now and its current or next occurrence."""
        if not self._valid_from <= now < self._valid_until:
            self._refresh(now)
        plan = self._plans.get(window.id)
        active, nxt = False, None
        if plan is not None and plan.window == window and plan.start != INF:
            active = plan.start <= now < plan.end
            nxt = occurrence((plan.start, plan.end))
        return WindowView(**msgspec.structs.asdict(window), active_now=active, next=nxt)

    def get(self, ident: str) -> Window:
        """One window or 404."""
        window = self._by_id.get(ident)
        if window is None:
            raise not_found("maintenance window", ident)
        return window

    def all(self) -> list[Window]:
        """Every window, by name."""
        return self._windows

    def page(
        self, limit: int, cursor: str | None, keep: Callable[[Window], bool] | None = None
    ) -> tuple[list[Window], str | None]:
        """Windows by name, limit at a time; the cursor is the last (name, id) seen; keep
        leaves out the windows a scoped caller does not reach before the page is cut."""
        windows = self._windows if keep is None else [w for w in self._windows if keep(w)]
        if cursor:
            name, ident = decode_cursor(cursor, "name")
            windows = [w for w in windows if (w.name, w.id) > (name, ident)]
        items = windows[:limit]
        more = len(windows) > limit
        return items, encode_cursor("name", items[-1].name, items[-1].id) if more else None

    def occurrences(self, ident: str, after: float, count: int) -> list[Occurrence]:
        """The next count occurrences of a window from after on (the schedule, even if
        disabled, so a cron can be checked before it is switched on)."""
        window = self.get(ident)
        try:
            intervals = Schedule(window).upcoming(after, count)
        except Exception as exc:  # as _install: a stored row this build cannot schedule
            log.warning("maintenance window %s cannot be scheduled: %r", ident, exc)
            return []
        return [occurrence(i) for i in intervals]

    def planned(
        self, scopes: list[Scope], now: float, horizon: float
    ) -> list[tuple[Window, Interval]]:
        """Enabled windows covering any of scopes, with their occurrence in force at now or
        the next one if it starts within horizon seconds; soonest first (status pages)."""
        found = []
        for plan in list(self._plans.values()):
            if not any(covers(plan.window.scope, scope) for scope in scopes):
                continue
            try:
                interval = plan.schedule.current_or_next(now)
            except Exception as exc:  # as _refresh: one window never takes the others down
                log.warning("maintenance window %s cannot be scheduled: %r", plan.window.id, exc)
                continue
            if interval is not None and interval[0] <= now + horizon:
                found.append((plan.window, interval))
        return sorted(found, key=lambda f: (f[1][0], f[0].name))

    # ---------------------------------------------------------------- writes

    async def create(self, spec: WindowSpec, managed_by: str = "api") -> Window:
        """Store a new window and start honouring it."""
        async with self._lock:
            window = await self.store.insert(spec, managed_by)
            await self.load()
        return window

    async def replace(
        self,
        ident: str,
        spec: WindowSpec,
        check: Callable[[Window], None] | None = None,
        managed_by: str | None = None,
    ) -> Window:
        """Overwrite a window (PATCH merges first) and reschedule it. check (If-Match) sees
        the current window under the write lock, so no other write lands between the two."""
        async with self._lock:
            if check is not None:
                check(self.get(ident))
            window = await self.store.replace(ident, spec, managed_by)
            await self.load()
        return window

    async def reload(self) -> None:
        """Windows were written past this service (an import's one transaction): reload, in
        turn with the writes above."""
        async with self._lock:
            await self.load()

    async def delete(self, ident: str, check: Callable[[Window], None] | None = None) -> None:
        """Remove a window; monitors it covered leave maintenance at their next check."""
        async with self._lock:
            if check is not None:
                check(self.get(ident))
            await self.store.delete(ident)
            await self.load()
