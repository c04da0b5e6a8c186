"""The one value the scheduler hands to notifications, and the human text every preset shares."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from ..monitor import Scope

EventKind = Literal["down", "up", "certificate", "test"]
ICONS = {"down": "🔴", "up": "🟢", "certificate": "🟠", "test": "🔔"}
COLOURS = {"down": 0xD93025, "up": 0x1E8E3E, "certificate": 0xF29900, "test": 0x1A73E8}


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
        case _:
            return f"{icon} TEST: {event.message or 'dragonopsd notifications reach this channel'}"


def facts(event: NotificationEvent) -> list[tuple[str, str]]:
    """Label/value pairs worth showing under the headline, in a fixed order."""
    rows = [("Monitor", event.monitor_name), ("Kind", event.kind)]
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
    rows.append(("At", event.at))
    return rows
