"""What happens to a probe result: the one path every check takes, here or at a location.

``Verdict.record`` is that path: conditions -> status machine -> heartbeat to the history
writer -> latest state in memory -> ``monitor.heartbeat`` on the bus -> on a transition, the
status persisted, the incident opened or closed, ``monitor.status``/``incident.*`` published and
the notifier told (unless a root cause explains it). It returns whether the status machine
wants an early retry; the caller asks the scheduler. A round over several locations stores
each location's answer with ``location`` and closes with ``apply`` (no heartbeat of its own).
This module holds the only heartbeat ``submit`` and the only ``monitor.heartbeat`` publish.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec

from ..bus import Bus
from ..clock import iso_of, next_stamp, now_iso
from ..model.monitor import STATUS_CODES, Monitor, Scope
from ..notify.dispatcher import Dispatcher
from ..notify.event import NotificationEvent
from ..store.history import Heartbeat
from ..store.monitors import Incident
from ..store.protocols import HistorySink, MonitorRepo
from .conditions import ConditionResult, evaluate_all
from .maintenance import MaintenanceService
from .notices import (
    certificate_notification,
    closing,
    incident_event,
    root_cause,
    status_notification,
)
from .optional import OptionalSteps
from .probes import ProbeResult
from .report import CheckReport, IncidentEvent, StatusEvent
from .runtime import Runtime, Runtimes
from .status import Transition
from .topology import Topology

log = logging.getLogger("dragonopsd.engine")
CERT_WARNING_SECONDS = 14 * 86_400


class Verdict:
    """Turns probe results into status, history, events, incidents and notifications."""

    def __init__(
        self,
        *,
        store: MonitorRepo,
        history: HistorySink,
        maintenance: MaintenanceService,
        notifier: Dispatcher,
        bus: Bus,
        runtimes: Runtimes,
        topology: Topology,
        on_change: Sequence[Callable[[], Awaitable[None]]] = (),
    ) -> None:
        self._store = store
        self._history = history
        self._maintenance = maintenance
        self._notifier = notifier
        self._bus = bus
        self._runtimes = runtimes  # a root cause may be another monitor's state
        # Called after every status transition (e.g. the dashboard drops its cached counts).
        self._on_change = tuple(on_change)
        self._steps = OptionalSteps(log)
        self.topology = topology  # looked up in the inventory index, which keeps it current

    async def record(
        self,
        rt: Runtime,
        result: ProbeResult,
        *,
        forced_ok: bool | None = None,
        note: str | None = None,
    ) -> bool:
        """One probe result of a one-location (or push) monitor, all the way; True when the
        status machine wants an early retry."""
        ok, outcomes, message = evaluate(rt, result, forced_ok, note)
        return await self.apply(rt, result, ok, outcomes, message)

    async def apply(
        self,
        rt: Runtime,
        result: ProbeResult,
        ok: bool,
        outcomes: tuple[ConditionResult, ...],
        message: str | None,
        *,
        failed: list[str] | None = None,
        heartbeat: bool = True,
    ) -> bool:
        """One verdict: status machine, heartbeat, latest state, events, transitions.
        ``heartbeat=False`` for a round's verdict: each location's result was stored as it
        came. True when the status machine wants an early retry."""
        monitor = rt.monitor
        wall = time.time()
        # The monitor's scope is worked out only when something needs it: a window in force
        # somewhere, a transition, a certificate (not the usual check).
        scope: Scope | None = None
        window = None
        if self._steps.run("maintenance lookup", lambda: self._maintenance.any_active(wall), True):
            scope = self.scope(monitor)
            in_scope = scope
            window = self._steps.run(
                "maintenance lookup", lambda: self._maintenance.active_for(in_scope, wall), None
            )
        transition = rt.machine.observe(ok, maintenance=window is not None)
        at = wall
        if heartbeat:
            at = self._stamp(rt, wall, wall)
            self._submit(rt, at, transition.status, result.latency_ms, None if ok else message)
        now = iso_of(at)  # the report's time is the heartbeat's, as history will show it
        rt.last = CheckReport(
            monitor_id=monitor.id,
            status=transition.status,
            ok=ok,
            at=now,
            latency_ms=result.latency_ms,
            message=message,
            error=result.error,
            conditions=outcomes,
            context={k: v for k, v in result.context.items() if k != "BODY"},
            locations=rt.locations,
            failed_locations=tuple(failed) if failed else (),
        )
        if ok:
            rt.successes += 1
        else:
            rt.failures += 1
        self._publish_heartbeat(rt, rt.last)
        if transition.changed:
            rt.since = now
        await self._transition(rt, transition, message, scope, failed)
        if result.cert_expires_at is not None:
            expires = rt.cert_expires_at = result.cert_expires_at
            where = self.scope(monitor) if scope is None else scope
            self._steps.run(
                "certificate warning", lambda: self._warn_certificate(rt, expires, where), None
            )
        return transition.retry

    def location(
        self, rt: Runtime, location: str, result: ProbeResult, at: float
    ) -> tuple[bool, str | None]:
        """One location's answer in a round: stored as a heartbeat of its own the moment it
        arrives (the status machine only sees the round's verdict); (up, message)."""
        ok, _, message = evaluate(rt, result, None, None)
        at = self._stamp(rt, at, time.time())
        scope = self.scope(rt.monitor)
        window = self._steps.run(
            "maintenance lookup", lambda: self._maintenance.active_for(scope, at), None
        )
        status = "maintenance" if window is not None else "up" if ok else "down"
        text = None if ok else f"[{location}] {message or 'failed'}"
        self._submit(rt, at, status, result.latency_ms, text)
        return ok, message

    def undecided(self, rt: Runtime, message: str | None) -> None:
        """A round with too few answers to tell: the status stays, the board says why."""
        if rt.last is not None:
            rt.last = msgspec.structs.replace(
                rt.last, message=message, locations=rt.locations, at=now_iso()
            )
            self._publish_heartbeat(rt, rt.last)

    async def close_paused(self, rt: Runtime) -> None:
        """The monitor was paused: its open incident ends here (nobody checks any more)."""
        incident = rt.incident
        if incident is None:
            return
        rt.incident = None
        rt.down_notified = False
        closed = closing(incident, now_iso(), "monitor paused")
        try:
            await self._store.transition(rt.row.seq, None, None, None, closed)
        except Exception:
            log.exception("could not close the incident of paused monitor %s", rt.monitor.id)
        await self._changed()
        self._publish_incident(
            incident_event(
                rt, incident.id, at=closed.closed_at, cause=None, root=None, closed=closed
            )
        )

    async def _transition(
        self,
        rt: Runtime,
        t: Transition,
        message: str | None,
        scope: Scope | None,
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
        closing_now = t.status == "up" and rt.incident is not None and not t.flapping
        if not (t.changed or opening or closing_now):
            return  # the usual check: nothing changed
        if scope is None:
            scope = self.scope(monitor)
        root = self._steps.run(
            "root cause", lambda: root_cause(rt, self.topology, self._runtimes.all()), None
        )
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
        elif closing_now and rt.incident is not None:
            note = None if t.changed else "up again after flapping"
            closed = closing(rt.incident, rt.since if t.changed else now_iso(), note)
            rt.incident = None
        await self._changed()
        try:
            persist = t.status if t.changed else None
            await self._store.transition(rt.row.seq, persist, message, opened, closed)
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
            self._publish_incident(
                incident_event(rt, opened.id, at=rt.since, cause=message, root=root)
            )
        if closed is not None:
            self._publish_incident(
                incident_event(
                    rt,
                    closed.incident_id,
                    at=closed.closed_at,
                    cause=message,
                    root=root,
                    closed=closed,
                )
            )
        if t.status == "down" and t.alert and root is None:
            rt.down_notified = True
            incident = rt.incident.id if rt.incident else None
            self._notify(
                status_notification(
                    rt, t, "down", message=message, scope=scope, where=where, incident_id=incident
                )
            )
        elif closed is not None and rt.down_notified:
            # UP answers the DOWN that was sent, and only that: a flapping monitor whose
            # DOWN was damped gets no UP either.
            rt.down_notified = False
            self._notify(
                status_notification(
                    rt,
                    t,
                    "up",
                    message=message,
                    scope=scope,
                    where=where,
                    incident_id=closed.incident_id,
                    downtime=closed.duration_seconds,
                )
            )

    def _warn_certificate(self, rt: Runtime, expires_at: float, scope: Any) -> None:
        left = expires_at - time.time()
        if left > CERT_WARNING_SECONDS or rt.cert_warned == expires_at:
            return
        rt.cert_warned = expires_at
        self._notifier.publish(certificate_notification(rt, expires_at, left, scope))

    async def _changed(self) -> None:
        for hook in self._on_change:
            await self._steps.run_async("change hook", hook)

    def _publish_incident(self, event: IncidentEvent) -> None:
        self._bus.publish("incidents", event, event.type)

    def _notify(self, event: NotificationEvent) -> None:
        self._steps.run("notification routing", lambda: self._notifier.publish(event), None)

    def scope(self, monitor: Monitor) -> Scope:
        """Where the monitor sits; without the inventory links if they cannot be read."""
        return self._steps.run(
            "topology", lambda: self.topology.scope(monitor), Scope(monitor.id, tuple(monitor.tags))
        )

    @staticmethod
    def _stamp(rt: Runtime, at: float, now: float) -> float:
        # History is keyed by (monitor, millisecond): two results in one millisecond (two
        # locations, a check and a push) must not overwrite each other. A late answer lands
        # just after the newest; none lands far ahead of the clock.
        rt.last_at = next_stamp(at, rt.last_at, now)
        return rt.last_at

    def _submit(
        self, rt: Runtime, at: float, status: str, latency_ms: float | None, message: str | None
    ) -> None:
        self._history.submit(Heartbeat(rt.row.seq, at, STATUS_CODES[status], latency_ms, message))

    def _publish_heartbeat(self, rt: Runtime, report: CheckReport) -> None:
        self._bus.publish(f"monitors.{rt.monitor.id}", report, "monitor.heartbeat")


def evaluate(
    rt: Runtime, result: ProbeResult, forced_ok: bool | None, note: str | None
) -> tuple[bool, tuple[ConditionResult, ...], str | None]:
    """Conditions over one probe result: up or not, each outcome, and what to say."""
    context = result.context
    if result.latency_ms is not None:
        context.setdefault("RESPONSE_TIME", result.latency_ms)
    outcomes = evaluate_all(rt.conditions, context) if forced_ok is None else ()
    ok = forced_ok if forced_ok is not None else all(o.success for o in outcomes)
    failed = next((o for o in outcomes if not o.success), None)
    message = note or result.error or (failed.detail if failed else None)
    return ok, outcomes, None if ok and forced_ok is None else message
