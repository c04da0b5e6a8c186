"""Sample history: a batched writer, its rollup/retention job, and the series read.

The sampler submits samples to an in-memory queue (O(1), never blocking the loop); the writer
stores them one transaction per flush, on the [history] flush schedule, so kill -9 loses at
most the samples of the flush in flight. Raw rows are kept [sampling] raw_hours; minute and
hourly rollups (store/sample_rollups.py) answer for older time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque

import aiosqlite
import msgspec

from ..config import HistoryConfig, SamplingConfig
from ..model import Wire
from ..sample import SCALES, Sample
from . import sample_rollups as rollups
from .db import Database, StoreUnavailable
from .rollups import Level, block_id, finish_on_cancel, transact
from .sample_rollups import HOUR, MINUTE, Agg, State, read_state

log = logging.getLogger("dragonopsd.samples")

MAX_QUEUE = 100_000  # 100 s of 1,000 servers at 1 s; past it the oldest are dropped (counted)
MAX_BATCH = 20_000  # rows per transaction, so one flush holds the write lock briefly
MAX_POINTS = 2048
MAX_LATE = 50_000  # (server, hour) pairs awaiting a re-roll; past it, their rollups stay short
MAINTAIN_INTERVAL = 60.0

_INSERT = (
    "INSERT OR REPLACE INTO samples_raw "
    "(server, at, cpu, memory, load, disk, net_in, net_out) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
Row = tuple[str, int, int, int, int, int, int, int]  # server id, at (ms), six scaled metrics


class Point(Wire, kw_only=True):
    """Samples of one step: their count, and the mean and maximum of each metric (null when
    the step has no samples)."""

    at: float
    count: int
    cpu: float | None = None
    cpu_max: float | None = None
    memory: float | None = None
    memory_max: float | None = None
    load: float | None = None
    load_max: float | None = None
    disk: float | None = None
    disk_max: float | None = None
    net_in: float | None = None
    net_in_max: float | None = None
    net_out: float | None = None
    net_out_max: float | None = None


_FIELDS = [f for f in msgspec.structs.fields(Point) if f.name not in ("at", "count")]


def point_of(at: float, agg: Agg) -> Point:
    """A Point from an interval's aggregate (stored units back to percent, load, bytes/s)."""
    if agg.n == 0:
        return Point(at=at, count=0)
    values: dict[str, float] = {}
    for i, scale in enumerate(SCALES):
        values[_FIELDS[2 * i].name] = round(agg.sums[i] / agg.n / scale, 2)
        values[_FIELDS[2 * i + 1].name] = agg.maxes[i] / scale
    return Point(at=at, count=agg.n, **values)


