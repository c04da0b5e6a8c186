"""What a resource alert says to the outside: the ``server.alert`` event, the API's view of a
rule's state, the closing of an incident and the notification. Pure functions; ``alerts.py``
decides when."""

from __future__ import annotations

from datetime import datetime

import msgspec

from ..clock import not_before
from ..model.inventory import Wire
from ..model.monitor import Scope
from ..notify.event import NotificationEvent
from ..store.alerts import AlertIncident, AlertRule


class AlertEvent(Wire, kw_only=True):
    """``server.alert``: a rule started (``firing``) or stopped (``resolved``) on a server."""

    server_id: str
    rule_id: str
    rule_name: str
    metric: str
    expression: str
    state: str
    value: float | None
    threshold: float | None
    at: str
    incident_id: str
    cause: str
    root_cause: str | None = None
    duration_seconds: float | None = None
    resolution: str | None = None


class AlertState(Wire, kw_only=True):
    """One rule on one server as the API shows it: ``ok``, ``pending`` (above, not yet for
    long enough), ``maintenance`` (would fire, held back by a window) or ``firing``."""

    rule: AlertRule
    state: str
    since: str | None = None
    value: float | None = None
    incident: AlertIncident | None = None


def alert_event(rule: AlertRule, incident: AlertIncident, value: float | None) -> AlertEvent:
    """``firing`` while the incident is open, ``resolved`` once it is closed."""
    return AlertEvent(
        server_id=incident.server_id,
        rule_id=rule.id,
        rule_name=rule.name,
        metric=rule.metric,
        expression=rule.expression,
        state="resolved" if incident.closed_at else "firing",
        value=value,
        threshold=rule.threshold,
        at=incident.closed_at or incident.opened_at,
        incident_id=incident.id,
        cause=incident.cause,
        root_cause=incident.root_cause,
        duration_seconds=incident.duration_seconds,
        resolution=incident.resolution,
    )


def closing(incident: AlertIncident, at: str, resolution: str | None) -> AlertIncident:
    """incident closed at `at` (never before it opened: the clock may have gone back)."""
    closed_at = not_before(incident.opened_at, at)
    seconds = (
        datetime.fromisoformat(closed_at) - datetime.fromisoformat(incident.opened_at)
    ).total_seconds()
    return msgspec.structs.replace(
        incident, closed_at=closed_at, duration_seconds=max(0.0, seconds), resolution=resolution
    )


def alert_notification(
    rule: AlertRule, incident: AlertIncident, server_name: str, scope: Scope
) -> NotificationEvent:
    """A ``down`` for a firing rule, the ``up`` that answers it once closed (kind resource),
    so channels that route monitors' DOWN/UP by scope route these the same way."""
    firing = incident.closed_at is None
    return NotificationEvent(
        event="down" if firing else "up",
        # Dedupe and routing key: one per rule and server.
        monitor_id=f"alert:{rule.id}:{incident.server_id}",
        monitor_name=f"{server_name}: {rule.name}",
        kind="resource",
        target=server_name,
        status="firing" if firing else "resolved",
        previous="ok" if firing else "firing",
        message=incident.cause if firing else incident.resolution,
        at=incident.closed_at or incident.opened_at,
        downtime_seconds=incident.duration_seconds,
        incident_id=incident.id,
        scope=scope,
    )
