"""The one value the scheduler hands to notifications, and the human text every preset shares."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

import msgspec

from ..model.monitor import Scope

EventKind = Literal[
    "down", "up", "certificate", "test", "reminder", "acknowledged", "incident", "resolved"
]
ICONS = {
    "down": "🔴",
    "up": "🟢",
    "certificate": "🟠",
    "test": "🔔",
    "reminder": "🔁",
    "acknowledged": "👀",
    "incident": "🟠",
    "resolved": "🟢",
}
COLOURS = {
    "down": 0xD93025,
    "up": 0x1E8E3E,
    "certificate": 0xF29900,
    "test": 0x1A73E8,
    "reminder": 0xD93025,
    "acknowledged": 0x1A73E8,
    "incident": 0xF29900,
    "resolved": 0x1E8E3E,
}
# What a channel must route for the kinds it cannot pick on their own: a repeat and an
# acknowledgement belong to the DOWN they follow, a manual incident's news to DOWN, its
# resolution to UP. Channels keep choosing among down, up and certificate only.
ROUTED_AS = {"reminder": "down", "acknowledged": "down", "incident": "down", "resolved": "up"}


class NotificationEvent(msgspec.Struct, frozen=True, rename="camel", kw_only=True):
    """A monitor transition (or a certificate warning) worth telling people about.

    ``target`` arrives sanitised by the caller (no userinfo); it and every other field may be
    shown to whoever reads the channel. This is also the generic webhook's JSON body.
    """

    event: EventKind
    monitor_id: str
    monitor_name: str
    kind: str
    target: str
    status: str
    previous: str | None
    message: str | None
    at: str
    downtime_seconds: float | None = None
    cert_expires_at: str | None = None
    locations: list[str] = []
    cause: str | None = None
    incident_id: str | None = None
    scope: Scope
    # A manual incident: its title and severity, and where its other targets sit (a channel
    # that covers any of them hears about it).
    title: str | None = None
    severity: str | None = None
    acknowledged_by: str | None = None
    also: list[Scope] = []


# C0 and C1 controls and the Unicode line and paragraph separators: each can end a header or
# start a line a reader would take for the sender's (a forged "Bcc:" in a mail body).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def plain(text: str) -> str:
    """text with every run of control characters folded to one space."""
    return _CONTROL.sub(" ", text)


def _plain_value(value: Any) -> Any:
    if isinstance(value, str):
        return plain(value)
    if isinstance(value, list | tuple):
        return type(value)(_plain_value(v) for v in value)
    if isinstance(value, msgspec.Struct):
        return msgspec.structs.replace(
            value, **{name: _plain_value(getattr(value, name)) for name in value.__struct_fields__}
        )
    return value


def sanitised(event: NotificationEvent) -> NotificationEvent:
    """event with control characters folded out of every text field, however deep.

    Names, push messages and probe errors come from users and remote peers; every channel
    renders from this copy, so none of them can carry a line break a reader would trust.
    """
    result: NotificationEvent = _plain_value(event)
    return result


def duration(seconds: float) -> str:
    """``5m 12s``, ``2h 3m``, ``3d 4h``: two units are enough to read at a glance."""
    total = max(0, round(seconds))
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    while len(parts) > 1 and parts[0][0] == 0:
        parts.pop(0)
    return " ".join(f"{n}{unit}" for n, unit in parts[:2])


def _parse(at: str) -> datetime | None:
    try:
        return datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        return None


def _cert_detail(event: NotificationEvent) -> str:
    if event.cert_expires_at is None:
        return "certificate expires soon"
    expires, now = _parse(event.cert_expires_at), _parse(event.at)
    if expires is None or now is None or expires.tzinfo is None or now.tzinfo is None:
        return f"certificate expires {event.cert_expires_at}"
    days = (expires - now).total_seconds() / 86_400
    if days < 0:
        return f"certificate expired {event.cert_expires_at}"
    return f"certificate expires {event.cert_expires_at} (in {days:.0f} days)"


def headline(event: NotificationEvent) -> str:
    """One line: ``🔴 DOWN: api (https://api.example) — connection refused``."""
    icon = ICONS[event.event]
    label = event.event.upper()
    where = f"{event.monitor_name} ({event.target})" if event.target else event.monitor_name
    match event.event:
        case "down":
            detail = event.message or event.cause or "check failed"
            return f"{icon} {label}: {where} — {detail}"
        case "up":
            after = (
                f" after {duration(event.downtime_seconds)}"
                if event.downtime_seconds is not None
                else ""
            )
            return f"{icon} {label}: {where}{after}"
        case "certificate":
            return f"{icon} CERTIFICATE: {where} — {_cert_detail(event)}"
        case "reminder":
            still = "STILL OPEN" if event.kind == "manual" else "STILL DOWN"
            return f"{icon} {still}: {where} — {event.message or event.cause or 'not resolved'}"
        case "acknowledged":
            return f"{icon} ACKNOWLEDGED: {where} — by {event.acknowledged_by or 'someone'}"
        case "incident" | "resolved":
            severity = f" [{event.severity}]" if event.severity else ""
            news = f" — {event.message}" if event.message else ""
            return f"{icon} {event.status.upper()}{severity}: {where}{news}"
        case _:
            return f"{icon} TEST: {event.message or 'dragonopsd notifications reach this channel'}"


def facts(event: NotificationEvent) -> list[tuple[str, str]]:
    """Label/value pairs worth showing under the headline, in a fixed order."""
    subject = "Incident" if event.kind == "manual" else "Monitor"
    rows = [(subject, event.monitor_name), ("Kind", event.kind)]
    if event.target:
        rows.append(("Target", event.target))
    rows.append(
        ("Status", event.status if event.previous is None else f"{event.previous} → {event.status}")
    )
    if event.message:
        rows.append(("Message", event.message))
    if event.cause and event.cause != event.message:
        rows.append(("Cause", event.cause))
    if event.downtime_seconds is not None:
        rows.append(("Downtime", duration(event.downtime_seconds)))
    if event.cert_expires_at:
        rows.append(("Certificate expires", event.cert_expires_at))
    if event.locations:
        rows.append(("Locations", ", ".join(event.locations)))
    if event.severity:
        rows.append(("Severity", event.severity))
    if event.acknowledged_by:
        rows.append(("Acknowledged by", event.acknowledged_by))
    if event.incident_id:
        rows.append(("Incident", event.incident_id))
    rows.append(("At", event.at))
    return rows
