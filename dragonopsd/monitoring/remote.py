"""The core's side of remote probing: jobs out to each location's stream, results back in.

Jobs go to ``<prefix>:jobs:<location>`` only while a worker of that location is alive (workers
keep a heartbeat in ``<prefix>:workers:<location>``); otherwise the location is ``no-worker``
for that round and nothing piles up. Results come back on the core's own stream,
``<prefix>:results:<core>`` (each job names it in ``reply_to``, so with several cores a result
reaches the core whose round waits for it; ``<prefix>:results`` without one), through the
``core`` consumer group: each batch is handed to the engine, the history writer is flushed,
and only then are the entries acknowledged, so a core killed mid-stream re-reads (and
stores) whatever it had not committed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from ..redislink.client import BLOCK_MS, ERRORS, RedisLink, ensure_group
from ..redislink.keys import CORE_GROUP
from ..store.protocols import HistorySink
from .job import JOB_FIELD, RESULT_FIELD, ProbeJob, ProbeOutcome

log = logging.getLogger("dragonopsd.remote")

WORKER_TTL = 10.0  # a worker silent this long is gone
ALIVE_CACHE = 1.0  # seconds a liveness answer is reused (one ZCOUNT per location per second)
BATCH = 500

SYNC_TIMEOUT = 30.0  # seconds to wait for the history writer to commit a batch

Handler = Callable[[ProbeOutcome], Awaitable[None]]


def _text(name: str | bytes) -> str:
    return name.decode() if isinstance(name, bytes) else name


class NotStored(Exception):
    """A batch of results could not be confirmed committed (writer failing or rows dropped)."""


class RemoteProbes:
    """Dispatches jobs and consumes results; without Redis every remote location is absent."""

    def __init__(self, link: RedisLink | None, history: HistorySink, core: str = "") -> None:
        self._link = link
        self._history = history
        # Several cores: this core's name; its jobs ask for results on a stream of its own.
        self.reply_to = core
        self._alive: dict[str, tuple[float, bool]] = {}
        self._encode = msgspec.json.Encoder().encode
        self._decode = msgspec.json.Decoder(ProbeOutcome).decode
        self.dispatched = 0
        self.no_worker = 0
        self.received = 0
        self.malformed = 0

    async def alive(self, location: str) -> bool:
        """Whether some worker of the location said it was alive in the last WORKER_TTL s."""
        link = self._link
        if link is None or not link.up:
            return False
        now = time.time()
        cached = self._alive.get(location)
        if cached is not None and now - cached[0] < ALIVE_CACHE:
            return cached[1]
        since = link.now() - WORKER_TTL  # workers stamp their heartbeats in Redis's clock
        try:
            count = await link.client.zcount(link.keys.workers(location), since, "+inf")
        except ERRORS as exc:
            link.failed(exc, "worker liveness")
            return False
        self._alive[location] = (now, count > 0)
        return count > 0

    async def locations(self) -> dict[str, int]:
        """Each location with a live worker (one heard from in the last WORKER_TTL s) -> how
        many it has; empty without Redis. Raises ERRORS when Redis does not answer."""
        link = self._link
        if link is None:
            return {}
        since = link.now() - WORKER_TTL
        try:
            raw: list[Any] = await link.client.zrangebyscore(link.keys.locations, since, "+inf")
            names = [_text(n) for n in raw]
            pipe = link.client.pipeline(transaction=False)
            for name in names:
                pipe.zcount(link.keys.workers(name), since, "+inf")
            counts = await pipe.execute() if names else []
        except ERRORS as exc:
            link.failed(exc, "locations")
            raise
        # A location whose last worker stopped (and left) since its last mark has none now.
        found = {n: int(c) for n, c in zip(names, counts, strict=True) if c}
        return dict(sorted(found.items()))

    def shared(self, t: float) -> float:
        """A time of this host in Redis's clock (what workers compare job times with)."""
        return self._link.shared(t) if self._link is not None else t

    def local(self, shared: float) -> float:
        """A worker's time (Redis's clock) in this host's clock."""
        return self._link.local(shared) if self._link is not None else shared

    async def dispatch(self, job: ProbeJob) -> bool:
        """Queue a job for its location; False when nobody there would run it."""
        link = self._link
        if link is None or not await self.alive(job.location):
            self.no_worker += 1
            return False
        try:
            await link.client.xadd(
                link.keys.jobs(job.location),
                {JOB_FIELD: self._encode(job)},
                maxlen=link.cfg.stream_maxlen,
                approximate=True,
            )
        except ERRORS as exc:
            link.failed(exc, "dispatch")
            return False
        self.dispatched += 1
        return True

    async def consume(self, handle: Handler) -> None:
        """Read results until cancelled: pending ones first (after a restart), then new ones."""
        link = self._link
        if link is None:
            return
        stream = link.keys.results_for(self.reply_to)
        backoff = 0.2
        while True:
            await link.wait_up()
            try:
                await ensure_group(link, stream, CORE_GROUP)
                backoff = 0.2
                await self._drain(stream, "0", handle)  # delivered before, never acknowledged
                while True:
                    await self._drain(stream, ">", handle)
            except ERRORS as exc:
                link.failed(exc, "results")
            except NotStored as exc:  # stays pending: re-read from "0" on the next pass
                log.warning("probe results not acknowledged yet: %s", exc)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def _drain(self, stream: str, start: str, handle: Handler) -> None:
        """Read batches from ``start`` until one comes back empty."""
        assert self._link is not None
        client = self._link.client
        while True:
            reply: Any = await client.xreadgroup(
                CORE_GROUP,
                self._link.name,
                {stream: start},
                count=BATCH,
                block=BLOCK_MS if start == ">" else None,
            )
            entries = reply[0][1] if reply else []
            if not entries:
                return
            ids = []
            for entry_id, fields in entries:
                ids.append(entry_id)
                raw = fields.get(RESULT_FIELD) if fields else None
                if raw is None:
                    continue  # an entry a crash left without fields: nothing to store
                try:
                    outcome = self._decode(raw)
                except msgspec.DecodeError as exc:  # not JSON, or not a result
                    self.malformed += 1
                    log.warning("ignoring a malformed probe result %s: %s", entry_id, exc)
                    continue
                self.received += 1
                try:
                    await handle(outcome)
                except Exception:  # one result the engine chokes on must not stop the rest
                    self.malformed += 1
                    log.exception("probe result %s for %s failed", entry_id, outcome.monitor_id)
            # Committed before acknowledged: otherwise the entries stay pending and are re-read.
            if not await self._history.sync(SYNC_TIMEOUT):
                raise NotStored(f"{len(ids)} results not committed within {SYNC_TIMEOUT:g}s")
            # Then gone from Redis: a result may carry a response body (up to 1 MiB), and the
            # stream would otherwise hold stream_maxlen of them until trimmed.
            await self._link.ack_and_delete(stream, CORE_GROUP, *ids)
