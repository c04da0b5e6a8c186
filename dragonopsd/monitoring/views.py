"""A read-only view of the engine's in-memory state: the board, counts and engine figures.

The API, the status pages, the live hub and the metrics get this, not the engine: it reads
the runtimes, the scheduler's counters and the history writer's, and changes nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from typing import Protocol

from ..metrics import views as metric_views
from ..store.protocols import HistorySink
from .report import CheckReport, EngineStats, MonitorState, target_of
from .runtime import Runtime, Runtimes
from .scheduler import Scheduler


def status_counts(runtimes: Runtimes) -> dict[str, int]:
    """How many monitors are in each visible status. A function of the runtimes alone, so the
    dashboard can count before the engine (which needs the dashboard) is built."""
    return dict(Counter(rt.visible_status for rt in runtimes.all()))


class MonitorFigures(metric_views.MonitorFigures, Protocol):
    """What a reader may see of one monitor's live state (read-only: it changes nothing): the
    shape the metrics read (metrics/views.py), with the last check as the full report."""

    @property
    def last(self) -> CheckReport | None: ...


class EngineView:
    """Reads the engine's runtimes, scheduler and history writer; never changes them."""

    def __init__(
        self,
        runtimes: Runtimes,
        scheduler: Scheduler,
        history: HistorySink,
        owned: Collection[int] | None = None,
    ) -> None:
        self._runtimes = runtimes
        # With several cores: the seqs this core owns (the engine's live set). The metrics
        # export only those, so Prometheus scraping every core counts each monitor once.
        self._owned = owned
        self._scheduler = scheduler
        self._history = history

    def figures(self) -> Collection[MonitorFigures]:
        """Every owned monitor's live state, to read on the loop without keeping it (metrics)."""
        owned = self._owned
        if owned is None:
            return self._runtimes.all()
        return [rt for rt in self._runtimes.all() if rt.row.seq in owned]

    def owned_count(self) -> int | None:
        """How many monitors this core owns (None: no cluster, it owns them all)."""
        return None if self._owned is None else len(self._owned)

    def ids(self) -> Collection[str]:
        """Every monitor id (a live view, no copy)."""
        return self._runtimes.ids()

    def seq_of(self, monitor_id: str) -> int | None:
        """The integer key of a monitor id."""
        return self._runtimes.seq_of(monitor_id)

    def placement(self, monitor_id: str) -> tuple[str | None, str | None] | None:
        """The server and environment a monitor is attached to; None for an unknown one
        (the websocket gates of scoped subscribers place monitor events with it)."""
        rt = self._runtimes.of_id(monitor_id)
        return None if rt is None else (rt.monitor.server_id, rt.monitor.environment_id)

    def state(self, monitor_id: str) -> MonitorState | None:
        """Latest state of one monitor."""
        rt = self._runtimes.of_id(monitor_id)
        return None if rt is None else _state(rt)

    def states(self) -> list[MonitorState]:
        """Latest state of every monitor, by name."""
        return sorted(
            (_state(rt) for rt in self._runtimes.all()), key=lambda s: (s.name, s.monitor_id)
        )

    def status_of(self, monitor_id: str) -> str:
        """Visible status of a monitor (paused when disabled)."""
        rt = self._runtimes.of_id(monitor_id)
        return "pending" if rt is None else rt.visible_status

    def counts(self) -> dict[str, int]:
        """How many monitors are in each status (for the dashboard)."""
        return status_counts(self._runtimes)

    def stats(self) -> EngineStats:
        """Scheduler drift (over the last 10,000 starts) and history writer figures."""
        drift = sorted(self._scheduler.drift)

        def pick(q: float) -> float | None:
            return (
                round(drift[min(len(drift) - 1, int(q * len(drift)))] * 1000, 3) if drift else None
            )

        h, s = self._history, self._scheduler
        return EngineStats(
            monitors=len(self._runtimes),
            checks_started=s.started,
            checks_skipped=s.skipped,
            in_flight=s.in_flight,
            drift_p50_ms=pick(0.5),
            drift_p99_ms=pick(0.99),
            drift_max_ms=pick(1.0),
            history_queue=h.queue_depth,
            history_flushed=h.flushed_total,
            history_dropped=h.dropped,
            history_last_flush_ms=round(h.last_flush_seconds * 1000, 3),
        )


def _state(rt: Runtime) -> MonitorState:
    m = rt.monitor
    last = rt.last
    return MonitorState(
        monitor_id=m.id,
        name=m.name,
        kind=m.kind,
        target=target_of(m),
        status=rt.visible_status,
        since=rt.since,
        last_check_at=last.at if last else None,
        latency_ms=last.latency_ms if last else None,
        message=last.message if last else None,
        incident_id=rt.incident.id if rt.incident else None,
        tags=m.tags,
        server_id=m.server_id,
        environment_id=m.environment_id,
        flapping=rt.machine.flapping,
        locations=rt.locations,
    )
