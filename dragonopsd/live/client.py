"""One websocket client as the hub sees it: its subscriptions, bounded queue and writer task.

The hub only ever calls ``offer``/``send``, which never wait. A client that keeps up has an
empty queue and nothing buffered on its socket: the frame is written at once (a non-blocking
write, no task switch). Otherwise the frame joins the client's bounded queue, drained by the
client's own writer task, which waits for the socket as long as it must. A client that cannot
keep up therefore only fills its own queue; when a frame that must not be lost would overflow
it, the client is closed with 1013 (try again later) and resyncs from a fresh snapshot.

Why the direct write: measured with 1,000 clients (tests/bench/ws_fanout.py), waking a writer
task per client per event cost ~20 us each and allocated a future per wake, and the garbage
collector's full passes over those survivors stalled the loop ~80 ms every few seconds.

A client that asked for batches (``batch``) gets the live events of one hub pass (a sampling
tick's samples, say) in one ``batch`` frame instead of one frame each: 1,000 clients x 12
servers meant 12,000 writes per tick, and the last clients' frames waited ~150 ms behind the
others' (DESIGN.md "Performance"). Its writer likewise sends what is queued as one frame.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Protocol

from .gate import Gate
from .topics import BATCH_BYTES, batch_frame, wildcard_of

log = logging.getLogger("dragonopsd.live")

TRY_AGAIN_LATER = 1013
GOING_AWAY = 1001
# Why frames never reached a client (the hub's counters, exported as metrics): superseded by a
# newer sample, discarded with a client closed for being slow or for another reason, or lost
# because the hub fell behind the bus.
DROP_REASONS = ("coalesced", "slow_client", "closed", "bus_lag")

# A live event as the hub hands it over: (topic, seq, encoded event frame, coalescible).
Live = tuple[str, int, bytes, bool]


class Socket(Protocol):
    """The connection under a client (an aiohttp WebSocketResponse, adapted)."""

    def write_now(self, frame: bytes) -> bool:
        """Write one text frame if nothing is buffered, without waiting; else False."""
        ...

    async def send(self, frame: bytes) -> None:
        """Write one text frame; may wait while the peer is not reading."""
        ...

    async def close(self, code: int, reason: str) -> None:
        """Send a close frame and wait for the peer's."""
        ...

    def abort(self) -> None:
        """Drop the connection at once, buffered data and all."""
        ...

    def buffered(self) -> int:
        """Bytes written but not yet taken by the kernel (the peer is behind)."""
        ...


class _Slot:
    """A queued frame; a coalesced frame is replaced in its slot, keeping its place."""

    __slots__ = ("frame", "topic")

    def __init__(self, topic: str, frame: bytes) -> None:
        self.topic = topic
        self.frame = frame


