"""Mixed into Engine: what a status change leads to, and alerts that are not status changes.

A transition persists the new status (and opens or closes the incident), tells the bus
(``monitor.status``, ``incident.*``) and, unless a root cause explains it, the notifier.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..bus import Bus
from ..clock import now_iso
from ..notify.dispatcher import Dispatcher
from ..notify.event import NotificationEvent
from ..store.monitors import Incident, MonitorStore
from .report import IncidentEvent, StatusEvent, target_of
from .status import Transition
from .topology import Topology

if TYPE_CHECKING:
    from .engine import Runtime

log = logging.getLogger("dragonopsd.engine")
CERT_WARNING_SECONDS = 14 * 86_400


class Transitions:
    """Incidents, events and notifications for the engine's runtimes."""

    store: MonitorStore
    topology: Topology
    on_change: list[Callable[[], Awaitable[None]]]
    _runtimes: dict[int, Runtime]
    _bus: Bus
    _notifier: Dispatcher

    async def _transition(
        self,
        rt: Runtime,
        t: Transition,
        message: str | None,
        scope: Any,
        failed: list[str] | None = None,
    ) -> None:
        monitor = rt.monitor
        where = failed or list(monitor.locations)  # where it failed, when the quorum said so
        root = self._root_cause(rt)
        opened = closed = None
        downtime = None
        if t.status == "down" and rt.incident is None:
            rt.incident = opened = Incident(
                id=str(uuid.uuid4()),
                monitor_id=monitor.id,
                monitor_name=monitor.name,
                opened_at=rt.since,
                cause=message or "down",
                root_cause=root,
                locations=where,
            )
        elif t.status == "up" and rt.incident is not None:
            downtime = _seconds_between(rt.incident.opened_at, rt.since)
            closed = (rt.incident.id, rt.since, downtime)
            rt.incident = None
        for hook in self.on_change:
            await hook()
        try:
            await self.store.transition(rt.row.seq, t.status, message, opened, closed)
        except Exception:  # the in-memory state stays right; the next transition retries
            log.exception("could not persist the transition of monitor %s", monitor.id)
        status = StatusEvent(
            monitor_id=monitor.id,
            status=t.status,
            previous=t.previous,
            at=rt.since,
            message=message,
            locations=list(monitor.locations),
            failed_locations=failed or [],
        )
        self._bus.publish("monitors", status, "monitor.status")
        self._bus.publish(f"monitors.{monitor.id}", status, "monitor.status")
        if opened is not None or closed is not None:
            self._bus.publish(
                "incidents",
                IncidentEvent(
                    type="incident.opened" if opened else "incident.closed",
                    incident_id=opened.id if opened else closed[0] if closed else "",
                    monitor_id=monitor.id,
                    monitor_name=monitor.name,
                    at=rt.since,
                    cause=message,
                    root_cause=root,
                    duration_seconds=downtime,
                ),
                "incident.opened" if opened else "incident.closed",
            )
        if t.alert and root is None:
            self._notifier.publish(
                NotificationEvent(
                    event="down" if t.status == "down" else "up",
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
                    incident_id=(opened.id if opened else closed[0] if closed else None),
                    scope=scope,
                )
            )

    def _root_cause(self, rt: Runtime) -> str | None:
        """Why this monitor's alerts are suppressed: its server is down, or its host check is."""
        server = rt.monitor.server_id
        reason = self.topology.server_down(server)
        if reason or not server:
            return reason
        for other in self._runtimes.values():
            if (
                other is not rt
                and other.monitor.server_id == server
                and other.monitor.kind == "icmp"
                and other.machine.status == "down"
            ):
                return f"host check {other.monitor.name} ({other.monitor.id}) is down"
        return None

    def _maybe_warn_certificate(self, rt: Runtime, expires_at: float, scope: Any) -> None:
        left = expires_at - time.time()
        if left > CERT_WARNING_SECONDS or rt.cert_warned == expires_at:
            return
        rt.cert_warned = expires_at
        monitor = rt.monitor
        self._notifier.publish(
            NotificationEvent(
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
        )


def _seconds_between(start_iso: str, end_iso: str) -> float:
    start = datetime.fromisoformat(start_iso)
    end = datetime.fromisoformat(end_iso)
    return max(0.0, (end - start).total_seconds())
