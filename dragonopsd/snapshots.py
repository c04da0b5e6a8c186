"""Websocket snapshots: how a new subscriber reads each topic's latest state from its owner.

A builder called once by the app factory (live/hub.py's docstring says what a provider is);
the topics whose state lives nowhere (inventory) get an empty snapshot.
"""

from __future__ import annotations

from .actions.service import ActionService
from .live.hub import Hub, Item
from .live.topics import topic_id
from .monitoring.alerts import AlertService
from .monitoring.incident_desk import IncidentDesk
from .monitoring.views import EngineView
from .sampling.sampler import Sampler
from .store.monitors import MonitorStore


def register(
    hub: Hub,
    *,
    view: EngineView,
    monitors: MonitorStore,
    sampler: Sampler,
    actions: ActionService,
    alerts: AlertService,
    desk: IncidentDesk | None = None,
) -> None:
    """Give hub a snapshot provider for every topic whose state one of these services holds."""

    async def all_monitors(topic: str) -> list[Item]:
        return [(topic, "monitor.state", s) for s in view.states()]

    async def one_monitor(topic: str) -> list[Item]:
        state = view.state(topic_id(topic) or "")
        return [] if state is None else [(topic, "monitor.state", state)]

    async def open_incidents(topic: str) -> list[Item]:
        rows = await monitors.incidents(
            monitor_id=None, state="open", since=None, before=None, limit=1000
        )
        items: list[Item] = [(topic, "incident.open", i) for i in rows]
        if desk is not None:  # manual ones too, with what people wrote on both kinds
            items = [(topic, "incident.open", i) for i in await desk.notes.annotate(rows)]
            manual = await desk.notes.manual_incidents(
                state="open", since=None, before=None, limit=1000
            )
            items += [(topic, "incident.open", i) for i in manual]
        return items

    async def nothing(topic: str) -> list[Item]:
        return []  # inventory has no "latest state": clients read it over REST

    async def server_metrics(topic: str) -> list[Item]:
        wanted = topic_id(topic)  # None for servers.*.metrics
        one = sampler.latest(wanted) if wanted else None
        samples = sampler.all_latest() if wanted is None else [one] if one else []
        items: list[Item] = [
            (f"servers.{s.server_id}.metrics", "server.metrics", s) for s in samples
        ]
        if wanted is not None:  # a server's page also gets what fires on it now
            items += [(topic, "server.alert", a) for a in alerts.open_alerts(wanted)]
        return items

    async def pending_actions(topic: str) -> list[Item]:
        return [(topic, "action.updated", e) for e in await actions.pending()]

    hub.register_snapshot("monitors", all_monitors)
    hub.register_snapshot("monitors.{id}", one_monitor)
    hub.register_snapshot("incidents", open_incidents)
    hub.register_snapshot("inventory", nothing)
    hub.register_snapshot("servers.*.metrics", server_metrics)
    hub.register_snapshot("servers.{id}.metrics", server_metrics)
    hub.register_snapshot("actions", pending_actions)
