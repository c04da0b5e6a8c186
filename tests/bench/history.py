"""History storage: write throughput, bytes per monitor per day over a simulated year, query time.

    python tests/bench/history.py [--monitors 1000] [--days 365] [--raw-hours 50] [--dir DIR]

A year of 1,000 monitors checked every 60 s is 525 million heartbeats: far too many to push
through Python in minutes, so the year is built in three phases, oldest first, each in the form
the daemon itself would have left it:

1. days older than 14: hourly blocks and daily blocks (5-minute rollups and raw rows are gone
   by then). Buckets are built by the real Bucket/Histogram code from sampled heartbeats (one
   60-sample draw per hour), encoded by the real encode_block, and inserted directly; a pool of
   day templates per latency profile is reused, which leaves the bytes unchanged.
2. the last 14 days down to raw_hours ago: 5-minute blocks, built the same way; hourly and
   daily buckets for them come from the daemon's own rollup cascade (roll_up).
3. the last raw_hours: heartbeats through HistoryWriter.submit/run (timed: heartbeats_per_s),
   then one maintenance pass as of the simulated now (rollups from raw rows, retention).

Then: the file size (page_count * page_size, and again after VACUUM) over monitors x days, and
the time of HistoryQuery.uptime(monitor, [30 d]) (uptime + p50/p95/p99). The baseline is a
plain executemany of the same phase-3 rows into a minimal rowid table of a fresh file, same
pragmas and batch size. Progress goes to stderr; stdout gets one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import math
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiosqlite

from dragonopsd.config import HistoryConfig
from dragonopsd.store.batch import MAX_BATCH
from dragonopsd.store.db import Database
from dragonopsd.store.histogram import Bucket
from dragonopsd.store.history import Heartbeat, HistoryWriter
from dragonopsd.store.history_query import HistoryQuery
from dragonopsd.store.rollups import (
    DAILY,
    FIVE_MINUTES,
    GRACE_S,
    HOURLY,
    block_id,
    encode_block,
    roll_up,
    transact,
)

DAY, HOUR = 86_400, 3600
END = 1_767_225_600 + 7 * HOUR + 25 * 60  # the simulated "now": 2026-01-01 07:25 UTC
PROFILES = 50
DAY_TEMPLATES = 16
HOUR_TEMPLATES = 48
TARGETS = {
    "target_heartbeats_per_s": 50_000,
    "target_bytes_per_monitor_day": 1500,
    "stretch_bytes_per_monitor_day": 1000,
    "target_uptime_30d_p95_ms": 5.0,
}


def note(*parts: Any) -> None:
    print(*parts, file=sys.stderr, flush=True)


class Profile:
    """How one kind of monitor behaves: latency level and spread, spikes, incidents."""

    def __init__(self, rnd: random.Random) -> None:
        self.rnd = rnd
        self.base = min(max(rnd.lognormvariate(math.log(60), 0.9), 2.0), 3000.0)
        self.sigma = rnd.uniform(0.08, 0.4)

    def latency(self) -> float:
        value = self.base * self.rnd.lognormvariate(0, self.sigma)
        return value * self.rnd.uniform(2, 10) if self.rnd.random() < 0.01 else value

    def statuses(self, n: int) -> list[int]:
        """n checks: mostly up; now and then an incident (pending retries, then down)."""
        out = [1] * n
        roll = self.rnd.random()
        if roll < 0.03:
            start = self.rnd.randrange(n)
            for i in range(start, min(n, start + self.rnd.randint(1, 20))):
                out[i] = 2 if i - start < 2 else 0
        elif roll < 0.035:
            out = [3] * n
        return out

    def bucket(self, n: int) -> Bucket:
        bucket = Bucket()
        for status in self.statuses(n):
            bucket.add(status, self.latency() if status != 0 else None)
        return bucket


async def insert_rows(db: Database, table: str, rows: list[tuple[int, bytes]]) -> None:
    sql = f"INSERT OR REPLACE INTO {table} (id, data) VALUES (?, ?)"
    for lo in range(0, len(rows), MAX_BATCH):
        await transact(db, functools.partial(_executemany, sql=sql, rows=rows[lo : lo + MAX_BATCH]))


async def _executemany(conn: aiosqlite.Connection, sql: str, rows: list[tuple[int, bytes]]) -> None:
    await conn.executemany(sql, rows)


async def build_old_days(db: Database, monitors: int, profiles: list[Profile], days: range) -> None:
    """Phase 1: hourly blocks (a day each) and daily blocks (16 days each)."""
    templates = []  # per profile: [(hourly block bytes, daily bucket)]
    for profile in profiles:
        pool = []
        for _ in range(DAY_TEMPLATES):
            hours = {h: profile.bucket(60) for h in range(24)}
            whole = Bucket()
            for bucket in hours.values():
                whole.merge(bucket)
            pool.append((encode_block(hours), whole))
        templates.append(pool)
    rnd = random.Random(2)
    hourly: list[tuple[int, bytes]] = []
    daily: list[tuple[int, bytes]] = []
    for m in range(1, monitors + 1):
        pool = templates[m % len(templates)]
        blocks: dict[int, dict[int, Bucket]] = {}
        for day in days:
            data, bucket = rnd.choice(pool)
            hourly.append((block_id(m, day), data))
            blocks.setdefault(day * DAY // DAILY.block, {})[day % 16] = bucket
        daily.extend((block_id(m, b), encode_block(slots)) for b, slots in blocks.items())
    await insert_rows(db, HOURLY.table, hourly)
    await insert_rows(db, DAILY.table, daily)


async def build_recent_days(
    db: Database, monitors: int, profiles: list[Profile], hours: range
) -> None:
    """Phase 2: 5-minute blocks (an hour each)."""
    templates = [
        [encode_block({s: p.bucket(5) for s in range(12)}) for _ in range(HOUR_TEMPLATES)]
        for p in profiles
    ]
    rnd = random.Random(3)
    rows = [
        (block_id(m, hour), rnd.choice(templates[m % len(templates)]))
        for m in range(1, monitors + 1)
        for hour in hours
    ]
    await insert_rows(db, FIVE_MINUTES.table, rows)


async def set_state(db: Database, rolled_5m: int, rolled_1h: int, rolled_1d: int) -> None:
    sql = "UPDATE history_state SET rolled_5m = ?, rolled_1h = ?, rolled_1d = ?"
    await transact(db, lambda conn: conn.execute(sql, (rolled_5m, rolled_1h, rolled_1d)))


def raw_heartbeats(monitors: int, profiles: list[Profile], start: int, end: int) -> list[Heartbeat]:
    """Phase 3 input: one heartbeat a minute per monitor, in time order."""
    out = []
    for minute in range(start // 60, end // 60):
        for m in range(1, monitors + 1):
            p = profiles[m % len(profiles)]
            status = 1 if p.rnd.random() < 0.995 else p.rnd.choice((0, 2))
            latency = p.latency() if status == 1 else None
            out.append(
                Heartbeat(m, minute * 60 + m * 0.037, status, latency, None if status else "x")
            )
    return out


async def write_raw(db: Database, beats: list[Heartbeat]) -> float:
    """Submit every heartbeat as fast as the queue allows; heartbeats per second stored."""
    writer = HistoryWriter(db, HistoryConfig())
    runner = asyncio.create_task(writer.run())
    started = time.perf_counter()
    for i, hb in enumerate(beats):
        writer.submit(hb)
        if i % 2000 == 0:
            await asyncio.sleep(0)
            while writer.queue_depth > 150_000:
                await asyncio.sleep(0.005)
    while writer.flushed_total < len(beats):
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - started
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    assert writer.dropped == 0, writer.dropped
    return len(beats) / elapsed


def baseline(beats: list[Heartbeat], directory: Path) -> float:
    """A plain executemany of the same rows into a minimal rowid table, same pragmas/batches."""
    rows = [(hb.monitor, round(hb.at * 1000), hb.status, None, hb.message) for hb in beats]
    conn = sqlite3.connect(directory / "baseline.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE t (monitor INTEGER, at INTEGER, status INTEGER, lat, msg TEXT)")
    started = time.perf_counter()
    for lo in range(0, len(rows), MAX_BATCH):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?)", rows[lo : lo + MAX_BATCH])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return len(rows) / elapsed


def sizes(path: Path) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        tables = dict(conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"))
        raw_rows = conn.execute("SELECT count(*) FROM history_raw").fetchone()[0]
    finally:
        conn.close()
    return {"bytes": page * pages, "free": page * free, "tables": tables, "raw_rows": raw_rows}


def vacuumed_bytes(path: Path) -> int:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("VACUUM")
        return int(conn.execute("PRAGMA page_count").fetchone()[0]) * 4096
    finally:
        conn.close()


async def time_queries(db: Database, monitors: int) -> list[float]:
    query = HistoryQuery(db)
    for m in (1, monitors):  # every window is answerable, with percentiles
        windows = await query.uptime(m, [DAY, 7 * DAY, 30 * DAY, 365 * DAY], now=END)
        assert all(w.checks and w.p95_ms is not None for w in windows), windows
        note(f"monitor {m}:", [(w.window / DAY, w.checks, w.uptime, w.p95_ms) for w in windows])
    rnd = random.Random(4)
    times = []
    for _ in range(300):
        m = rnd.randint(1, monitors)
        started = time.perf_counter()
        await query.uptime(m, [30 * DAY], now=END)
        times.append((time.perf_counter() - started) * 1000)
    return times


async def main(args: argparse.Namespace) -> dict[str, Any]:
    directory = Path(args.dir or tempfile.mkdtemp(prefix="bench-history-"))
    path = directory / "history.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    wall = time.perf_counter()
    rnd = random.Random(1)
    profiles = [Profile(random.Random(rnd.random())) for _ in range(PROFILES)]
    first_day = (END - args.days * DAY) // DAY + 1  # whole days inside the simulated year
    recent_day = END // DAY - 14  # from here 5-minute blocks, older: hourly and daily only
    raw_start = (END - args.raw_hours * HOUR) // HOUR * HOUR
    simulated_days = (END - first_day * DAY) / DAY

    db = Database(path, synchronous="full")
    await db.open()
    try:
        seqs = [(m,) for m in range(1, args.monitors + 1)]
        sql = "INSERT INTO history_monitors (monitor) VALUES (?)"
        await transact(db, lambda conn: conn.executemany(sql, seqs))
        t = time.perf_counter()
        await build_old_days(db, args.monitors, profiles, range(first_day, recent_day))
        await build_recent_days(
            db, args.monitors, profiles, range(recent_day * 24, raw_start // HOUR)
        )
        await set_state(db, raw_start, recent_day * DAY, recent_day * DAY)
        note(f"phases 1-2 written in {time.perf_counter() - t:.1f}s")
        t = time.perf_counter()
        await roll_up(db, raw_start + GRACE_S)
        note(f"cascade 5m -> 1h -> 1d over 14 days: {time.perf_counter() - t:.1f}s")

        beats = raw_heartbeats(args.monitors, profiles, raw_start, END)
        note(f"writing {len(beats):,} heartbeats through HistoryWriter")
        rate = await write_raw(db, beats)
        note(f"{rate:,.0f} heartbeats/s")
        t = time.perf_counter()
        await HistoryWriter(db, HistoryConfig()).maintain_once(now=END)
        note(f"maintenance as of now (raw rollup + retention): {time.perf_counter() - t:.1f}s")
        times = await time_queries(db, args.monitors)
    finally:
        await db.close()
    base = baseline(beats, directory)
    live = sizes(path)
    packed = vacuumed_bytes(path)
    per = args.monitors * simulated_days
    result = {
        "bench": "history",
        "monitors": args.monitors,
        "simulated_days": round(simulated_days, 2),
        "heartbeats_written": len(beats),
        "heartbeats_per_s": round(rate),
        "baseline_inserts_per_s": round(base),
        "ratio_to_baseline": round(rate / base, 3),
        "bytes_per_monitor_day": round(live["bytes"] / per),
        "bytes_per_monitor_day_vacuumed": round(packed / per),
        "bytes_per_monitor_day_by_table": {
            name: round(size / per)
            for name, size in sorted(live["tables"].items())
            if name.startswith("history_")
        },
        "free_bytes": live["free"],
        "raw_bytes_per_heartbeat": round(live["tables"]["history_raw"] / live["raw_rows"], 1),
        "uptime_30d_p95_ms": round(statistics.median(times), 3),
        "uptime_30d_p95_ms_p95": round(statistics.quantiles(times, n=20)[-1], 3),
        **TARGETS,
        "seconds": round(time.perf_counter() - wall, 1),
    }
    if not args.dir:
        for f in directory.iterdir():
            f.unlink()
        directory.rmdir()
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--monitors", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--raw-hours", type=int, default=50, help="hours fed as raw heartbeats")
    parser.add_argument("--dir", default="", help="keep the database files here")
    print(json.dumps(asyncio.run(main(parser.parse_args()))), flush=True)
