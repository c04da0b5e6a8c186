"""The queue between the API and the action workers, behind a protocol so that a Redis Stream
(with a consumer group, for several daemons) can replace the in-process one."""

from __future__ import annotations

import asyncio
from typing import Protocol


class ActionQueue(Protocol):
    """Where accepted action ids wait for a worker.

    The database row is the source of truth and the queue only carries ids: a lost or repeated
    delivery is harmless, since a worker only takes an action it can move from queued to
    running in one conditional UPDATE.
    """

    async def put(self, action_id: str) -> None:
        """Hand an accepted action to the workers."""
        ...

    async def get(self) -> str:
        """Wait for the next action id."""
        ...

    async def done(self, action_id: str) -> None:
        """The worker is finished with this id (settled, skipped or put back); XACK for Redis."""
        ...


class LocalQueue:
    """An asyncio.Queue. Unbounded on purpose: one pending action per server bounds it by the
    number of servers, and putting must never make an API request wait."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[str] = asyncio.Queue()

    async def put(self, action_id: str) -> None:
        """Hand an accepted action to the workers."""
        self._queue.put_nowait(action_id)

    async def get(self) -> str:
        """Wait for the next action id."""
        return await self._queue.get()

    async def done(self, action_id: str) -> None:
        """Nothing to acknowledge in-process."""
        self._queue.task_done()
