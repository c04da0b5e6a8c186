"""Write a plan: match each object by name, create what is new, update what differs.

Everything was validated when the plan was made (plan.py), so a write here fails only when
the database refuses it (a constraint, a trigger) or goes away. All the writes of one import
are one transaction (the target's unit of work: every store write inside it joins it), so such
a failure leaves nothing of the import behind; a refusal is an ImportFailed naming the object.
What the running daemon does with the objects (scheduling, reloads) waits for the COMMIT.
Running an import twice finds every object by its name and leaves it unchanged: nothing is
duplicated.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import msgspec

from ..model.monitor import MonitorSpec
from ..notify.channels import fields_of
from ..problem import Problem
from ..store.maintenance import Window, WindowScope, WindowSpec
from ..store.monitors import MonitorRow
from ..store.notifications import ChannelFields, StoredChannel
from ..store.sql import is_constraint
from ..store.unit import UnitOfWork
from .plan import Plan
from .report import Entry, ImportFailed, Report

T = TypeVar("T")


class MonitorWrites(Protocol):
    """Monitor rows (MonitorStore)."""

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
    """Maintenance window rows (MaintenanceStore)."""

    async def all(self) -> list[Window]: ...
    async def insert(self, spec: WindowSpec) -> Window: ...
    async def replace(self, ident: str, spec: WindowSpec) -> Window: ...


class SecretWrites(Protocol):
    """The secrets store by key (env "default"): put returns create, update or unchanged."""

    async def put(self, key: str, value: str, dry_run: bool) -> str: ...


@dataclass
class Written:
    """What an import's transaction wrote, for what follows its COMMIT."""

    monitors: list[MonitorRow] = field(default_factory=list)
    channels: bool = False
    windows: bool = False


@dataclass
class Target:
    """Where an import writes: the stores of one database, in one transaction of unit."""

    unit: UnitOfWork
    monitors: MonitorWrites
    channels: ChannelWrites
    windows: WindowWrites
    secrets: SecretWrites | None
    # After the COMMIT (never after a rollback): schedule the monitors, reload the rest.
    settle: Callable[[Written], Awaitable[None]] | None = None


def _set(entry: Entry, action: str) -> None:
    entry.action = action  # type: ignore[assignment]  # one of Action's values


async def apply(plan: Plan, target: Target, dry_run: bool) -> Report:
    """Write plan to target in one transaction (or, dry_run, only say what would be
    written); ImportFailed, with nothing written, when the database refuses an object."""
    written = Written()
    if dry_run:
        await _walk(plan, target, written, dry_run)
    else:
        async with target.unit.write():
            await _walk(plan, target, written, dry_run)
        if target.settle is not None:
            await target.settle(written)
    return Report(
        source=plan.source, dry_run=dry_run, entries=plan.entries(), warnings=plan.warnings
    )


async def _walk(plan: Plan, target: Target, written: Written, dry_run: bool) -> None:
    """Match every planned object and write it (unless dry_run); secrets first, as monitors
    reference them, then monitors, whose ids channels and windows take."""
    for planned in plan.secrets:
        if target.secrets is None:
            planned.entry.outcome = "skipped"
            planned.entry.notes.append("no secrets key is loaded: the credential is not stored")
            plan.warnings.append(
                f"{planned.key} is referenced but not stored: create a secrets key "
                "(`dragonopsd keys generate`) and import again"
            )
            continue
        step = target.secrets.put(planned.key, planned.value, dry_run)
        _set(planned.entry, await _writing(planned.entry, step))
    ids = await _monitors(plan, target, written, dry_run)
    await _channels(plan, target, ids, written, dry_run)
    await _windows(plan, target, ids, written, dry_run)


async def _writing(entry: Entry, step: Awaitable[T]) -> T:
    """Await one object's write; a refusal (a constraint, a 4xx from the store) becomes an
    ImportFailed that names the object. The database's own trouble (503) stays what it is."""
    try:
        return await step
    except Problem as exc:
        if exc.status >= 500:
            raise
        raise ImportFailed(f"{entry.kind} {entry.name!r}: {exc.detail}") from None
    except Exception as exc:
        if not is_constraint(exc):
            raise
        raise ImportFailed(f"{entry.kind} {entry.name!r}: the database refused it: {exc}") from None


async def _monitors(plan: Plan, target: Target, written: Written, dry_run: bool) -> dict[str, str]:
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
            ids[name] = f"new:{name}"
            if not dry_run:
                row = await _writing(planned.entry, target.monitors.create(spec))
                written.monitors.append(row)
                ids[name] = row.monitor.id
        elif row.spec == spec:
            _set(planned.entry, "unchanged")
            ids[name] = row.monitor.id
        else:
            _set(planned.entry, "update")
            ids[name] = row.monitor.id
            if not dry_run:
                step = target.monitors.replace(row.monitor.id, spec)
                written.monitors.append(await _writing(planned.entry, step))
    return ids


async def _channels(
    plan: Plan, target: Target, ids: dict[str, str], written: Written, dry_run: bool
) -> None:
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
                await _writing(planned.entry, target.channels.create(fields))
                written.channels = True
        elif _same(old, fields):
            _set(planned.entry, "unchanged")
        else:
            _set(planned.entry, "update")
            if not dry_run:
                await _writing(planned.entry, target.channels.update(old.id, _replacing(fields)))
                written.channels = True


def _replacing(fields: ChannelFields) -> Callable[[StoredChannel], ChannelFields]:
    def change(_old: StoredChannel) -> ChannelFields:
        return fields

    return change


def _same(old: StoredChannel, new: ChannelFields) -> bool:
    mine = (old.name, old.kind, old.enabled, old.events, old.scope, old.config)
    return mine == (new.name, new.kind, new.enabled, new.events, new.scope, new.config)


async def _windows(
    plan: Plan, target: Target, ids: dict[str, str], written: Written, dry_run: bool
) -> None:
    current = {w.name: w for w in await target.windows.all()}
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
                await _writing(planned.entry, target.windows.insert(spec))
                written.windows = True
        elif _window_spec(old) == msgspec.to_builtins(spec):
            _set(planned.entry, "unchanged")
        else:
            _set(planned.entry, "update")
            if not dry_run:
                await _writing(planned.entry, target.windows.replace(old.id, spec))
                written.windows = True


def _real(ident: str | None) -> bool:
    """An id that exists (not a dry run's stand-in for a monitor not yet written)."""
    return ident is not None and not ident.startswith("new:")


def _window_spec(window: Window) -> Any:
    names = {f.encode_name for f in msgspec.structs.fields(WindowSpec)}
    wire = msgspec.to_builtins(window)
    spec = msgspec.convert({k: v for k, v in wire.items() if k in names}, WindowSpec)
    return msgspec.to_builtins(spec)
