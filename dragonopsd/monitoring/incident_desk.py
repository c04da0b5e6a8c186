"""Incidents people write and work on: open one by hand, post updates, acknowledge.

Every step is stored first, then told: an ``incident.*`` event on the ``incidents`` bus topic
(the websocket's), and a notification to the channels whose scope covers the incident (an
automatic incident's monitor, or any target of a manual one). Chat webhooks cannot reply in a
thread (an incoming-webhook URL never returns the message's id), so an acknowledgement is a
message of its own, routed like the DOWN it answers.
"""

from __future__ import annotations

import logging
from typing import Literal

from ..bus import Bus
from ..clock import now_iso
from ..model.inventory import Wire
from ..model.monitor import Scope
from ..notify.dispatcher import Dispatcher
from ..notify.event import EventKind, NotificationEvent
from ..problem import Problem, not_found
from ..store.incident_notes import (
    IncidentSpec,
    IncidentTarget,
    ManualIncident,
    MonitorIncident,
    UpdateSpec,
)
from ..store.monitors import Incident
from ..store.protocols import IncidentNotesRepo, MonitorRepo
from .report import target_of
from .runtime import Runtimes
from .topology import Topology

log = logging.getLogger("dragonopsd.incidents")
TOPIC = "incidents"


class IncidentNote(Wire, kw_only=True):
    """``incident.opened`` (manual), ``incident.updated``, ``incident.closed`` (manual,
    resolved), ``incident.reopened`` and ``incident.acknowledged`` on the bus."""

    type: str
    incident_id: str
    kind: Literal["manual", "monitor"]
    at: str
    title: str | None = None
    monitor_id: str | None = None
    state: str | None = None
    severity: str | None = None
    message: str | None = None
    by: str | None = None
    # A manual incident's targets: what a scoped subscriber's gate places it by (livescope.py).
    targets: list[IncidentTarget] | None = None


