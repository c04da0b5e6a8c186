"""Write a plan: match each object by name, create what is new, update what differs.

Everything was validated when the plan was made (plan.py), so a write here fails only when
the database does; the writes then run one object at a time (each its own transaction), the
same writes the API makes. Running an import twice finds every object by its name and leaves
it unchanged: nothing is duplicated.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from ..model.monitor import MonitorSpec
from ..notify.channels import fields_of
from ..store.maintenance import Window, WindowScope, WindowSpec
from ..store.monitors import MonitorRow
from ..store.notifications import ChannelFields, StoredChannel
from .plan import Plan
from .report import Entry, Report


class MonitorWrites(Protocol):
    """Monitor rows: the store, or the service that also schedules them."""

    async def all(self) -> list[MonitorRow]: ...
    async def create(self, spec: MonitorSpec) -> MonitorRow: ...
    async def replace(self, ident: str, spec: MonitorSpec) -> MonitorRow: ...


class ChannelWrites(Protocol):
    """Notification channel rows (NotificationStore)."""

    async def list(self) -> list[StoredChannel]: ...
    async def create(self, fields: ChannelFields) -> StoredChannel: ...
    async def update(
        self, ident: str, change: Callable[[StoredChannel], ChannelFields]
    ) -> StoredChannel: ...


class WindowWrites(Protocol):
    """Maintenance windows: the store, or the service that also re-plans them."""

    async def create(self, spec: WindowSpec) -> Window: ...
    async def replace(self, ident: str, spec: WindowSpec) -> Window: ...


class SecretWrites(Protocol):
    """The secrets store by key (env "default"): put returns create, update or unchanged."""

    async def put(self, key: str, value: str, dry_run: bool) -> str: ...


@dataclass
class Target:
    """Where an import writes; windows_now lists the windows as they are."""

    monitors: MonitorWrites
    channels: ChannelWrites
    windows: WindowWrites
    windows_now: Callable[[], Awaitable[list[Window]]]
    secrets: SecretWrites | None
    after: Callable[[], Awaitable[None]] | None = None  # e.g. reload the notifier's channels


def _set(entry: Entry, action: str) -> None:
    entry.action = action  # type: ignore[assignment]  # one of Action's values


async def apply(plan: Plan, target: Target, dry_run: bool) -> Report:
    """Write plan to target (or, dry_run, only say what would be written)."""
    for planned in plan.secrets:
        if target.secrets is None:
            planned.entry.outcome = "skipped"
            planned.entry.notes.append("no secrets key is loaded: the credential is not stored")
            plan.warnings.append(
                f"{planned.key} is referenced but not stored: create a secrets key "
                "(`dragonopsd keys generate`) and import again"
            )
            continue
        _set(planned.entry, await target.secrets.put(planned.key, planned.value, dry_run))
    ids = await _monitors(plan, target, dry_run)
    await _channels(plan, target, ids, dry_run)
    await _windows(plan, target, ids, dry_run)
    if not dry_run and target.after is not None:
        await target.after()
    return Report(
        source=plan.source, dry_run=dry_run, entries=plan.entries(), warnings=plan.warnings
    )


async def _monitors(plan: Plan, target: Target, dry_run: bool) -> dict[str, str]:
    """Create or update each monitor; returns name -> id (a stand-in id on a dry run)."""
    current = {row.monitor.name: row for row in await target.monitors.all()}
    ids: dict[str, str] = {}
    for planned in plan.monitors:
        name, spec, row = planned.entry.name, planned.spec, current.get(planned.entry.name)
        if row is not None and row.monitor.managed_by == "config":
            planned.entry.outcome = "skipped"
            planned.entry.notes.append("a monitor of this name is managed by the config file")
            ids[name] = row.monitor.id
            continue
        if row is None:
            _set(planned.entry, "create")
            ids[name] = (
                f"new:{name}" if dry_run else (await target.monitors.create(spec)).monitor.id
            )
        elif row.spec == spec:
            _set(planned.entry, "unchanged")
            ids[name] = row.monitor.id
        else:
            _set(planned.entry, "update")
            ids[name] = row.monitor.id
            if not dry_run:
                await target.monitors.replace(row.monitor.id, spec)
    return ids


async def _channels(plan: Plan, target: Target, ids: dict[str, str], dry_run: bool) -> None:
    current = {c.name: c for c in await target.channels.list()}
    for planned in plan.channels:
        fields = fields_of(planned.body)
        if not planned.scope_all:
            routed = [
                ids[m.entry.name]
                for m in plan.monitors
                if planned.entry.name in m.channels and m.entry.name in ids
            ]
            fields = msgspec.structs.replace(fields, scope={"monitorIds": routed})
        old = current.get(planned.entry.name)
        if old is None:
            _set(planned.entry, "create")
            if not dry_run:
                await target.channels.create(fields)
        elif _same(old, fields):
            _set(planned.entry, "unchanged")
        else:
            _set(planned.entry, "update")
            if not dry_run:
                await target.channels.update(old.id, _replacing(fields))


def _replacing(fields: ChannelFields) -> Callable[[StoredChannel], ChannelFields]:
    def change(_old: StoredChannel) -> ChannelFields:
        return fields

    return change


def _same(old: StoredChannel, new: ChannelFields) -> bool:
    mine = (old.name, old.kind, old.enabled, old.events, old.scope, old.config)
    return mine == (new.name, new.kind, new.enabled, new.events, new.scope, new.config)


async def _windows(plan: Plan, target: Target, ids: dict[str, str], dry_run: bool) -> None:
    current = {w.name: w for w in await target.windows_now()}
    for planned in plan.windows:
        spec = planned.spec
        if planned.monitors:
            routed = [uuid.UUID(ids[m]) for m in planned.monitors if _real(ids.get(m))]
            scope = WindowScope(monitor_ids=routed)
            if dry_run and not routed and any(m in ids for m in planned.monitors):
                _set(planned.entry, "create")  # its monitor is new: so is the window
                continue
            if not scope.monitor_ids:
                planned.entry.outcome = "skipped"
                planned.entry.notes.append("its endpoint was not imported")
                continue
            spec = msgspec.structs.replace(spec, scope=scope)
        old = current.get(planned.entry.name)
        if old is None:
            _set(planned.entry, "create")
            if not dry_run:
                await target.windows.create(spec)
        elif _window_spec(old) == msgspec.to_builtins(spec):
            _set(planned.entry, "unchanged")
        else:
            _set(planned.entry, "update")
            if not dry_run:
                await target.windows.replace(old.id, spec)


def _real(ident: str | None) -> bool:
    """An id that exists (not a dry run's stand-in for a monitor not yet written)."""
    return ident is not None and not ident.startswith("new:")


def _window_spec(window: Window) -> Any:
    names = {f.encode_name for f in msgspec.structs.fields(WindowSpec)}
    wire = msgspec.to_builtins(window)
    spec = msgspec.convert({k: v for k, v in wire.items() if k in names}, WindowSpec)
    return msgspec.to_builtins(spec)
