"""History: batched writer, rollups, retention, queries and the histogram, on real SQLite files."""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pg import BACKENDS, fresh_database

from dragonopsd.config import HistoryConfig
from dragonopsd.store.db import Database
from dragonopsd.store.histogram import RELATIVE_ERROR, Bucket, Histogram, bucket_of
from dragonopsd.store.history import Heartbeat, HistoryWriter
from dragonopsd.store.history_query import MAX_POINTS, HistoryQuery
from dragonopsd.store.postgres import PostgresDatabase
from dragonopsd.store.rollups import GRACE_S, decode_block, encode_block, read_state
from dragonopsd.store.sql import Database as Store

DAY = 86_400
T0 = 1_760_000_000 // DAY * DAY  # a midnight, so windows below align with every level


@pytest.fixture(params=BACKENDS)
async def db(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """A migrated database: a file in tmp_path, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        database: Store = Database(tmp_path / "history.db")
        await database.open()
        yield database
        await database.close()
        return
    with fresh_database() as url:
        database = PostgresDatabase(url)
        await database.open()
        try:
            yield database
        finally:
            await database.close()


def exact_quantile(values: list[float], q: float) -> float:
    """Nearest-rank quantile: the ceil(q*n)-th smallest value."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def assert_close(estimate: float | None, exact: float) -> None:
    """Within the histogram's bound (absolute 0.1 ms under its first bucket)."""
    assert estimate is not None
    assert abs(estimate - exact) <= max(exact * RELATIVE_ERROR, 0.1) + 1e-9, (estimate, exact)


def synthetic(monitors: tuple[int, ...], start: float, end: float, seed: int) -> list[Heartbeat]:
    """A heartbeat a minute per monitor, mostly up, with some down/pending/maintenance."""
    rnd = random.Random(seed)
    out = []
    t = start
    while t < end:
        for m in monitors:
            status = 1 if rnd.random() < 0.85 else rnd.choice((0, 2, 3))
            latency = rnd.lognormvariate(math.log(40 * m), 0.4) if rnd.random() < 0.97 else None
            out.append(Heartbeat(m, t + m, status, latency, None if status == 1 else "boom"))
        t += 60
    return out


async def feed(writer: HistoryWriter, beats: list[Heartbeat], every: float = 3600) -> None:
    """Submit in time order, flushing and running maintenance as the simulated clock passes."""
    next_tick = beats[0].at + every
    for hb in beats:
        if hb.at >= next_tick:
            await writer.flush()
            await writer.maintain_once(now=next_tick)
            next_tick += every
        writer.submit(hb)
    await writer.flush()


def truth(beats: list[Heartbeat], monitor: int, since: float, until: float) -> Bucket:
    """The exact aggregate, computed from the heartbeats themselves."""
    bucket = Bucket()
    for hb in beats:
        if hb.monitor == monitor and since <= hb.at < until:
            bucket.add(hb.status, hb.latency_ms)
    return bucket


def latencies(beats: list[Heartbeat], monitor: int, since: float, until: float) -> list[float]:
    return [
        hb.latency_ms
        for hb in beats
        if hb.monitor == monitor and since <= hb.at < until and hb.status == 1
        if hb.latency_ms is not None
    ]


# --- histogram -------------------------------------------------------------------------------

samples = st.lists(st.floats(min_value=0, max_value=800_000, allow_nan=False), max_size=300)


@given(samples)
def test_histogram_round_trips_through_its_encoding(values: list[float]) -> None:
    hist = Histogram.of(values)
    data = hist.encode()
    assert Histogram.decode(data) == hist
    assert Histogram.decode(data).total == len(values)


@given(samples, samples)
def test_merge_is_the_histogram_of_both_sample_sets(a: list[float], b: list[float]) -> None:
    merged = Histogram.decode(Histogram.of(a).encode())
    merged.merge(Histogram.decode(Histogram.of(b).encode()))
    assert merged == Histogram.of(a + b)


@settings(max_examples=300)
@given(
    st.lists(st.floats(min_value=0, max_value=800_000, allow_nan=False), min_size=1),
    st.floats(min_value=0, max_value=1),
)
def test_quantile_is_within_the_bucket_error(values: list[float], q: float) -> None:
    assert_close(Histogram.of(values).quantile(q), exact_quantile(values, q))


@given(samples)
def test_quantiles_are_monotonic(values: list[float]) -> None:
    hist = Histogram.of(values)
    qs = [hist.quantile(q / 20) for q in range(21)]
    if not values:
        assert qs == [None] * 21
    else:
        assert all(a is not None and b is not None and a <= b for a, b in itertools.pairwise(qs))


def test_histogram_is_compact_and_rejects_garbage() -> None:
    rnd = random.Random(7)
    hour = Histogram.of(rnd.lognormvariate(math.log(80), 0.3) for _ in range(60))
    assert len(hour.encode()) <= 24
    assert Histogram().encode() == b"\x00"
    assert bucket_of(float("nan")) == 0
    data = Histogram.of([1.0, 5.0, 5.0, 300.0] * 20).encode()
    for cut in range(1, len(data)):
        with pytest.raises(ValueError):
            Histogram.decode(data[:cut])


@given(
    st.dictionaries(
        st.integers(0, 23),
        st.tuples(
            st.integers(0, 2000), st.integers(0, 50), st.integers(0, 50), st.integers(0, 5), samples
        ),
        max_size=24,
    )
)
def test_rollup_blocks_round_trip(slots: dict[int, tuple[int, int, int, int, list[float]]]) -> None:
    buckets = {}
    for slot, (up, down, pending, maint, values) in slots.items():
        b = Bucket()
        b.up, b.down, b.pending, b.maintenance = up, down, pending, maint
        b.hist = Histogram.of(values)
        b.latency_sum = round(sum(values), 1)
        buckets[slot] = b
    decoded = decode_block(encode_block(buckets))
    assert sorted(decoded) == sorted(buckets)
    for slot, b in buckets.items():
        d = decoded[slot]
        assert (d.up, d.down, d.pending, d.maintenance) == (b.up, b.down, b.pending, b.maintenance)
        assert d.hist == b.hist
        assert d.latency_sum == pytest.approx(b.latency_sum if b.hist.counts else 0, abs=0.051)


# --- writer ----------------------------------------------------------------------------------


async def test_one_transaction_per_flush(db: Database) -> None:
    writer = HistoryWriter(db, HistoryConfig())
    for i in range(500):
        writer.submit(Heartbeat(i % 10, 1_700_000_000 + i, 1, 10.0, None))
    statements: list[str] = []
    await db.set_trace_callback(statements.append)
    assert await writer.flush() == 500
    await db.set_trace_callback(None)
    assert statements.count("BEGIN IMMEDIATE" if db.dialect == "sqlite" else "BEGIN") == 1
    assert statements.count("COMMIT") == 1
    assert sum("INSERT INTO history_raw" in s for s in statements) == 500
    assert writer.queue_depth == 0 and writer.flushed_total == 500
    assert writer.last_flush_seconds > 0
    assert len(await HistoryQuery(db).recent(3, 1000)) == 50
    assert await writer.flush() == 0


async def test_full_queue_drops_the_oldest_and_counts(db: Database) -> None:
    writer = HistoryWriter(db, HistoryConfig(), max_queue=10)
    for i in range(15):
        writer.submit(Heartbeat(1, 1_700_000_000 + i, 1, 1.0, None))
    assert (writer.queue_depth, writer.dropped) == (10, 5)
    await writer.flush()
    kept = await HistoryQuery(db).recent(1, 100)
    assert [hb.at for hb in kept] == [1_700_000_000 + i for i in range(14, 4, -1)]


async def test_submit_keeps_messages_only_for_failures_and_rejects_bad_input(db: Database) -> None:
    writer = HistoryWriter(db, HistoryConfig())
    writer.submit(Heartbeat(1, 1_700_000_000, 1, 12.3456, "fine"))
    writer.submit(Heartbeat(1, 1_700_000_001, 0, None, "x" * 500))
    writer.submit(Heartbeat(1, 1_700_000_002, 2, float("nan"), "retrying"))
    for bad in (Heartbeat(1, 1.0, 7, None, None), Heartbeat(-1, 1.0, 1, None, None)):
        with pytest.raises(ValueError):
            writer.submit(bad)
    await writer.flush()
    newest, down, up = await HistoryQuery(db).recent(1, 10)
    assert (up.message, up.latency_ms, up.status) == (None, 12.346, 1)
    assert down.message == "x" * 200 and down.latency_ms is None
    assert newest.latency_ms is None and newest.message == "retrying"


async def test_run_flushes_on_row_count_and_drains_on_cancel(db: Database) -> None:
    writer = HistoryWriter(db, HistoryConfig(flush_interval=10, flush_rows=100))
    task = asyncio.create_task(writer.run())
    await asyncio.sleep(0.05)
    for i in range(100):
        writer.submit(Heartbeat(1, 1_700_000_000 + i, 1, 1.0, None))
    for _ in range(100):  # the row-count trigger, long before the 10 s interval
        await asyncio.sleep(0.01)
        if writer.flushed_total == 100:
            break
    assert writer.flushed_total == 100
    for i in range(37):
        writer.submit(Heartbeat(2, 1_700_000_000 + i, 1, 1.0, None))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert writer.queue_depth == 0
    assert len(await HistoryQuery(db).recent(2, 100)) == 37


async def test_a_cancelled_flush_keeps_its_rows(db: Database) -> None:
    writer = HistoryWriter(db, HistoryConfig())
    for i in range(2000):
        writer.submit(Heartbeat(i % 3, 1_700_000_000 + i, 1, 1.0, None))
    flush = asyncio.create_task(writer.flush())
    await asyncio.sleep(0)
    flush.cancel()
    with pytest.raises(asyncio.CancelledError):
        await flush
    # The transaction was let finish; the writer connection is not left inside it.
    assert (writer.queue_depth, writer.flushed_total) == (0, 2000)
    writer.submit(Heartbeat(5, 1_700_000_000, 1, 1.0, None))
    assert await writer.flush() == 1
    async with db.read() as conn:
        rows = list(await conn.execute_fetchall("SELECT count(*) FROM history_raw"))
    assert rows[0][0] == 2001


CRASH_SCRIPT = """
import asyncio, sys
from pathlib import Path
from dragonopsd.config import HistoryConfig
from dragonopsd.store.db import Database
from dragonopsd.store.history import Heartbeat, HistoryWriter

class Reporting(HistoryWriter):
    async def flush(self) -> int:
        n = await super().flush()
        if n:
            print(self.flushed_total, flush=True)  # everything before this is committed
        return n

async def main() -> None:
    db = Database(Path(sys.argv[1]))
    await db.open()
    writer = Reporting(db, HistoryConfig(flush_interval=0.2, flush_rows=100_000))
    runner = asyncio.create_task(writer.run())
    i = 0
    while True:
        for _ in range(40):
            writer.submit(Heartbeat(i % 7, 1_700_000_000 + i / 1000, i % 4, 5.0, "m"))
            i += 1
        await asyncio.sleep(0.002)

asyncio.run(main())
"""


def test_kill_9_loses_at_most_the_flush_in_flight(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(CRASH_SCRIPT))
    proc = subprocess.Popen(
        [sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    reported: list[int] = []
    deadline = time.monotonic() + 30
    try:
        while len(reported) < 8 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            reported.append(int(line))
        time.sleep(0.1)  # kill it mid-stream, probably during a flush
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert len(reported) == 8, "the writer never reported its flushes"
    flushed = reported[-1]
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA quick_check").fetchall() == [("ok",)]
        ats = {r[0] for r in conn.execute("SELECT at FROM history_raw")}
    finally:
        conn.close()
    assert {1_700_000_000_000 + i for i in range(flushed)} <= ats


# --- rollups, retention, queries ---------------------------------------------------------------


async def test_uptime_and_percentiles_from_rollups_match_the_heartbeats(db: Database) -> None:
    now = T0 + 6 * DAY + 7 * 3600 + 1800
    beats = synthetic((1, 2), T0 + 1234, now, seed=3)
    writer = HistoryWriter(db, HistoryConfig())
    await feed(writer, beats)
    await writer.maintain_once(now=now)
    state = await _state(db)
    assert state.rolled_5m == (now - GRACE_S) // 300 * 300
    assert state.rolled_1h == state.rolled_5m // 3600 * 3600
    assert state.rolled_1d == T0 + 6 * DAY

    statements: list[str] = []
    await db.set_trace_callback(statements.append)
    windows = await HistoryQuery(db).uptime(1, [3600, DAY, 3 * DAY, 5 * DAY], now=now)
    await db.set_trace_callback(None)
    assert any("history_1d" in s for s in statements)
    raw_scans = [s for s in statements if "FROM history_raw" in s]
    assert len(raw_scans) <= 2 * 4  # the ragged ends of each window, never the whole span

    for w in windows:
        exact = truth(beats, 1, now - w.window, now)
        assert (w.checks, w.up, w.down, w.pending, w.maintenance) == (
            exact.checks,
            exact.up,
            exact.down,
            exact.pending,
            exact.maintenance,
        )
        assert w.uptime == pytest.approx(exact.up / (exact.up + exact.down + exact.pending))
        values = latencies(beats, 1, now - w.window, now)
        assert w.avg_ms == pytest.approx(sum(values) / len(values), abs=0.06)
        for q, got in ((0.5, w.p50_ms), (0.95, w.p95_ms), (0.99, w.p99_ms)):
            assert_close(got, exact_quantile(values, q))


async def test_retention_keeps_answers_from_rollups(db: Database) -> None:
    cfg = HistoryConfig(raw_hours=2, five_minute_days=1, hourly_days=2)
    now = T0 + 5 * DAY + 600
    beats = synthetic((1, 2), T0, now, seed=5)
    writer = HistoryWriter(db, cfg)
    await feed(writer, beats)
    await writer.maintain_once(now=now)
    async with db.read() as conn:
        (oldest,) = await conn.execute_fetchall("SELECT min(at) FROM history_raw")
        (block,) = await conn.execute_fetchall("SELECT min(id & 16777215) FROM history_5m")
    assert oldest[0] >= (now - 2 * 3600 - 300) * 1000
    assert block[0] * 3600 >= now - DAY - 3600
    query = HistoryQuery(db)
    assert len(await query.recent(1, 10_000)) <= 2 * 60 + 10
    # Windows starting at midnight: whole days from the daily rollups, the rest from finer ones.
    for days in (3, 5):
        since = now - 600 - days * DAY
        (w,) = await query.uptime(2, [now - since], now=now)
        exact = truth(beats, 2, since, now)
        assert (w.checks, w.up, w.down) == (exact.checks, exact.up, exact.down)
        assert_close(w.p95_ms, exact_quantile(latencies(beats, 2, since, now), 0.95))
    # Raw rows are gone for this day: the series still answers it from rollups.
    points = await query.series(2, T0 + DAY, T0 + 2 * DAY, 3600)
    exact = truth(beats, 2, T0 + DAY, T0 + 2 * DAY)
    assert sum(p.up for p in points) == exact.up


async def test_series_picks_the_source_for_the_step_and_limits_points(db: Database) -> None:
    now = T0 + 2 * DAY + 12 * 3600
    beats = synthetic((1,), T0, now, seed=11)
    writer = HistoryWriter(db, HistoryConfig())
    await feed(writer, beats)
    await writer.maintain_once(now=now)
    query = HistoryQuery(db)
    since, until = T0 + DAY + 1800, T0 + 2 * DAY + 1800
    for step, table in ((60, "history_raw"), (300, "history_5m"), (3600, "history_1h")):
        statements: list[str] = []
        await db.set_trace_callback(statements.append)
        points = await query.series(1, since, until, step)
        await db.set_trace_callback(None)
        start = since // step * step
        exact = truth(beats, 1, start, until)
        assert len(points) == math.ceil((until - start) / step)
        assert all(p.at % step == 0 for p in points)
        assert any(table in s for s in statements), step
        assert sum(p.up + p.down + p.pending + p.maintenance for p in points) == exact.checks
    daily = await query.series(1, T0, T0 + 3 * DAY, DAY)
    assert [p.up for p in daily] == [
        truth(beats, 1, T0 + d * DAY, T0 + (d + 1) * DAY).up for d in range(3)
    ]
    hour = points[5]
    values = latencies(beats, 1, hour.at, hour.at + 3600)
    assert_close(hour.p99_ms, exact_quantile(values, 0.99))
    with pytest.raises(ValueError, match="at most"):
        await query.series(1, since, since + 60 * (MAX_POINTS + 1), 60)
    with pytest.raises(ValueError):
        await query.series(1, since, since, 60)
    empty = await query.series(99, since, until, 3600)
    assert all(p.uptime is None and p.p50_ms is None for p in empty)


async def test_late_heartbeats_within_grace_are_rolled_up(db: Database) -> None:
    writer = HistoryWriter(db, HistoryConfig())
    base = T0 + 3600
    for i in range(10):
        writer.submit(Heartbeat(1, base + 60 * i, 1, 5.0, None))
    await writer.flush()
    await writer.maintain_once(now=base + 600)  # 5-minute buckets closed GRACE_S ago
    writer.submit(Heartbeat(1, base + 599, 0, None, "late"))  # arrives after the first pass
    await writer.flush()
    await writer.maintain_once(now=base + 600 + GRACE_S)
    await writer.maintain_once(now=base + 3 * 3600)
    (w,) = await HistoryQuery(db).uptime(1, [3600], now=base + 3600)
    assert (w.up, w.down) == (10, 1)


async def test_delete_monitor_drops_only_its_history(db: Database) -> None:
    now = T0 + 2 * DAY + 3600
    beats = synthetic((1, 2), T0, now, seed=2)
    writer = HistoryWriter(db, HistoryConfig())
    await feed(writer, beats)
    await writer.maintain_once(now=now)
    query = HistoryQuery(db)
    await query.delete_monitor(1)
    (gone,) = await query.uptime(1, [3 * DAY], now=now)
    (kept,) = await query.uptime(2, [3 * DAY], now=now)
    assert gone.checks == 0 and gone.uptime is None
    assert kept.checks == truth(beats, 2, now - 3 * DAY, now).checks
    async with db.read() as conn:
        for table in ("history_5m", "history_1h", "history_1d"):
            rows = list(
                await conn.execute_fetchall(f"SELECT count(*) FROM {table} WHERE id >> 24 = 1")
            )
            assert rows[0][0] == 0


async def test_catching_up_after_downtime_skips_the_gap(db: Database) -> None:
    writer = HistoryWriter(db, HistoryConfig())
    for day in (0, 40):
        for i in range(30):
            writer.submit(Heartbeat(1, T0 + day * DAY + 60 * i, 1, 3.0, None))
    await writer.flush()
    await writer.maintain_once(now=T0 + 40 * DAY + 5 * 3600)
    assert (await _state(db)).rolled_1d == T0 + 40 * DAY
    (w,) = await HistoryQuery(db).uptime(1, [45 * DAY], now=T0 + 40 * DAY + 5 * 3600)
    assert w.up == 60


async def test_maintain_runs_in_the_background_until_cancelled(db: Database) -> None:
    writer = HistoryWriter(db, HistoryConfig())
    start = time.time() - 3 * 3600
    for i in range(120):
        writer.submit(Heartbeat(1, start + 60 * i, 1, 2.0, None))
    await writer.flush()
    task = asyncio.create_task(writer.maintain(interval=0.05))
    for _ in range(250):
        await asyncio.sleep(0.02)
        if (await _state(db)).rolled_1h >= start + 3600:
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await _state(db)).rolled_1h >= start + 3600
    (w,) = await HistoryQuery(db).uptime(1, [4 * 3600])
    assert (w.checks, w.up, w.uptime) == (120, 120, 1.0)


async def _state(db: Database):  # type: ignore[no-untyped-def]
    async with db.read() as conn:
        return await read_state(conn)


async def test_a_clock_that_went_back_loses_no_heartbeats(db: Database) -> None:
    """A day ahead for ten minutes, then back: what was stamped after the step is rolled up
    (the marks come back to the present) before retention deletes its raw rows."""
    writer = HistoryWriter(db, HistoryConfig(raw_hours=2))

    async def each_minute(beats: list[Heartbeat]) -> None:
        for hb in beats:  # a pass a minute after each heartbeat, as the daemon runs them
            writer.submit(hb)
            await writer.flush()
            await writer.maintain_once(now=hb.at + 1)

    await each_minute([Heartbeat(1, T0 + 60 * i, 1, 5.0, None) for i in range(60)])
    await each_minute([Heartbeat(1, T0 + DAY + 3600 + 60 * i, 0, None, "x") for i in range(10)])
    assert (await _state(db)).rolled_5m > T0 + DAY  # the marks followed the clock ahead
    back = [Heartbeat(1, T0 + 3600 + 60 * i, 1, 5.0, None) for i in range(120)]
    await each_minute(back)
    state = await _state(db)
    assert back[-1].at - 3600 <= state.rolled_5m <= back[-1].at
    assert state.rolled_1h <= state.rolled_5m and state.rolled_1d <= state.rolled_1h

    await writer.maintain_once(now=T0 + 3 * DAY)  # the raw rows of that time are gone now
    async with db.read() as conn:
        (oldest,) = await conn.execute_fetchall("SELECT min(at) FROM history_raw")
    assert oldest[0] is None or oldest[0] >= (T0 + DAY + 3600) * 1000
    (w,) = await HistoryQuery(db).uptime(1, [3 * DAY], now=T0 + 3 * DAY)
    assert (w.up, w.down) == (60 + 120, 10)
