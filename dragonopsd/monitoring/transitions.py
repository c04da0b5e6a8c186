"""Mixed into Engine: what a verdict leads to, and alerts that are not status changes.

A transition persists the new status (and opens or closes the incident), tells the bus
(``monitor.status``, ``incident.*``) and, unless a root cause explains it, the notifier. An
incident follows the status except while the monitor flaps (it stays open) and when the
monitor is paused (it is resolved).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from ..bus import Bus
from ..clock import not_before, now_iso
from ..notify.dispatcher import Dispatcher
from ..notify.event import NotificationEvent
from ..store.monitors import Closing, Incident, MonitorStore
from .optional import OptionalSteps
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
    _steps: OptionalSteps

    async def _transition(
        self,
        rt: Runtime,
        t: Transition,
        message: str | None,
        scope: Any,
        failed: list[str] | None = None,
    ) -> None:
        """What one verdict leads to: on a status change, the status persisted and published;
        an incident opened on DOWN; the open one closed on UP, unless the monitor is flapping.

        Flap damping holds the incident open while the monitor flaps (one incident, however
        many flips), and closes it at the first UP once the flips have left the flap window.
        """
        monitor = rt.monitor
        where = failed or list(monitor.locations)  # where it failed, when the quorum said so
        opening = t.status == "down" and rt.incident is None
        closing = t.status == "up" and rt.incident is not None and not t.flapping
        if not (t.changed or opening or closing):
            return  # the usual check: nothing changed
        root = self._steps.run("root cause", lambda: self._root_cause(rt), None)
        opened = closed = None
        if opening:
            rt.incident = opened = Incident(
                id=str(uuid.uuid4()),
                monitor_id=monitor.id,
                monitor_name=monitor.name,
                opened_at=rt.since,
                cause=message or "down",
                root_cause=root,
                locations=where,
            )
        elif closing and rt.incident is not None:
            note = None if t.changed else "up again after flapping"
            closed = _closing(rt.incident, rt.since if t.changed else now_iso(), note)
            rt.incident = None
        for hook in self.on_change:
            await self._steps.run_async("change hook", hook)
        try:
            persist = t.status if t.changed else None
            await self.store.transition(rt.row.seq, persist, message, opened, closed)
        except Exception:  # the in-memory state stays right; the next transition retries
            log.exception("could not persist the transition of monitor %s", monitor.id)
        if t.changed:
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
        if opened is not None:
            self._publish_incident(rt, opened.id, at=rt.since, cause=message, root=root)
        if closed is not None:
            self._publish_incident(
                rt, closed.incident_id, at=closed.closed_at, cause=message, root=root, closed=closed
            )
        if t.status == "down" and t.alert and root is None:
            rt.down_notified = True
            incident = rt.incident.id if rt.incident else None
            self._notify(
                rt, t, "down", message=message, scope=scope, where=where, incident_id=incident
            )
        elif closed is not None and rt.down_notified:
            # UP answers the DOWN that was sent, and only that: a flapping monitor whose
            # DOWN was damped gets no UP either.
            rt.down_notified = False
            self._notify(
                rt,
                t,
                "up",
                message=message,
                scope=scope,
                where=where,
                incident_id=closed.incident_id,
                downtime=closed.duration_seconds,
            )

    async def close_paused(self, rt: Runtime) -> None:
        """The monitor was paused: its open incident ends here (nobody checks any more)."""
        incident = rt.incident
        if incident is None:
            return
        rt.incident = None
        rt.down_notified = False
        closed = _closing(incident, now_iso(), "monitor paused")
        try:
            await self.store.transition(rt.row.seq, None, None, None, closed)
        except Exception:
            log.exception("could not close the incident of paused monitor %s", rt.monitor.id)
        for hook in self.on_change:
            await self._steps.run_async("change hook", hook)
        self._publish_incident(
            rt, incident.id, at=closed.closed_at, cause=None, root=None, closed=closed
        )

    def _publish_incident(
        self,
        rt: Runtime,
        incident_id: str,
        *,
        at: str,
        cause: str | None,
        root: str | None,
        closed: Closing | None = None,
    ) -> None:
        event = "incident.closed" if closed else "incident.opened"
        monitor = rt.monitor
        self._bus.publish(
            "incidents",
            IncidentEvent(
                type=event,
                incident_id=incident_id,
                monitor_id=monitor.id,
                monitor_name=monitor.name,
                at=at,
                cause=cause,
                root_cause=root,
                duration_seconds=closed.duration_seconds if closed else None,
                resolution=closed.resolution if closed else None,
            ),
            event,
        )

    def _notify(
        self,
        rt: Runtime,
        t: Transition,
        event: Literal["down", "up"],
        *,
        message: str | None,
        scope: Any,
        where: list[str],
        incident_id: str | None,
        downtime: float | None = None,
    ) -> None:
        monitor = rt.monitor
        notification = NotificationEvent(
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
        self._steps.run("notification routing", lambda: self._notifier.publish(notification), None)

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


def _closing(incident: Incident, at: str, resolution: str | None) -> Closing:
    """Closing incident at `at`, never before it opened (the clock may have gone back)."""
    closed_at = not_before(incident.opened_at, at)
    return Closing(
        incident.id, closed_at, _seconds_between(incident.opened_at, closed_at), resolution
    )


def _seconds_between(start_iso: str, end_iso: str) -> float:
    start = datetime.fromisoformat(start_iso)
    end = datetime.fromisoformat(end_iso)
    return max(0.0, (end - start).total_seconds())
