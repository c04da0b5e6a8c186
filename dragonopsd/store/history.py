"""Heartbeat history: a batched writer, and the rollup and retention jobs (reads: history_query).

Probes submit heartbeats to an in-memory queue (never blocking the loop); the writer stores
them one transaction per flush (every flush_interval, or sooner when flush_rows are queued), so
kill -9 loses at most the heartbeats of the flush in flight. Raw rows are kept raw_hours, then
only the rollups in store/rollups.py answer for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque

import msgspec

from ..buckets import Buckets
from ..config import HistoryConfig
from .db import Database, StoreUnavailable
from .rollups import (
    DAILY,
    FIVE_MINUTES,
    HOURLY,
    Level,
    apply_retention,
    finish_on_cancel,
    roll_up,
    transact,
)

log = logging.getLogger("dragonopsd.history")

MAX_QUEUE = 200_000  # ~40 MB of queued rows; past it the oldest are dropped (and counted)
MAX_BATCH = 20_000  # rows per transaction, so one flush holds the write lock ~0.1 s at most
MESSAGE_CHARS = 200
MAINTAIN_INTERVAL = 60.0
VACUUM_PAGES = 256  # pages returned to the filesystem per maintenance run (auto_vacuum only)
SOURCES: tuple[Level | None, ...] = (None, FIVE_MINUTES, HOURLY, DAILY)  # None: raw rows

_INSERT_RAW = (
    "INSERT OR REPLACE INTO history_raw (monitor, at, status, latency, message) "
    "VALUES (?, ?, ?, ?, ?)"
)
_VACUUM = "PRAGMA incremental_vacuum(1)"  # one page per step; executemany steps it N times
Row = tuple[int, int, int, int | None, str | None]


class Heartbeat(msgspec.Struct, array_like=True, frozen=True):
    """One check result as history keeps it."""

    monitor: int  # the monitor's integer seq
    at: float  # Unix seconds
    status: int  # STATUS_CODES: 0 down, 1 up, 2 pending, 3 maintenance
    latency_ms: float | None
    message: str | None  # kept only for non-up heartbeats, at most 200 characters


class HistoryWriter:
    """Queues heartbeats and stores them in batches; also runs rollups and retention."""

    def __init__(self, db: Database, cfg: HistoryConfig, *, max_queue: int = MAX_QUEUE) -> None:
        self._db = db
        self._cfg = cfg
        self._queue: deque[Row] = deque(maxlen=max_queue)
        self._wake = asyncio.Event()
        self.dropped = 0
        self.flushed_total = 0
        self.submitted_total = 0
        self.last_flush_seconds = 0.0
        self.flush_buckets = Buckets()  # every flush's duration, for the metrics histogram
        self._urgent = False  # a sync() is waiting: flush now rather than at the interval
        self._flushed = asyncio.Event()  # set (and replaced) after every committed flush

    @property
    def queue_depth(self) -> int:
        """Heartbeats waiting for the next flush."""
        return len(self._queue)

    def submit(self, hb: Heartbeat) -> None:
        """Queue a heartbeat (loop thread only; O(1), never blocks). Full: drop the oldest."""
        if hb.status not in (0, 1, 2, 3) or hb.monitor < 0 or not math.isfinite(hb.at):
            raise ValueError(f"invalid heartbeat {hb!r}")
        latency = hb.latency_ms
        micros = round(latency * 1000) if latency is not None and 0 <= latency < 1e9 else None
        message = hb.message[:MESSAGE_CHARS] if hb.message and hb.status != 1 else None
        queue = self._queue
        if len(queue) == queue.maxlen:
            self.dropped += 1
        queue.append((hb.monitor, round(hb.at * 1000), hb.status, micros, message))
        self.submitted_total += 1
        if len(queue) >= self._cfg.flush_rows:
            self._wake.set()

    async def flush(self) -> int:
        """Store up to MAX_BATCH queued heartbeats in one transaction; returns rows written.

        Cancelling flush lets the transaction finish first; if it fails, the rows go back to
        the head of the queue (INSERT OR REPLACE makes any retry harmless).
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
                await conn.executemany(_INSERT_RAW, batch)
                await conn.executemany(
                    "INSERT OR IGNORE INTO history_monitors (monitor) VALUES (?)",
                    [(m,) for m in {row[0] for row in batch}],
                )
        except BaseException:
            self._requeue(batch)
            raise
        self.last_flush_seconds = time.perf_counter() - started
        self.flush_buckets.observe(self.last_flush_seconds)
        self.flushed_total += len(batch)
        self._flushed.set()
        self._flushed = asyncio.Event()
        return len(batch)

    async def sync(self, within: float) -> bool:
        """Wait until every heartbeat submitted so far is committed; False when some were
        dropped (queue overflow) or the writer did not get there within `within` seconds.

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

    def _requeue(self, batch: list[Row]) -> None:
        queue = self._queue
        room = (queue.maxlen or 0) - len(queue)
        if room < len(batch):  # still the oldest that go
            self.dropped += len(batch) - room
            batch = batch[len(batch) - room :] if room > 0 else []
        queue.extendleft(reversed(batch))

    async def run(self) -> None:
        """Flush every flush_interval or when flush_rows are queued; on cancel, drain and stop."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                deadline = loop.time() + self._cfg.flush_interval
                while (
                    len(self._queue) < self._cfg.flush_rows
                    and loop.time() < deadline
                    and not self._urgent
                ):
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout_at(deadline):
                            await self._wake.wait()
                self._urgent = False
                try:
                    await self.flush()
                except StoreUnavailable as exc:  # logged once by the database, not per retry
                    log.debug("history flush refused (%s); the rows stay queued", exc.trouble)
                    await asyncio.sleep(self._cfg.flush_interval)
                except Exception:
                    log.exception("history flush failed; the rows stay queued")
                    await asyncio.sleep(self._cfg.flush_interval)
        except asyncio.CancelledError:
            await self._drain()
            raise

    async def _drain(self) -> None:
        """Flush everything queued (SIGTERM path)."""
        try:
            while self._queue:
                await self.flush()
        except Exception:
            log.exception("final history flush failed; %d heartbeats lost", len(self._queue))

    async def maintain(self, interval: float = MAINTAIN_INTERVAL) -> None:
        """Every interval: rollups, retention, a passive WAL checkpoint, incremental vacuum."""
        loop = asyncio.get_running_loop()
        next_run = loop.time()
        while True:
            try:
                await self.maintain_once()
            except Exception:
                log.exception("history maintenance failed; retrying next interval")
            next_run = max(next_run + interval, loop.time())
            await asyncio.sleep(next_run - loop.time())

    async def maintain_once(self, now: float | None = None) -> tuple[int, int]:
        """One maintenance pass as of now (injectable); returns (rollup rounds, rows deleted)."""
        now = time.time() if now is None else now
        rounds = await roll_up(self._db, now)
        deleted = await apply_retention(self._db, self._cfg, now)
        async with self._db.read() as conn:
            await conn.execute_fetchall("PRAGMA wal_checkpoint(PASSIVE)")
            rows = list(await conn.execute_fetchall("PRAGMA auto_vacuum"))
            free = list(await conn.execute_fetchall("PRAGMA freelist_count"))
        # auto_vacuum=INCREMENTAL only takes effect on a new file (or after VACUUM); without it
        # free pages are simply reused by later inserts, and the file stays at its high mark.
        if rows[0][0] == 2 and free[0][0] > 0:
            pages = [()] * min(int(free[0][0]), VACUUM_PAGES)
            await transact(self._db, lambda conn: conn.executemany(_VACUUM, pages))
        if rounds or deleted:
            log.debug("history maintenance: %d rollup rounds, %d rows deleted", rounds, deleted)
        return rounds, deleted
