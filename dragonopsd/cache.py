"""Cache protocol, its in-process implementation, and the Redis one that falls back to it."""

from __future__ import annotations

import logging
import time
from typing import Protocol

from .redislink.client import ERRORS, RedisLink

log = logging.getLogger("dragonopsd.cache")


class Cache(Protocol):
    """Key -> encoded bytes with a time to live."""

    async def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""
        ...

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store value for ttl seconds."""
        ...

    async def delete(self, *keys: str) -> None:
        """Drop keys (missing keys are fine)."""
        ...


class MemoryCache:
    """A dict with expiry times; enough for one process."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._data: dict[str, tuple[float, bytes]] = {}
        self._max = max_entries

    async def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""
        hit = self._data.get(key)
        if hit is None:
            return None
        if hit[0] < time.monotonic():
            del self._data[key]
            return None
        return hit[1]

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store value for ttl seconds; past max_entries the oldest entry goes."""
        if key not in self._data and len(self._data) >= self._max:
            self._data.pop(next(iter(self._data)))
        self._data[key] = (time.monotonic() + ttl, value)

    async def delete(self, *keys: str) -> None:
        """Drop keys (missing keys are fine)."""
        for key in keys:
            self._data.pop(key, None)


class RedisCache:
    """Values in Redis (shared by every process), with the in-memory cache as the fallback.

    Writes and deletes go to both, so the memory copy is current when Redis goes away. While
    Redis is away the deletes that invalidate cached values only reach memory, so when it
    comes back every cached key of this deployment is dropped before Redis serves again.
    """

    def __init__(self, link: RedisLink, fallback: MemoryCache | None = None) -> None:
        self._link = link
        self._keys = link.keys
        self.memory = fallback or MemoryCache()
        link.on_up.append(self.forget_all)

    async def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""
        if self._link.up:
            try:
                value = await self._link.client.get(self._keys.cache(key))
                return value if isinstance(value, bytes) or value is None else value.encode()
            except ERRORS as exc:
                self._link.failed(exc, "cache get")
        return await self.memory.get(key)

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store value for ttl seconds."""
        await self.memory.set(key, value, ttl)
        if self._link.up:
            try:
                await self._link.client.set(
                    self._keys.cache(key), value, px=max(1, int(ttl * 1000))
                )
            except ERRORS as exc:
                self._link.failed(exc, "cache set")

    async def delete(self, *keys: str) -> None:
        """Drop keys (missing keys are fine)."""
        await self.memory.delete(*keys)
        if self._link.up and keys:
            try:
                await self._link.client.delete(*(self._keys.cache(k) for k in keys))
            except ERRORS as exc:
                self._link.failed(exc, "cache delete")

    async def forget_all(self) -> None:
        """Drop every cached key of this deployment (on reconnect: they may have missed deletes)."""
        client = self._link.client
        batch: list[bytes] = []
        async for name in client.scan_iter(match=self._keys.cache_pattern, count=500):
            batch.append(name)
            if len(batch) >= 500:
                await client.unlink(*batch)
                batch = []
        if batch:
            await client.unlink(*batch)
