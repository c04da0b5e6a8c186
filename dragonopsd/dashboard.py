"""Dashboard statistics: COUNT queries, encoded once and cached until the next write."""

from __future__ import annotations

import asyncio

import msgspec

from .cache import Cache
from .store.inventory import InventoryStore

STATS_KEY = "stats:dashboard"


class DashboardService:
    """Serves the encoded stats body; concurrent misses share one computation."""

    def __init__(self, store: InventoryStore, cache: Cache, ttl: float = 60.0) -> None:
        self._store = store
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
            body = self._encode(await self._store.stats())
            if epoch == self._epoch:  # no write committed meanwhile: safe to keep
                await self._cache.set(STATS_KEY, body, self._ttl)
            return body
        finally:
            if epoch == self._epoch:
                self._pending = None