class Client:
    """A subscriber: active and pending topics, a bounded frame queue and its writer task."""

    def __init__(
        self,
        socket: Socket,
        still_valid: Callable[[], bool],
        *,
        queue_size: int,
        close_timeout: float,
        drops: dict[str, int] | None = None,
        gate: Gate | None = None,
    ) -> None:
        self.socket = socket
        self.gate = gate  # a scoped subscriber's filter (gate.py); None: everything
        self.still_valid = still_valid
        self.topics: set[str] = set()  # subscriptions receiving live events
        self.pending: set[str] = set()  # subscriptions whose snapshot is being gathered
        self.closing = False
        self.close_code: int | None = None
        self.batch = False  # live events in ``batch`` frames (the client's subscribe asked)
        self._held: list[Live] = []
        self._queue: deque[_Slot] = deque()
        self._latest: dict[str, _Slot] = {}  # topic -> its queued coalescible frame
        self._size = queue_size
        self._close_timeout = close_timeout
        self._wake = asyncio.Event()
        self._idle = False  # the writer waits for work: nothing of ours is mid-write
        self._writer = asyncio.create_task(self._drain())
        self._closer: asyncio.Task[None] | None = None
        self._drops = drops if drops is not None else dict.fromkeys(DROP_REASONS, 0)

    @property
    def backlog(self) -> int:
        """Frames waiting for the writer (0 for a client that keeps up)."""
        return len(self._queue)

    # -- called by the hub; never waits ----------------------------------------------------

    def offer(self, topic: str, seq: int, frame: bytes, coalesce: bool) -> None:
        """Queue a live event (held back while this topic's snapshot is being gathered)."""
        if self.closing:
            return
        if self.pending and not self._active_for(topic):
            self._held.append((topic, seq, frame, coalesce))
            if len(self._held) > self._size:
                self.shutdown(TRY_AGAIN_LATER, "too slow: resubscribe for a fresh snapshot")
            return
        self._enqueue(topic, frame, coalesce)

    def offer_batch(self, events: list[Live], joined: dict[tuple[int, ...], bytes]) -> None:
        """Queue one hub pass's live events for a batching client, as one frame if it keeps
        up. ``joined`` holds the batch frames of this pass by their events' ids: clients of the
        same topics share one encoding."""
        if self.closing:
            return
        if self.pending:
            ready = []
            for live in events:
                if self._active_for(live[0]):
                    ready.append(live)
                else:
                    self.offer(*live)  # held back until its snapshot is queued
            events = ready
        if not events:
            return
        if not self._queue and self._idle:
            key = tuple(map(id, events))
            frame = joined.get(key)
            if frame is None:
                frames = [live[2] for live in events]
                if sum(map(len, frames)) <= BATCH_BYTES:
                    frame = joined[key] = batch_frame(frames)
            if frame is not None and self.socket.write_now(frame):
                return
        for topic, _, frame, coalesce in events:  # the writer batches them (see _drain)
            self._enqueue(topic, frame, coalesce)

    def send(self, frame: bytes) -> None:
        """Queue a snapshot, ack or error frame (never coalesced)."""
        if not self.closing:
            self._enqueue("", frame, False)

    def held_seqs(self) -> dict[str, int]:
        """The seq of the first held event of each topic (a snapshot is as of just before)."""
        first: dict[str, int] = {}
        for topic, seq, _, _ in self._held:
            first.setdefault(topic, seq)
        return first

    def activate(self, topic: str) -> None:
        """The topic's snapshot is queued: release the events held for it, in order."""
        self.pending.discard(topic)
        self.topics.add(topic)
        held, self._held = self._held, []
        for t, seq, frame, coalesce in held:
            self.offer(t, seq, frame, coalesce)

    def shutdown(self, code: int, reason: str) -> None:
        """Close the socket with code, in the background: the caller never waits on it."""
        if self.closing:
            return
        self.closing = True
        self.close_code = code
        lost = len(self._queue) + len(self._held)
        self._drops["slow_client" if code == TRY_AGAIN_LATER else "closed"] += lost
        self._queue.clear()
        self._latest.clear()
        self._held.clear()
        self._writer.cancel()
        self._closer = asyncio.create_task(self._close(code, reason))

    async def finish(self) -> None:
        """The connection is over: stop the writer and let a pending close complete."""
        self.closing = True
        self._writer.cancel()
        await asyncio.wait([self._writer])
        if self._closer is not None:
            await self._closer

    # -- internals -------------------------------------------------------------------------

    def _active_for(self, topic: str) -> bool:
        return topic in self.topics or wildcard_of(topic) in self.topics

    def _enqueue(self, topic: str, frame: bytes, coalesce: bool) -> None:
        if coalesce:
            slot = self._latest.get(topic)
            if slot is not None:
                slot.frame = frame  # latest sample wins; no growth, no reordering
                self._drops["coalesced"] += 1
                return
        elif topic:
            # A later coalescible frame of this topic must queue behind this one (seq order).
            self._latest.pop(topic, None)
        # A batching client's live events always travel in batch frames: through the writer.
        direct = not (self.batch and topic)
        if direct and not self._queue and self._idle and self.socket.write_now(frame):
            return
        if len(self._queue) >= self._size:
            self.shutdown(TRY_AGAIN_LATER, "too slow: resubscribe for a fresh snapshot")
            return
        slot = _Slot(topic, frame)
        self._queue.append(slot)
        if coalesce:
            self._latest[topic] = slot
        self._wake.set()

    async def _drain(self) -> None:
        queue, latest = self._queue, self._latest
        try:
            while True:
                if not queue:
                    self._wake.clear()
                    self._idle = True
                    await self._wake.wait()
                    self._idle = False
                    continue
                slot = queue.popleft()
                if latest.get(slot.topic) is slot:
                    del latest[slot.topic]
                if not (self.batch and slot.topic):  # snapshots, acks and errors go alone
                    await self.socket.send(slot.frame)
                    continue
                frames, size = [slot.frame], len(slot.frame)
                while queue and queue[0].topic and size + len(queue[0].frame) <= BATCH_BYTES:
                    slot = queue.popleft()
                    if latest.get(slot.topic) is slot:
                        del latest[slot.topic]
                    frames.append(slot.frame)
                    size += len(slot.frame)
                await self.socket.send(batch_frame(frames))
        except (ConnectionError, RuntimeError):
            # The peer went away mid-write; the handler's read loop sees it too and detaches.
            self.closing = True
            queue.clear()
            latest.clear()

    async def _close(self, code: int, reason: str) -> None:
        await asyncio.wait([self._writer])  # never two writes at once on one socket
        try:
            async with asyncio.timeout(self._close_timeout):
                await self.socket.close(code, reason)
        except TimeoutError:
            # A stalled peer never reads the close frame: drop the connection instead.
            self.socket.abort()
        except asyncio.CancelledError:
            # aiohttp shares one drain future per connection: cancelling a writer that waited
            # on a stalled peer cancels it, and the close's own drain then raises this.
            self.socket.abort()
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # a real cancellation of this task
        except Exception:  # a close on a broken connection: nothing left to tell the peer
            log.debug("closing a websocket failed", exc_info=True)
            self.socket.abort()
