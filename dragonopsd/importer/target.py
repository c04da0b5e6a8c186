"""Targets an import writes to: the stores of one database either way, in one transaction of
it; through the running daemon (POST /api/import) the daemon then schedules and reloads what
was written, once it is committed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..monitoring.maintenance import MaintenanceService
from ..monitoring.service import MonitorService
from ..problem import Problem
from ..secrets.vault import DEFAULT_ENV, VaultService
from ..store.maintenance import MaintenanceStore
from ..store.monitors import MonitorStore
from ..store.notifications import NotificationStore
from ..store.unit import UnitOfWork
from .apply import ChannelWrites, Target, Written

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


def store_target(
    unit: UnitOfWork,
    monitors: MonitorStore,
    channels: NotificationStore,
    windows: MaintenanceStore,
    vault: VaultService,
) -> Target:
    """Write straight to the database: for the command line while no daemon runs."""
    return Target(
        unit=unit,
        monitors=monitors,
        channels=channels,
        windows=windows,
        secrets=VaultSecrets(vault) if vault.ring is not None else None,
    )


def service_target(
    unit: UnitOfWork,
    monitors: MonitorService,
    *,
    channels: ChannelWrites,
    windows: MaintenanceService,
    vault: VaultService,
    reload_channels: Callable[[], Awaitable[None]],
) -> Target:
    """Write through the running daemon's stores; after the COMMIT the engine schedules the
    monitors written, and the windows and channels are reloaded."""

    async def settle(written: Written) -> None:
        for row in written.monitors:
            # Read again: an API write may have committed a newer version since the import's
            # COMMIT, and the engine must not go back to the imported one.
            try:
                current = await monitors.store.get(row.monitor.id)
            except Problem:  # deleted meanwhile: nothing to schedule
                continue
            await monitors.engine.upsert(current)
        if written.windows:
            await windows.reload()
        if written.channels:
            await reload_channels()

    return Target(
        unit=unit,
        monitors=monitors.store,
        channels=channels,
        windows=windows.store,
        secrets=VaultSecrets(vault) if vault.ring is not None else None,
        settle=settle,
    )
