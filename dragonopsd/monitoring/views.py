"""Read-only views of the engine's in-memory state: the board, counts and engine figures."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from typing import TYPE_CHECKING

from .report import EngineStats, MonitorState, target_of
from .scheduler import Scheduler

if TYPE_CHECKING:
    from ..store.protocols import HistorySink
    from .engine import Runtime


class EngineViews:
    """Mixed into Engine: everything here only reads its runtimes, scheduler and writer."""

    _runtimes: dict[int, Runtime]
    _by_id: dict[str, int]
    _history: HistorySink
    scheduler: Scheduler

    def runtimes(self) -> Collection[Runtime]:
        """Every monitor's live state, to read on the loop without keeping it (metrics)."""
        return self._runtimes.values()

    def ids(self) -> Collection[str]:
        """Every monitor id (a live view, no copy)."""
        return self._by_id.keys()

    def state(self, monitor_id: str) -> MonitorState | None:
        """Latest state of one monitor."""
        seq = self._by_id.get(monitor_id)
        return None if seq is None else self._state(self._runtimes[seq])

    def _state(self, rt: Runtime) -> MonitorState:
        m = rt.monitor
        status = rt.machine.status if m.enabled else "paused"
        last = rt.last
        return MonitorState(
            monitor_id=m.id,
            name=m.name,
            kind=m.kind,
            target=target_of(m),
            status=status,
            since=rt.since,
            last_check_at=last.at if last else None,
            latency_ms=last.latency_ms if last else None,
            message=last.message if last else None,
            incident_id=rt.incident.id if rt.incident else None,
            tags=m.tags,
            server_id=m.server_id,
            environment_id=m.environment_id,
            flapping=bool(rt.machine.changes)
            and sum(rt.machine.changes) >= rt.machine.flap_threshold,
            locations=rt.locations,
        )

    def states(self) -> list[MonitorState]:
        """Latest state of every monitor, by name."""
        return sorted(
            (self._state(rt) for rt in self._runtimes.values()),
            key=lambda s: (s.name, s.monitor_id),
        )

    def status_of(self, monitor_id: str) -> str:
        """Visible status of a monitor (paused when disabled)."""
        seq = self._by_id.get(monitor_id)
        if seq is None:
            return "pending"
        rt = self._runtimes[seq]
        return rt.machine.status if rt.monitor.enabled else "paused"

    def stats(self) -> EngineStats:
        """Scheduler drift (over the last 10,000 starts) and history writer figures."""
        drift = sorted(self.scheduler.drift)

        def pick(q: float) -> float | None:
            return (
                round(drift[min(len(drift) - 1, int(q * len(drift)))] * 1000, 3) if drift else None
            )

        h = self._history
        return EngineStats(
            monitors=len(self._runtimes),
            checks_started=self.scheduler.started,
            checks_skipped=self.scheduler.skipped,
            in_flight=self.scheduler.in_flight,
            drift_p50_ms=pick(0.5),
            drift_p99_ms=pick(0.99),
            drift_max_ms=pick(1.0),
            history_queue=h.queue_depth,
            history_flushed=h.flushed_total,
            history_dropped=h.dropped,
            history_last_flush_ms=round(h.last_flush_seconds * 1000, 3),
        )

    def counts(self) -> dict[str, int]:
        """How many monitors are in each status (for the dashboard)."""
        return dict(Counter(self.status_of(rt.monitor.id) for rt in self._runtimes.values()))
