"""The queue between the API and the action workers, behind a protocol so that a Redis Stream
(with a consumer group, for several daemons) can replace the in-process one."""

from __future__ import annotations

import asyncio
import os
from typing import Any, Protocol

from ..redislink.client import BLOCK_MS, ERRORS, RedisLink, ensure_group
from ..redislink.keys import ACTION_GROUP
from ..redislink.tasks import cancel_and_wait


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

    async def close(self) -> None:
        """Stop whatever the queue runs in the background."""
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

    async def close(self) -> None:
        """Nothing runs in the background."""


class RedisQueue:
    """A Redis Stream read through the ``executors`` consumer group: at-least-once delivery.

    Every process that executes actions reads the same stream under its own consumer name;
    an id a dead consumer took and never acknowledged is claimed (XAUTOCLAIM) after
    ``[redis] claim_idle``. While Redis is away, ids go to an in-process queue instead, so
    accepting and running actions never stops.
    """

    def __init__(self, link: RedisLink) -> None:
        self._link = link
        self._stream = link.keys.actions
        self._local = LocalQueue()
        # action id -> entries handed out by get(), oldest first; done() acknowledges one each.
        self._entries: dict[str, list[Any]] = {}
        self._held: set[Any] = set()  # entry ids read or handed out and not acknowledged
        # Bounded: the reader stops reading ahead when the workers are all busy.
        self._ready: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(maxsize=64)
        # Each process its own consumer: a dead one's entries are then claimable by the others.
        self._consumer = f"{link.name}-{os.getpid()}-{os.urandom(3).hex()}"
        self._reader: asyncio.Task[None] | None = None
        self._decode = bytes.decode

    async def put(self, action_id: str) -> None:
        """XADD the id; the in-process queue when Redis is away."""
        if self._link.up:
            try:
                await self._link.client.xadd(
                    self._stream,
                    {b"id": action_id.encode()},
                    maxlen=self._link.cfg.stream_maxlen,
                    approximate=True,
                )
                return
            except ERRORS as exc:
                self._link.failed(exc, "action queue")
        await self._local.put(action_id)

    async def get(self) -> str:
        """The next id, from the stream (one reader per process feeds every worker) or the
        in-process fallback, whichever has one first."""
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read(), name="action-queue-reader")
        local = asyncio.ensure_future(self._local.get())
        remote = asyncio.ensure_future(self._ready.get())
        try:
            done, _ = await asyncio.wait({local, remote}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for fut in (local, remote):
                if not fut.done():
                    fut.cancel()
        if remote in done and not remote.cancelled():
            action_id, entry = remote.result()
            self._entries.setdefault(action_id, []).append(entry)
            if local in done and not local.cancelled():  # both at once: keep the local one
                await self._local.put(local.result())
            return action_id
        return local.result()

    async def done(self, action_id: str) -> None:
        """XACK the stream entry that delivered this id to the worker now done with it."""
        entries = self._entries.get(action_id)
        if not entries:
            return
        entry = entries.pop(0)
        if not entries:
            del self._entries[action_id]
        self._held.discard(entry)
        try:
            await self._link.client.xack(self._stream, ACTION_GROUP, entry)
        except ERRORS as exc:  # re-delivered after claim_idle; the worker skips it then
            self._link.failed(exc, "action ack")

    async def close(self) -> None:
        """Stop the reader task."""
        if self._reader is not None:
            await cancel_and_wait(self._reader)

    async def _read(self) -> None:
        link, name = self._link, self._consumer
        claimed_at = 0.0
        backoff = 0.2
        while True:
            await link.wait_up()
            try:
                await ensure_group(link, self._stream, ACTION_GROUP)
                backoff = 0.2
                await self._deliver(
                    await link.client.xreadgroup(ACTION_GROUP, name, {self._stream: "0"})
                )
                while True:
                    now = asyncio.get_running_loop().time()
                    if now - claimed_at > link.cfg.claim_idle / 2:
                        claimed_at = now
                        reply = await link.client.xautoclaim(
                            self._stream,
                            ACTION_GROUP,
                            name,
                            int(link.cfg.claim_idle * 1000),
                            start_id="0-0",
                            count=100,
                        )
                        await self._deliver([[self._stream, reply[1]]])
                    await self._deliver(
                        await link.client.xreadgroup(
                            ACTION_GROUP, name, {self._stream: ">"}, count=16, block=BLOCK_MS
                        )
                    )
            except ERRORS as exc:
                link.failed(exc, "action queue read")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _deliver(self, reply: Any) -> None:
        for _, entries in reply or []:
            for entry_id, fields in entries:
                if entry_id in self._held:
                    continue  # read again (pending re-read, our own claim): already handed out
                raw = fields.get(b"id") if fields else None
                if raw is None:  # trimmed away: nothing to run, just acknowledge it
                    await self._link.client.xack(self._stream, ACTION_GROUP, entry_id)
                    continue
                self._held.add(entry_id)
                await self._ready.put((self._decode(raw), entry_id))
