"""The batched writer under heartbeat and sample history: one home for "kill -9 loses at most
the flush in flight".

Rows go to a bounded in-memory queue (O(1), never blocking the loop; full, the oldest are dropped
and counted). A running writer stores them one transaction per flush, every flush_interval or
sooner once flush_rows are queued; a failed flush puts its rows back at the head of the queue,
and a cancelled one is let commit first. On stop, whatever is queued is flushed. Beside it runs
each writer's maintenance job (rollups, retention), every interval by `repeat`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from ..buckets import Buckets
from ..config import HistoryConfig
from .rollups import finish_on_cancel
from .sql import Connection, Database, StoreUnavailable

MAX_BATCH = 20_000  # rows per transaction, so one flush holds the write lock ~0.1 s at most
Row = TypeVar("Row")
# Writes one batch inside the flush's transaction; what it returns (if anything) runs once
# the transaction has committed (caches that must not learn of rows a rollback took back).
Write = Callable[[Connection, list[Row]], Awaitable[Callable[[], None] | None]]


class BatchWriter(Generic[Row]):
    """A bounded queue of rows stored in batches, one transaction per flush, by write.

    The writes must be idempotent (upserts): a batch whose COMMIT is not known to
    have happened is stored again.
    """

    def __init__(
        self,
        db: Database,
        write: Write[Row],
        schedule: HistoryConfig,
        *,
        max_queue: int,
        log: logging.Logger,
        what: tuple[str, str],
    ) -> None:
        self._db = db
        self._write = write
        self._schedule = schedule  # flush_interval and flush_rows
        self._log = log
        self._what = what  # as log lines name the writer and its rows: ("history", "heartbeats")
        self._queue: deque[Row] = deque(maxlen=max_queue)
        self._wake = asyncio.Event()
        self._urgent = False  # a sync() is waiting: flush now rather than at the interval
        self._flushed = asyncio.Event()  # set (and replaced) after every committed flush
        self.dropped = 0
        self.submitted_total = 0
        self.flushed_total = 0
        self.last_flush_seconds = 0.0
        self.flush_buckets = Buckets()  # every flush's duration, for the metrics histogram

    @property
    def queue_depth(self) -> int:
        """Rows waiting for the next flush."""
        return len(self._queue)

    def put(self, row: Row) -> None:
        """Queue a row (loop thread only; O(1), never blocks). Full: drop the oldest."""
        queue = self._queue
        if len(queue) == queue.maxlen:
            self.dropped += 1
        queue.append(row)
        self.submitted_total += 1
        if len(queue) >= self._schedule.flush_rows:
            self._wake.set()

    async def flush(self) -> int:
        """Store up to MAX_BATCH queued rows in one transaction; returns rows written.

        Cancelling flush lets the transaction finish first; if it fails, the rows go back to
        the head of the queue.
        """
        queue = self._queue
        if not queue:
            return 0
        batch = [queue.popleft() for _ in range(min(len(queue), MAX_BATCH))]
        return await finish_on_cancel(self._store(batch))

    async def _store(self, batch: list[Row]) -> int:
        started = time.perf_counter()
        try:
            async with self._db.write() as conn:
                committed = await self._write(conn, batch)
        except BaseException:
            self._requeue(batch)
            raise
        if committed is not None:
            committed()
        self.last_flush_seconds = time.perf_counter() - started
        self.flush_buckets.observe(self.last_flush_seconds)
        self.flushed_total += len(batch)
        self._flushed.set()
        self._flushed = asyncio.Event()
        return len(batch)

    def _requeue(self, batch: list[Row]) -> None:
        queue = self._queue
        room = (queue.maxlen or 0) - len(queue)
        if room < len(batch):  # still the oldest that go
            self.dropped += len(batch) - room
            batch = batch[len(batch) - room :] if room > 0 else []
        queue.extendleft(reversed(batch))

    async def sync(self, within: float) -> bool:
        """Wait until every row submitted so far is committed; False when some were dropped
        (queue overflow) or the writer did not get there within `within` seconds.

        Used where something outside must only be told after COMMIT (acknowledging a Redis
        stream entry). It asks the running writer for an early flush and waits for it.
        """
        target, dropped = self.submitted_total, self.dropped
        try:
            async with asyncio.timeout(within):
                while self.flushed_total + self.dropped < target:
                    self._urgent = True
                    self._wake.set()
                    await self._flushed.wait()
        except TimeoutError:
            return False
        return self.dropped == dropped

    async def run(self, flush: Callable[[], Awaitable[int]] | None = None) -> None:
        """Flush every flush_interval or when flush_rows are queued; on cancel, drain and stop.

        flush is what one flush is (default: this writer's own); an owner passes its own, so
        that a subclass of the owner that wraps flush sees every flush.
        """
        flush = flush or self.flush
        name, rows = self._what
        loop = asyncio.get_running_loop()
        try:
            while True:
                deadline = loop.time() + self._schedule.flush_interval
                while (
                    len(self._queue) < self._schedule.flush_rows
                    and loop.time() < deadline
                    and not self._urgent
                ):
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout_at(deadline):
                            await self._wake.wait()
                self._urgent = False
                try:
                    await flush()
                except StoreUnavailable as exc:  # logged once by the database, not per retry
                    self._log.debug(
                        "%s flush refused (%s); the rows stay queued", name, exc.trouble
                    )
                    await asyncio.sleep(self._schedule.flush_interval)
                except Exception:
                    self._log.exception("%s flush failed; the rows stay queued", name)
                    await asyncio.sleep(self._schedule.flush_interval)
        except asyncio.CancelledError:
            try:
                while self._queue:
                    await flush()
            except Exception:
                lost = len(self._queue)
                self._log.exception("final %s flush failed; %d %s lost", name, lost, rows)
            raise


async def repeat(
    job: Callable[[], Awaitable[object]], interval: float, log: logging.Logger, what: str
) -> None:
    """Run job every interval (drift-corrected, first at once) until cancelled; a failed run
    is logged as what failed, and the next one comes at its time."""
    loop = asyncio.get_running_loop()
    next_run = loop.time()
    while True:
        try:
            await job()
        except Exception:
            log.exception("%s failed; retrying next interval", what)
        next_run = max(next_run + interval, loop.time())
        await asyncio.sleep(next_run - loop.time())
