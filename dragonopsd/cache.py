"""Cache protocol and its in-process implementation (Redis joins it in a later step)."""

from __future__ import annotations

import time
from typing import Protocol


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
