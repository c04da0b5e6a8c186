"""The config file's declared objects, synced into the store at start and on SIGHUP:
``[[monitors]]``, then ``[[maintenance]]`` and ``[[notifications]]`` (which name monitors).

Each list is all or nothing on its own, as ``[[monitors]]`` is: with any table invalid (or a
scope naming a monitor that does not exist) nothing of that list is created, changed or
deleted. Identity is the name among the rows the file manages (``managedBy: "config"``); a
table named like exactly one row made through the API takes that row over (so an export loaded
on the database it came from changes nothing but who manages what), other API rows are never
touched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from ..bus import Bus
from ..cluster.core import Core
from ..config import Config
from ..notify.dispatcher import CHANNELS_TOPIC, Dispatcher
from ..problem import Problem
from ..store.maintenance import spec_body
from ..store.notifications import ChannelFields, StoredChannel
from .declared import (
    Declared,
    MonitorIds,
    channel_fields,
    parse_channel_tables,
    parse_window_tables,
    window_spec,
)
from .maintenance import MaintenanceService
from .service import MonitorService

log = logging.getLogger("dragonopsd.config_sync")


class _HasName(Protocol):
    @property
    def name(self) -> str: ...


_Named = TypeVar("_Named", bound=_HasName)


def _same(row: StoredChannel, fields: ChannelFields) -> bool:
    return (row.name, row.kind, row.enabled, row.events, row.scope, row.config) == (
        fields.name,
        fields.kind,
        fields.enabled,
        fields.events,
        fields.scope,
        fields.config,
    )


def _report(list_name: str, problems: list[str]) -> list[str]:
    spelt = [p if p.startswith(list_name) else f"{list_name}: {p}" for p in problems]
    for p in spelt:
        log.error("[[%s]] %s", list_name, p)
    if spelt:
        log.error(
            "[[%s]] not synced (%d problem(s)): they stay as they were", list_name, len(spelt)
        )
    return spelt


class ConfigSync:
    """Makes the store's config-managed monitors, windows and channels match a config."""

    def __init__(
        self,
        monitors: MonitorService,
        maintenance: MaintenanceService,
        notifier: Dispatcher,
        bus: Bus,
        core: Core | None = None,
    ) -> None:
        self._monitors = monitors
        self._maintenance = maintenance
        self._notifier = notifier
        self._bus = bus
        self._core = core

    async def sync(self, cfg: Config) -> list[str]:
        """Sync the three lists; returns every problem found (each also logged). With several
        cores, only under the config-sync lease (at start, and when a reload reaches every
        core at once): while another core holds it, that one syncs the same file."""
        if self._core is None:
            return await self._sync(cfg)
        if not await self._core.hold("config-sync"):
            log.info("config sync: another core holds the lease and syncs the file")
            return []
        try:
            return await self._sync(cfg)
        finally:
            await self._core.release("config-sync")

    async def _sync(self, cfg: Config) -> list[str]:
        problems = await self._monitors.sync_config(cfg.monitors)
        ids = await self._monitor_ids()
        problems += await self._windows(cfg.maintenance, ids)
        problems += await self._channels(cfg.notifications, ids)
        return problems

    async def refresh(self) -> None:
        """Re-read windows and channels: a core whose peer held the sync lease sees its work."""
        await self._maintenance.load()
        await self._notifier.reload()

    async def _monitor_ids(self) -> MonitorIds:
        ids: MonitorIds = {}
        for name, ident in await self._monitors.store.names():
            ids.setdefault(name, []).append(ident)
        return ids

    @staticmethod
    def _resolved(
        list_name: str, wanted: dict[str, Declared], ids: MonitorIds, problems: list[str]
    ) -> dict[str, dict[str, Any]]:
        bodies = {}
        for name, item in wanted.items():
            body, missing = item.with_monitors(ids)
            problems += [
                f"{list_name}[{item.index}].scope.monitors: no monitor is named {m!r}"
                for m in missing
            ]
            bodies[name] = body
        return bodies

    async def _windows(self, tables: list[dict[str, Any]], ids: MonitorIds) -> list[str]:
        wanted, problems = parse_window_tables(tables)
        bodies = self._resolved("maintenance", wanted, ids, problems)
        if problems:
            return _report("maintenance", problems)
        svc = self._maintenance
        stored = await svc.store.all()
        current = {w.name: w for w in stored if w.managed_by == "config"}
        adoptable = _lone_by_name([w for w in stored if w.managed_by != "config"])
        specs = {name: window_spec(body) for name, body in bodies.items()}
        created = changed = deleted = 0
        try:
            for name, spec in specs.items():
                window = current.get(name)
                if window is None and name in adoptable:
                    await svc.replace(adoptable[name].id, spec, managed_by="config")
                    changed += 1
                elif window is None:
                    await svc.create(spec, managed_by="config")
                    created += 1
                elif window_spec(spec_body(window)) != spec:
                    await svc.replace(window.id, spec)
                    changed += 1
            for name, window in current.items():
                if name not in specs:
                    await svc.delete(window.id)
                    deleted += 1
        except Problem as exc:  # a row gone meanwhile (another core): the next sync mends it
            return _report("maintenance", [exc.detail])
        if created or changed or deleted:
            log.info(
                "[[maintenance]] synced: %d created, %d changed, %d deleted",
                created,
                changed,
                deleted,
            )
        return []

    async def _channels(self, tables: list[dict[str, Any]], ids: MonitorIds) -> list[str]:
        wanted, problems = parse_channel_tables(tables)
        bodies = self._resolved("notifications", wanted, ids, problems)
        if problems:
            return _report("notifications", problems)
        store = self._notifier.store
        stored = await store.list()
        current = {c.name: c for c in stored if c.managed_by == "config"}
        adoptable = _lone_by_name([c for c in stored if c.managed_by != "config"])
        rows = {name: channel_fields(body) for name, body in bodies.items()}
        created = changed = deleted = 0
        try:
            for name, fields in rows.items():
                row = current.get(name)
                if row is None and name in adoptable:
                    await store.update(adoptable[name].id, _replacing(fields), "config")
                    changed += 1
                elif row is None:
                    await store.create(fields, "config")
                    created += 1
                elif row.locked or not _same(row, fields):
                    await store.update(row.id, _replacing(fields))
                    changed += 1
            for name, row in current.items():
                if name not in rows:
                    await store.delete(row.id)
                    deleted += 1
        except Problem as exc:  # a locked row (its key file is missing), or one gone meanwhile
            return _report("notifications", [exc.detail])
        if created or changed or deleted:
            await self._notifier.reload()
            self._bus.publish(CHANNELS_TOPIC, {"changed": True}, "channels.changed")
            log.info(
                "[[notifications]] synced: %d created, %d changed, %d deleted",
                created,
                changed,
                deleted,
            )
        return []


def _lone_by_name(rows: Sequence[_Named]) -> dict[str, _Named]:
    """The API-made rows a table of the same name takes over (an export loaded on the
    database it came from): only where one row has that name, else a new one is made."""
    by_name: dict[str, list[_Named]] = {}
    for row in rows:
        by_name.setdefault(row.name, []).append(row)
    return {name: found[0] for name, found in by_name.items() if len(found) == 1}


def _replacing(fields: ChannelFields) -> Callable[[StoredChannel], ChannelFields]:
    return lambda _: fields
