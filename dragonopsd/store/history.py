"""Heartbeat history: a batched writer, and the rollup and retention jobs (reads: history_query).

Probes submit heartbeats to an in-memory queue (never blocking the loop); the writer
(store/batch.py) stores them one transaction per flush (every flush_interval, or sooner when
flush_rows are queued), so kill -9 loses at most the heartbeats of the flush in flight. Raw
rows are kept raw_hours, then only the rollups in store/rollups.py answer for them.
"""

from __future__ import annotations

import logging
import math
import time

import msgspec

from ..buckets import Buckets
from ..config import HistoryConfig
from .batch import BatchWriter, repeat
from .rollups import DAILY, FIVE_MINUTES, HOURLY, Level, apply_retention, roll_up, transact
from .sql import Connection, Database

log = logging.getLogger("dragonopsd.history")

MAX_QUEUE = 200_000  # ~40 MB of queued rows; past it the oldest are dropped (and counted)
MESSAGE_CHARS = 200
MAINTAIN_INTERVAL = 60.0
VACUUM_PAGES = 256  # pages returned to the filesystem per maintenance run (auto_vacuum only)
SOURCES: tuple[Level | None, ...] = (None, FIVE_MINUTES, HOURLY, DAILY)  # None: raw rows

_INSERT_RAW = (
    "INSERT INTO history_raw (monitor, at, status, latency, message) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (monitor, at) DO UPDATE SET status = excluded.status, "
    "latency = excluded.latency, message = excluded.message"
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


async def _write(conn: Connection, batch: list[Row]) -> None:
    """One flush: the heartbeats, and their monitors into the index rollups walk."""
    await conn.executemany(_INSERT_RAW, batch)
    await conn.executemany(
        "INSERT INTO history_monitors (monitor) VALUES (?) ON CONFLICT DO NOTHING",
        [(m,) for m in {row[0] for row in batch}],
    )


class HistoryWriter:
    """Queues heartbeats and stores them in batches (store/batch.py); also runs rollups and
    retention."""

    def __init__(self, db: Database, cfg: HistoryConfig, *, max_queue: int = MAX_QUEUE) -> None:
        self._db = db
        self._cfg = cfg
        self._batch: BatchWriter[Row] = BatchWriter(
            db, _write, cfg, max_queue=max_queue, log=log, what=("history", "heartbeats")
        )

    @property
    def queue_depth(self) -> int:
        """Heartbeats waiting for the next flush."""
        return self._batch.queue_depth

    @property
    def dropped(self) -> int:
        """Heartbeats dropped from a full queue."""
        return self._batch.dropped

    @property
    def submitted_total(self) -> int:
        """Heartbeats submitted."""
        return self._batch.submitted_total

    @property
    def flushed_total(self) -> int:
        """Heartbeats committed."""
        return self._batch.flushed_total

    @property
    def last_flush_seconds(self) -> float:
        """How long the last committed flush took."""
        return self._batch.last_flush_seconds

    @property
    def flush_buckets(self) -> Buckets:
        """Every flush's duration, for the metrics histogram."""
        return self._batch.flush_buckets

    def submit(self, hb: Heartbeat) -> None:
        """Queue a heartbeat (loop thread only; O(1), never blocks). Full: drop the oldest."""
        if hb.status not in (0, 1, 2, 3) or hb.monitor < 0 or not math.isfinite(hb.at):
            raise ValueError(f"invalid heartbeat {hb!r}")
        latency = hb.latency_ms
        micros = round(latency * 1000) if latency is not None and 0 <= latency < 1e9 else None
        message = hb.message[:MESSAGE_CHARS] if hb.message and hb.status != 1 else None
        self._batch.put((hb.monitor, round(hb.at * 1000), hb.status, micros, message))

    async def flush(self) -> int:
        """Store up to batch.MAX_BATCH queued heartbeats in one transaction; returns rows written
        (an upsert makes the retry of a failed flush harmless)."""
        return await self._batch.flush()

    async def sync(self, within: float) -> bool:
        """Wait until every heartbeat submitted so far is committed (BatchWriter.sync)."""
        return await self._batch.sync(within)

    async def run(self) -> None:
        """Flush every flush_interval or when flush_rows are queued; on cancel, drain and stop."""
        await self._batch.run(self.flush)

    async def maintain(self, interval: float = MAINTAIN_INTERVAL) -> None:
        """Every interval: rollups, retention, a passive WAL checkpoint, incremental vacuum."""
        await repeat(self.maintain_once, interval, log, "history maintenance")

    async def maintain_once(self, now: float | None = None) -> tuple[int, int]:
        """One maintenance pass as of now (injectable); returns (rollup rounds, rows deleted)."""
        now = time.time() if now is None else now
        rounds = await roll_up(self._db, now)
        deleted = await apply_retention(self._db, self._cfg, now)
        if self._db.dialect == "sqlite":
            await self._reclaim()
        if rounds or deleted:
            log.debug("history maintenance: %d rollup rounds, %d rows deleted", rounds, deleted)
        return rounds, deleted

    async def _reclaim(self) -> None:
        """SQLite only: a passive WAL checkpoint, and free pages handed back to the filesystem
        (PostgreSQL's autovacuum does this job there)."""
        async with self._db.read() as conn:
            await conn.execute_fetchall("PRAGMA wal_checkpoint(PASSIVE)")
            rows = list(await conn.execute_fetchall("PRAGMA auto_vacuum"))
            free = list(await conn.execute_fetchall("PRAGMA freelist_count"))
        # auto_vacuum=INCREMENTAL only takes effect on a new file (or after VACUUM); without it
        # free pages are simply reused by later inserts, and the file stays at its high mark.
        if rows[0][0] == 2 and free[0][0] > 0:
            pages = [()] * min(int(free[0][0]), VACUUM_PAGES)
            await transact(self._db, lambda conn: conn.executemany(_VACUUM, pages))
