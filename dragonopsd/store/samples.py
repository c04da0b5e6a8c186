"""Sample history: a batched writer, its rollup/retention job, and the series read.

The sampler submits samples to an in-memory queue (O(1), never blocking the loop); the writer
(store/batch.py) stores them one transaction per flush, on the [history] flush schedule, so
kill -9 loses at most the samples of the flush in flight. Raw rows are kept [sampling]
raw_hours; minute and hourly rollups (store/sample_rollups.py) answer for older time.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import msgspec

from ..config import HistoryConfig, SamplingConfig
from ..model.inventory import Wire
from ..model.sample import SCALES, Sample
from . import sample_rollups as rollups
from .batch import BatchWriter, repeat
from .rollups import Level, block_id
from .sample_rollups import HOUR, MINUTE, Agg, State, read_state
from .sql import Connection, Database

log = logging.getLogger("dragonopsd.samples")

MAX_QUEUE = 100_000  # 100 s of 1,000 servers at 1 s; past it the oldest are dropped (counted)
MAX_POINTS = 2048
MAX_LATE = 50_000  # (server, hour) pairs awaiting a re-roll; past it, their rollups stay short
MAINTAIN_INTERVAL = 60.0

_INSERT = (
    "INSERT INTO samples_raw (server, at, cpu, memory, load, disk, net_in, net_out) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (server, at) DO UPDATE SET "
    "cpu = excluded.cpu, memory = excluded.memory, load = excluded.load, "
    "disk = excluded.disk, net_in = excluded.net_in, net_out = excluded.net_out"
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
    """Queues samples and stores them in batches (store/batch.py); also runs rollups,
    retention and cleanup."""

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
        self._batch: BatchWriter[Row] = BatchWriter(
            db, self._write, flush, max_queue=max_queue, log=log, what=("sample", "samples")
        )
        self._seqs: dict[str, int] = {}
        self._rolled_ms = 0  # rows below this are late: their hour must be rolled again
        self._late: set[tuple[int, int]] = set()

    def submit(self, sample: Sample) -> None:
        """Queue a sample (loop thread only; O(1), never blocks). Full: drop the oldest."""
        if not math.isfinite(sample.at):
            raise ValueError(f"invalid sample time {sample.at!r}")
        self._batch.put((sample.server_id, round(sample.at * 1000), *sample.scaled()))

    async def flush(self) -> int:
        """Store up to batch.MAX_BATCH queued samples in one transaction; returns rows written
        (an upsert makes the retry of a failed flush harmless)."""
        return await self._batch.flush()

    async def run(self) -> None:
        """Flush every flush_interval or when flush_rows are queued; on cancel, drain and stop."""
        await self._batch.run(self.flush)

    async def _write(self, conn: Connection, batch: list[Row]) -> Callable[[], None] | None:
        """One flush: new servers get their seq, then the samples under it. The seqs and the
        late hours are noted only once committed (a rollback takes new seqs back)."""
        seqs = self._seqs
        unknown = sorted({row[0] for row in batch if row[0] not in seqs})
        found: dict[str, int] = {}
        if unknown:
            await conn.executemany(
                "INSERT INTO sample_servers (server_id) VALUES (?) ON CONFLICT DO NOTHING",
                [(ident,) for ident in unknown],
            )
            marks = ",".join("?" * len(unknown))
            sql = f"SELECT server_id, seq FROM sample_servers WHERE server_id IN ({marks})"
            found = {str(i): int(s) for i, s in await conn.execute_fetchall(sql, unknown)}
        known = seqs | found
        await conn.executemany(_INSERT, [(known[row[0]], *row[1:]) for row in batch])

        def committed() -> None:
            seqs.update(found)
            rolled = self._rolled_ms
            for row in batch:
                if row[1] < rolled and len(self._late) < MAX_LATE:
                    self._late.add((seqs[row[0]], row[1] // 3_600_000 * 3600))

        return committed

    async def maintain(self, interval: float = MAINTAIN_INTERVAL) -> None:
        """Every interval: rollups, re-rolls of late samples, retention, deleted servers."""
        await repeat(self.maintain_once, interval, log, "sample maintenance")

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
        conn: Connection,
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