class IncidentDesk:
    """Manual incidents, updates and acknowledgements, stored, published and notified."""

    def __init__(
        self,
        *,
        notes: IncidentNotesRepo,
        monitors: MonitorRepo,
        bus: Bus,
        notifier: Dispatcher,
        runtimes: Runtimes,
        topology: Topology,
    ) -> None:
        self.notes = notes
        self._monitors = monitors
        self._bus = bus
        self._notifier = notifier
        self._runtimes = runtimes
        self._topology = topology

    async def find(self, ident: str) -> ManualIncident | MonitorIncident:
        """Any incident by id, with its updates and acknowledgement; 404 otherwise."""
        manual = await self.notes.manual(ident)
        if manual is not None:
            return manual
        found = await self._monitors.incident(ident)
        if found is None:
            raise not_found("incident", ident[:64])
        return (await self.notes.annotate([found]))[0]

    async def open(self, spec: IncidentSpec, author: str) -> ManualIncident:
        """Open a manual incident; the channels covering any of its targets hear of it."""
        incident = await self.notes.create(spec, author)
        self._publish("incident.opened", incident, message=spec.message, by=author)
        await self._notify_manual(incident, "incident", spec.message)
        return incident

    async def update(
        self, ident: str, spec: UpdateSpec, author: str
    ) -> ManualIncident | MonitorIncident:
        """Add an update; a manual incident follows its state (resolved closes, anything
        after that re-opens and notifies again)."""
        change = await self.notes.add_update(ident, spec, author)
        incident = await self.find(ident)
        kind = (
            "incident.closed"
            if change.closed
            else "incident.reopened"
            if change.reopened
            else "incident.updated"
        )
        self._publish(kind, incident, message=spec.message, by=author)
        if isinstance(incident, ManualIncident):
            event: EventKind = "resolved" if change.closed else "incident"
            await self._notify_manual(incident, event, spec.message)
        else:
            await self._notify_monitor(incident, "incident", spec.message, state=spec.state)
        return incident

    async def acknowledge(self, ident: str, by: str) -> ManualIncident | MonitorIncident:
        """Record who took an open incident on: its repeats stop until it closes or re-opens.
        A second acknowledgement keeps the first and tells nobody again."""
        _, new = await self.notes.acknowledge(ident, by)
        incident = await self.find(ident)
        if new:
            self._publish("incident.acknowledged", incident, by=incident.acknowledged_by)
            who = incident.acknowledged_by
            if isinstance(incident, ManualIncident):
                await self._notify_manual(incident, "acknowledged", None, by=who)
            else:
                await self._notify_monitor(incident, "acknowledged", None, by=who)
        return incident

    # ------------------------------------------------------------------ telling

    def _publish(
        self,
        kind: str,
        incident: ManualIncident | MonitorIncident,
        *,
        message: str | None = None,
        by: str | None = None,
    ) -> None:
        if isinstance(incident, ManualIncident):
            note = IncidentNote(
                type=kind,
                incident_id=incident.id,
                kind="manual",
                at=now_iso(),
                title=incident.title,
                state=incident.state,
                severity=incident.severity,
                message=message,
                by=by,
                targets=incident.targets,
            )
        else:
            note = IncidentNote(
                type=kind,
                incident_id=incident.id,
                kind="monitor",
                at=now_iso(),
                monitor_id=incident.monitor_id,
                message=message,
                by=by,
            )
        self._bus.publish(TOPIC, note, kind)

    async def scopes(self, incident: ManualIncident) -> list[Scope]:
        """Where each target of a manual incident sits."""
        found = []
        for target in incident.targets:
            if target.kind == "monitor":
                found.append(await self.monitor_scope(target.id))
            else:
                found.append(self._topology.place(target.kind, target.id))
        return found

    async def monitor_scope(self, monitor_id: str) -> Scope:
        """Where a monitor sits, whichever core runs it."""
        rt = self._runtimes.of_id(monitor_id)
        if rt is not None:
            return self._topology.scope(rt.monitor)
        try:  # owned by another core, or paused: the row knows where it sits
            return self._topology.scope((await self._monitors.get(monitor_id)).monitor)
        except Problem:  # deleted since: only its id is left to route on
            return Scope(monitor_id)

    def manual_event(
        self,
        incident: ManualIncident,
        event: EventKind,
        message: str | None,
        scopes: list[Scope],
        by: str | None = None,
    ) -> NotificationEvent:
        """The notification of one step of a manual incident."""
        monitor = next((t.id for t in incident.targets if t.kind == "monitor"), "")
        return NotificationEvent(
            event=event,
            monitor_id=monitor,
            monitor_name=incident.title,
            kind="manual",
            target="",
            status=incident.state,
            previous=None,
            message=message,
            at=now_iso(),
            incident_id=incident.id,
            scope=scopes[0] if scopes else Scope(monitor),
            also=scopes[1:],
            title=incident.title,
            severity=incident.severity,
            acknowledged_by=by,
        )

    async def _notify_manual(
        self,
        incident: ManualIncident,
        event: EventKind,
        message: str | None,
        by: str | None = None,
    ) -> None:
        scopes = await self.scopes(incident)
        self._notifier.publish(self.manual_event(incident, event, message, scopes, by))

    async def monitor_event(
        self,
        incident: Incident,
        event: EventKind,
        message: str | None,
        *,
        state: str = "down",
        by: str | None = None,
    ) -> NotificationEvent:
        """The notification of one step of an automatic incident (an update, an
        acknowledgement, a repeat), addressed like the monitor's DOWN."""
        rt = self._runtimes.of_id(incident.monitor_id)
        kind, target = ("", "")
        if rt is not None:
            kind, target = rt.monitor.kind, target_of(rt.monitor)
        return NotificationEvent(
            event=event,
            monitor_id=incident.monitor_id,
            monitor_name=incident.monitor_name,
            kind=kind or "monitor",
            target=target,
            status=state,
            previous=None,
            message=message or incident.cause,
            at=now_iso(),
            cause=incident.cause,
            locations=list(incident.locations),
            incident_id=incident.id,
            scope=await self.monitor_scope(incident.monitor_id),
            acknowledged_by=by,
        )

    async def _notify_monitor(
        self,
        incident: Incident,
        event: EventKind,
        message: str | None,
        *,
        state: str = "down",
        by: str | None = None,
    ) -> None:
        note = await self.monitor_event(incident, event, message, state=state, by=by)
        self._notifier.publish(note)
