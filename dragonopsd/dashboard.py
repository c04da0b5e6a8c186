"""Dashboard statistics: COUNT queries, encoded once and cached until the next write."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import msgspec

from .cache import Cache
from .model.inventory import DashboardStats
from .store.protocols import InventoryRepo

STATS_KEY = "stats:dashboard"


def count_monitors(stats: DashboardStats, counts: dict[str, int]) -> DashboardStats:
    """Fill in the monitors per status and the health they add up to."""
    # Only a verdict counts: pending (not yet checked, or retrying), paused and maintenance
    # monitors are neither healthy nor not.
    up, down = counts.get("up", 0), counts.get("down", 0)
    stats.monitors = {"total": sum(counts.values()), **counts}
    stats.health = round(100.0 * up / (up + down), 1) if up + down else 100.0
    return stats


class DashboardService:
    """Serves the encoded stats body; concurrent misses share one computation."""

    def __init__(
        self,
        store: InventoryRepo,
        cache: Cache,
        ttl: float = 60.0,
        monitor_counts: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        self._store = store
        self.monitor_counts = monitor_counts
        self._cache = cache
        self._ttl = ttl
        self._epoch = 0
        self._pending: asyncio.Future[bytes] | None = None
        self._encode = msgspec.json.Encoder().encode

    async def invalidate(self) -> None:
        """Forget the cached body; a computation already running will not store its result."""
        self._epoch += 1
        self._pending = None
        await self._cache.delete(STATS_KEY)

    async def body(self) -> bytes:
        """The JSON body of GET /api/stats/dashboard."""
        cached = await self._cache.get(STATS_KEY)
        if cached is not None:
            return cached
        if self._pending is None:
            self._pending = asyncio.ensure_future(self._compute())
        return await asyncio.shield(self._pending)

    async def _compute(self) -> bytes:
        epoch = self._epoch
        try:
            stats = await self._store.stats()
            if self.monitor_counts is not None:
                count_monitors(stats, self.monitor_counts())
            body = self._encode(stats)
            if epoch == self._epoch:  # no write committed meanwhile: safe to keep
                await self._cache.set(STATS_KEY, body, self._ttl)
            return body
        finally:
            if epoch == self._epoch:
                self._pending = None
