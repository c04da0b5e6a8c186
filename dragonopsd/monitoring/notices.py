"""What a transition says to the outside: incident closings, root causes, bus events and
notification events, built from a runtime. Pure functions; ``verdict.py`` decides when."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal

from ..clock import not_before, now_iso
from ..notify.event import NotificationEvent
from ..store.monitors import Closing, Incident
from .report import IncidentEvent, target_of
from .runtime import Runtime
from .status import Transition
from .topology import Topology


def closing(incident: Incident, at: str, resolution: str | None) -> Closing:
    """Closing incident at `at`, never before it opened (the clock may have gone back)."""
    closed_at = not_before(incident.opened_at, at)
    return Closing(
        incident.id, closed_at, _seconds_between(incident.opened_at, closed_at), resolution
    )


def root_cause(rt: Runtime, topology: Topology, runtimes: Iterable[Runtime]) -> str | None:
    """Why this monitor's alerts are suppressed: its server is down, or its host check is."""
    server = rt.monitor.server_id
    reason = topology.server_down(server)
    if reason or not server:
        return reason
    for other in runtimes:
        if (
            other is not rt
            and other.monitor.server_id == server
            and other.monitor.kind == "icmp"
            and other.machine.status == "down"
        ):
            return f"host check {other.monitor.name} ({other.monitor.id}) is down"
    return None


def incident_event(
    rt: Runtime,
    incident_id: str,
    *,
    at: str,
    cause: str | None,
    root: str | None,
    closed: Closing | None = None,
) -> IncidentEvent:
    """``incident.opened``, or ``incident.closed`` when closed is given."""
    monitor = rt.monitor
    return IncidentEvent(
        type="incident.closed" if closed else "incident.opened",
        incident_id=incident_id,
        monitor_id=monitor.id,
        monitor_name=monitor.name,
        at=at,
        cause=cause,
        root_cause=root,
        duration_seconds=closed.duration_seconds if closed else None,
        resolution=closed.resolution if closed else None,
    )


def status_notification(
    rt: Runtime,
    t: Transition,
    event: Literal["down", "up"],
    *,
    message: str | None,
    scope: Any,
    where: list[str],
    incident_id: str | None,
    downtime: float | None = None,
) -> NotificationEvent:
    """A DOWN, or the UP that answers it."""
    monitor = rt.monitor
    return NotificationEvent(
        event=event,
        monitor_id=monitor.id,
        monitor_name=monitor.name,
        kind=monitor.kind,
        target=target_of(monitor),
        status=t.status,
        previous=t.previous,
        message=message,
        at=rt.since,
        downtime_seconds=downtime,
        locations=where,
        incident_id=incident_id,
        scope=scope,
    )


def certificate_notification(
    rt: Runtime, expires_at: float, left: float, scope: Any
) -> NotificationEvent:
    """The certificate the last check saw expires soon."""
    monitor = rt.monitor
    return NotificationEvent(
        event="certificate",
        monitor_id=monitor.id,
        monitor_name=monitor.name,
        kind=monitor.kind,
        target=target_of(monitor),
        status=rt.machine.status,
        previous=None,
        message=f"certificate expires in {left / 86400:.1f} days",
        at=now_iso(),
        cert_expires_at=datetime.fromtimestamp(expires_at, UTC).isoformat(),
        locations=list(monitor.locations),
        scope=scope,
    )


def _seconds_between(start_iso: str, end_iso: str) -> float:
    start = datetime.fromisoformat(start_iso)
    end = datetime.fromisoformat(end_iso)
    return max(0.0, (end - start).total_seconds())
