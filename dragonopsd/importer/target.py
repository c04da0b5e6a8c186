"""Targets an import writes to: the stores alone (the command line, daemon stopped) or the
running daemon's services (POST /api/import), which also schedule what they write."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..model.monitor import MonitorSpec
from ..monitoring.maintenance import MaintenanceService
from ..monitoring.service import MonitorService
from ..secrets.vault import DEFAULT_ENV, VaultService
from ..store.maintenance import MaintenanceStore, Window, WindowSpec
from ..store.monitors import MonitorRow, MonitorStore
from ..store.notifications import NotificationStore
from .apply import ChannelWrites, Target

_PAGE = 200


class VaultSecrets:
    """Secrets by key in env "default": created, updated when the value differs, else kept."""

    def __init__(self, vault: VaultService) -> None:
        self._vault = vault

    async def put(self, key: str, value: str, dry_run: bool) -> str:
        """Store value under key; returns create, update or unchanged."""
        cursor: str | None = None
        while True:
            items, cursor = await self._vault.list(DEFAULT_ENV, key, _PAGE, cursor)
            for meta in items:
                if meta.key == key:
                    if (await self._vault.reveal(meta.id))[1] == value:
                        return "unchanged"
                    if not dry_run:
                        await self._vault.update(meta.id, value, "imported")
                    return "update"
            if cursor is None:
                break
        if not dry_run:
            await self._vault.create(key, DEFAULT_ENV, value, "imported")
        return "create"


class _StoreWindows:
    def __init__(self, store: MaintenanceStore) -> None:
        self._store = store

    async def create(self, spec: WindowSpec) -> Window:
        return await self._store.insert(spec)

    async def replace(self, ident: str, spec: WindowSpec) -> Window:
        return await self._store.replace(ident, spec)


def store_target(
    monitors: MonitorStore,
    channels: NotificationStore,
    windows: MaintenanceStore,
    vault: VaultService,
) -> Target:
    """Write straight to the database: for the command line while no daemon runs."""
    return Target(
        monitors=monitors,
        channels=channels,
        windows=_StoreWindows(windows),
        windows_now=windows.all,
        secrets=VaultSecrets(vault) if vault.ring is not None else None,
    )


class _ServiceMonitors:
    def __init__(self, service: MonitorService) -> None:
        self._service = service

    async def all(self) -> list[MonitorRow]:
        return await self._service.store.all()

    async def create(self, spec: MonitorSpec) -> MonitorRow:
        row = await self._service.store.create(spec)
        await self._service.engine.upsert(row)
        return row

    async def replace(self, ident: str, spec: MonitorSpec) -> MonitorRow:
        row = await self._service.store.replace(ident, spec)
        await self._service.engine.upsert(row)
        return row


def service_target(
    monitors: MonitorService,
    *,
    channels: ChannelWrites,
    windows: MaintenanceService,
    windows_now: Callable[[], Awaitable[list[Window]]],
    vault: VaultService,
    reload_channels: Callable[[], Awaitable[None]],
) -> Target:
    """Write through the running daemon: monitors scheduled, windows and channels reloaded."""
    return Target(
        monitors=_ServiceMonitors(monitors),
        channels=channels,
        windows=windows,
        windows_now=windows_now,
        secrets=VaultSecrets(vault) if vault.ring is not None else None,
        after=reload_channels,
    )
