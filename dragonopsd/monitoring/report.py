"""What the engine tells the outside: check reports, latest states, and its events."""

from __future__ import annotations

from typing import Any

from ..model.inventory import Wire, public_url
from ..model.monitor import Monitor
from .conditions import ConditionResult


# gc=False, tuples not lists: the engine keeps each monitor's last report, and a report the
# cyclic collector tracks (with its two lists) put 75,000 objects at 25,000 monitors into
# every full collection (~85 ms loop pauses every few seconds). A report holds plain values
# and never refers back to anything that refers to it, so it can take part in no cycle.
class CheckReport(Wire, kw_only=True, gc=False):
    """One check's result (POST /api/monitors/{id}/check, ``monitor.heartbeat`` events)."""

    monitor_id: str
    status: str
    ok: bool
    at: str
    latency_ms: float | None = None
    message: str | None = None
    error: str | None = None
    conditions: tuple[ConditionResult, ...] = ()
    context: dict[str, Any] = {}
    # Several locations: each one's status in the round, and those that failed.
    locations: dict[str, str] = {}
    failed_locations: tuple[str, ...] = ()


class TrialReport(Wire, kw_only=True):
    """A probe of a monitor that is not saved (POST /api/monitors/test): nothing is recorded."""

    status: str
    ok: bool
    at: str
    latency_ms: float | None = None
    message: str | None = None
    error: str | None = None
    conditions: tuple[ConditionResult, ...] = ()
    context: dict[str, Any] = {}


class MonitorState(Wire, kw_only=True):
    """Latest state of a monitor (GET /api/monitoring, the seed's endpoint)."""

    monitor_id: str
    name: str
    kind: str
    target: str
    status: str
    since: str
    last_check_at: str | None = None
    latency_ms: float | None = None
    message: str | None = None
    incident_id: str | None = None
    tags: list[str] = []
    server_id: str | None = None
    environment_id: str | None = None
    flapping: bool = False
    locations: dict[str, str] = {}  # location -> up | down | no-worker | no-result


class EngineStats(Wire, kw_only=True):
    """GET /api/stats/engine: how the scheduler and history writer are keeping up."""

    monitors: int
    checks_started: int
    checks_skipped: int
    in_flight: int
    drift_p50_ms: float | None
    drift_p99_ms: float | None
    drift_max_ms: float | None
    history_queue: int
    history_flushed: int
    history_dropped: int
    history_last_flush_ms: float


class StatusEvent(Wire, kw_only=True):
    """``monitor.status`` on the bus: a monitor changed status."""

    monitor_id: str
    status: str
    previous: str | None
    at: str
    message: str | None = None
    locations: list[str] = []
    failed_locations: list[str] = []


class IncidentEvent(Wire, kw_only=True):
    """``incident.opened`` / ``incident.closed`` on the bus."""

    type: str
    incident_id: str
    monitor_id: str
    monitor_name: str
    at: str
    cause: str | None = None
    root_cause: str | None = None
    duration_seconds: float | None = None
    resolution: str | None = None  # incident.closed: how it ended, when not a recovery


def target_of(monitor: Monitor) -> str:
    """What a monitor points at, safe to show: URLs lose any user:password part."""
    if monitor.url:
        return public_url(monitor.url)
    if monitor.kind == "push":
        return "push"
    if monitor.port:
        return f"{monitor.host}:{monitor.port}"
    return monitor.host or ""