class SampleWriter:
    """Queues samples and stores them in batches; also runs rollups, retention and cleanup."""

    def __init__(
        self,
        db: Database,
        cfg: SamplingConfig,
        flush: HistoryConfig,
        *,
        max_queue: int = MAX_QUEUE,
    ) -> None:
        self._db = db
        self._cfg = cfg
        self._flush_interval = flush.flush_interval
        self._flush_rows = flush.flush_rows
        self._queue: deque[Row] = deque(maxlen=max_queue)
        self._wake = asyncio.Event()
        self._seqs: dict[str, int] = {}
        self._rolled_ms = 0  # rows below this are late: their hour must be rolled again
        self._late: set[tuple[int, int]] = set()
        self.dropped = 0
        self.flushed_total = 0

    @property
    def queue_depth(self) -> int:
        """Samples waiting for the next flush."""
        return len(self._queue)

    def submit(self, sample: Sample) -> None:
        """Queue a sample (loop thread only; O(1), never blocks). Full: drop the oldest."""
        if not math.isfinite(sample.at):
            raise ValueError(f"invalid sample time {sample.at!r}")
        queue = self._queue
        if len(queue) == queue.maxlen:
            self.dropped += 1
        queue.append((sample.server_id, round(sample.at * 1000), *sample.scaled()))
        if len(queue) >= self._flush_rows:
            self._wake.set()

    async def flush(self) -> int:
        """Store up to MAX_BATCH queued samples in one transaction; returns rows written.

        Cancelling flush lets the transaction finish first; if it fails, the rows go back to
        the head of the queue (INSERT OR REPLACE makes any retry harmless).
        """
        queue = self._queue
        if not queue:
            return 0
        batch = [queue.popleft() for _ in range(min(len(queue), MAX_BATCH))]
        return await finish_on_cancel(self._store(batch))

    async def _store(self, batch: list[Row]) -> int:
        seqs = self._seqs
        unknown = sorted({row[0] for row in batch if row[0] not in seqs})

        async def work(conn: aiosqlite.Connection) -> dict[str, int]:
            found: dict[str, int] = {}
            if unknown:
                await conn.executemany(
                    "INSERT OR IGNORE INTO sample_servers (server_id) VALUES (?)",
                    [(ident,) for ident in unknown],
                )
                marks = ",".join("?" * len(unknown))
                sql = f"SELECT server_id, seq FROM sample_servers WHERE server_id IN ({marks})"
                found = {str(i): int(s) for i, s in await conn.execute_fetchall(sql, unknown)}
            known = seqs | found
            await conn.executemany(_INSERT, [(known[row[0]], *row[1:]) for row in batch])
            return found

        try:
            seqs.update(await transact(self._db, work))
        except BaseException:
            self._requeue(batch)
            raise
        rolled = self._rolled_ms
        for row in batch:
            if row[1] < rolled and len(self._late) < MAX_LATE:
                self._late.add((seqs[row[0]], row[1] // 3_600_000 * 3600))
        self.flushed_total += len(batch)
        return len(batch)

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
                deadline = loop.time() + self._flush_interval
                while len(self._queue) < self._flush_rows and loop.time() < deadline:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout_at(deadline):
                            await self._wake.wait()
                try:
                    await self.flush()
                except StoreUnavailable as exc:  # logged once by the database, not per retry
                    log.debug("sample flush refused (%s); the rows stay queued", exc.trouble)
                    await asyncio.sleep(self._flush_interval)
                except Exception:
                    log.exception("sample flush failed; the rows stay queued")
                    await asyncio.sleep(self._flush_interval)
        except asyncio.CancelledError:
            try:
                while self._queue:
                    await self.flush()
            except Exception:
                log.exception("final sample flush failed; %d samples lost", len(self._queue))
            raise

    async def maintain(self, interval: float = MAINTAIN_INTERVAL) -> None:
        """Every interval: rollups, re-rolls of late samples, retention, deleted servers."""
        loop = asyncio.get_running_loop()
        next_run = loop.time()
        while True:
            try:
                await self.maintain_once()
            except Exception:
                log.exception("sample maintenance failed; retrying next interval")
            next_run = max(next_run + interval, loop.time())
            await asyncio.sleep(next_run - loop.time())

    async def maintain_once(self, now: float | None = None) -> tuple[int, int]:
        """One pass as of now (injectable); returns (hours rolled, rows deleted)."""
        now = time.time() if now is None else now
        if not self._rolled_ms:
            async with self._db.read() as conn:
                self._rolled_ms = (await read_state(conn)).rolled * 1000
        hours = await rollups.roll_up(self._db, now, self._advancing)
        late, self._late = self._late, set()
        if late:
            await rollups.reroll(self._db, late)
        deleted = await rollups.apply_retention(self._db, self._cfg, now)
        for ident in await rollups.drop_deleted(self._db):
            self._seqs.pop(ident, None)
        return hours, deleted

    def _advancing(self, mark: int) -> None:
        self._rolled_ms = max(self._rolled_ms, mark * 1000)


def _plan(
    a: float, b: float, level: Level | None, rolled: int
) -> list[tuple[Level | None, float, float]]:
    """[a, b) as whole buckets of level below the rolled mark, raw rows for the ragged ends."""
    if level is None or b <= a:
        return [(None, a, b)]
    lo = math.ceil(a / level.width) * level.width
    hi = min(math.floor(b / level.width) * level.width, rolled)
    if hi <= lo:
        return [(None, a, b)]
    return [(None, a, lo), (level, lo, hi), (None, hi, b)]


class SampleQuery:
    """Series of one server's samples, read from WAL readers."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def series(self, server_id: str, since: float, until: float, step: float) -> list[Point]:
        """Points every step seconds over [since, until), from the coarsest source the step
        allows (raw below a minute, minute rollups below an hour, then hourly); where that
        source has expired, the next coarser one fills in."""
        if not step >= 1 or not until > since:
            raise ValueError("step must be at least 1 s and since before until")
        start = math.floor(since / step) * step
        count = math.ceil((until - start) / step)
        if count > MAX_POINTS:
            raise ValueError(f"{count} points requested; at most {MAX_POINTS}: use a larger step")
        aggs = [Agg() for _ in range(count)]
        async with self._db.read() as conn:
            rows = list(
                await conn.execute_fetchall(
                    "SELECT seq FROM sample_servers WHERE server_id = ?", (server_id,)
                )
            )
            if rows:
                state = await read_state(conn)
                await self._collect(
                    conn=conn,
                    seq=int(rows[0][0]),
                    state=state,
                    span=(start, until),
                    step=step,
                    aggs=aggs,
                )
        return [point_of(start + i * step, agg) for i, agg in enumerate(aggs)]

    async def _collect(
        self,
        *,
        conn: aiosqlite.Connection,
        seq: int,
        state: State,
        span: tuple[float, float],
        step: float,
        aggs: list[Agg],
    ) -> None:
        start, until = span
        levels: tuple[Level | None, ...] = (None, MINUTE, HOUR)
        kept = (state.kept_raw, state.kept_1m, state.kept_1h)
        top = 0 if step < 60 else 1 if step < 3600 else 2
        while top < 2 and start < kept[top]:
            top += 1
        step_ms = round(step * 1000)
        start_ms = round(start * 1000)
        for source, lo, hi in _plan(start, until, levels[top], state.rolled):
            if hi <= lo:
                continue
            if source is None:  # SQLite groups the raw rows by step in its own thread
                sql = (
                    f"SELECT (at - ?) / ?, COUNT(*), {rollups.sums_sql()} "
                    "FROM samples_raw WHERE server = ? AND at >= ? AND at < ? GROUP BY 1"
                )
                args = (start_ms, step_ms, seq, math.ceil(lo * 1000), math.ceil(hi * 1000))
                for row in await conn.execute_fetchall(sql, args):
                    if 0 <= row[0] < len(aggs):
                        aggs[row[0]].merge(Agg.of_row(row[1:]))
                continue
            sql = f"SELECT id, data FROM {source.table} WHERE id BETWEEN ? AND ?"
            ids = (
                block_id(seq, int(lo) // source.block),
                block_id(seq, int(hi - 1) // source.block),
            )
            for row_id, data in await conn.execute_fetchall(sql, ids):
                base = rollups.block_start(source, row_id)
                for slot, agg in rollups.decode_block(data).items():
                    at = base + slot * source.width
                    i = int((at - start) // step)
                    if lo <= at < hi and 0 <= i < len(aggs):
                        aggs[i].merge(agg)
