"""A source read and validated, ready to write: what apply.py writes, all checked first.

Cross references are by name (a channel's monitors, a window's monitors) because ids exist
only once the monitors are written; apply.py resolves them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from ..model.inventory import FieldError, in_words
from ..model.monitor import MonitorSpec
from ..monitoring.service import decode_spec
from ..notify.channels import ChannelBody, ChannelCreate
from ..problem import Problem
from ..store.maintenance import WindowSpec
from .report import Entry


@dataclass
class PlannedMonitor:
    """A monitor to create or update, matched by name; channels: the channels alerting on it."""

    spec: MonitorSpec
    entry: Entry
    channels: list[str] = field(default_factory=list)


@dataclass
class PlannedChannel:
    """A channel; its scope becomes the monitors that name it (all of them when scope_all)."""

    body: ChannelBody
    entry: Entry
    scope_all: bool = False


@dataclass
class PlannedWindow:
    """A maintenance window over every monitor (monitors empty) or the ones named."""

    spec: WindowSpec
    entry: Entry
    monitors: list[str] = field(default_factory=list)


@dataclass
class PlannedSecret:
    """A credential for the secrets store (env "default"); monitors reference it by key."""

    key: str
    value: str
    entry: Entry


@dataclass
class Plan:
    """Everything an import writes, and every object it skips, in source order."""

    source: Literal["gatus", "uptime-kuma"]
    monitors: list[PlannedMonitor] = field(default_factory=list)
    channels: list[PlannedChannel] = field(default_factory=list)
    windows: list[PlannedWindow] = field(default_factory=list)
    secrets: list[PlannedSecret] = field(default_factory=list)
    skipped: list[Entry] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def entries(self) -> list[Entry]:
        """Every entry: secrets first (monitors need them), then monitors, channels, windows."""
        out: list[Entry] = [s.entry for s in self.secrets]
        out += [m.entry for m in self.monitors]
        out += [c.entry for c in self.channels]
        out += [w.entry for w in self.windows]
        return out + self.skipped


def skip(plan: Plan, kind: Any, name: str, why: str) -> None:
    """Record an object not imported, and why."""
    plan.skipped.append(Entry(kind=kind, name=name, outcome="skipped", notes=[why]))


def entry(kind: Any, name: str, notes: list[str]) -> Entry:
    """An entry for an object imported, mapped when notes say what changed."""
    return Entry(kind=kind, name=name, outcome="mapped" if notes else "imported", notes=notes)


def monitor_spec(raw: dict[str, Any]) -> MonitorSpec | str:
    """raw validated as the API validates a POST (conditions parsed), or why it is refused."""
    try:
        return decode_spec(raw)
    except Problem as exc:
        return "; ".join(f"{i.field}: {i.message}" for i in exc.errors) or exc.detail


def channel_body(raw: dict[str, Any]) -> ChannelBody | str:
    """raw validated as POST /api/notifications validates it, or why it is refused."""
    try:
        body: ChannelBody = msgspec.convert(raw, ChannelCreate)
    except msgspec.ValidationError as exc:
        return in_words(str(exc))
    except FieldError as exc:
        return f"{exc.path}: {exc.message}"
    return body


def window_spec(raw: dict[str, Any]) -> WindowSpec | str:
    """raw validated as POST /api/maintenance validates it, or why it is refused."""
    try:
        return msgspec.convert(raw, WindowSpec)
    except msgspec.ValidationError as exc:
        return in_words(str(exc))
    except FieldError as exc:
        return f"{exc.path}: {exc.message}"
