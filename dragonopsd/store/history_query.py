"""Reads of heartbeat history: series, uptime windows and recent heartbeats of one monitor.

Each read is planned over the coarsest complete source (raw rows, then the 5-minute, hourly
and daily rollups of store/rollups.py), so nothing is counted twice and old ranges stay cheap.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

from ..model.inventory import Wire
from .histogram import Bucket
from .history import SOURCES, Heartbeat
from .rollups import (
    DAILY,
    FIVE_MINUTES,
    HOURLY,
    Level,
    State,
    block_id,
    block_items,
    read_state,
    transact,
)
from .sql import Connection, Database

MAX_POINTS = 2048  # a 7-day series at 5-minute steps is 2,016 points


class Point(Wire, kw_only=True):
    """Heartbeats of one step of a series; latency figures describe the up checks."""

    at: float
    up: int
    down: int
    pending: int
    maintenance: int
    uptime: float | None  # up / (up + down + pending); None without such checks
    avg_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


class UptimeWindow(Wire, kw_only=True):
    """Availability and latency percentiles over the last `window` seconds."""

    window: float
    uptime: float | None  # maintenance is excluded from the denominator
    checks: int
    up: int
    down: int
    pending: int
    maintenance: int
    avg_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _figures(bucket: Bucket) -> dict[str, float | None]:
    hist = bucket.hist
    return {
        "avg_ms": _ms(bucket.avg_ms),
        "p50_ms": _ms(hist.quantile(0.50)),
        "p95_ms": _ms(hist.quantile(0.95)),
        "p99_ms": _ms(hist.quantile(0.99)),
    }


def plan(a: float, b: float, top: int, state: State) -> list[tuple[Level | None, float, float]]:
    """Cover [a, b) with whole buckets of the coarsest complete level (<= SOURCES[top]).

    The middle comes from the coarse level, the ragged ends recursively from finer ones, down
    to raw rows; a level is used only below its rolled mark, so nothing is counted twice.
    """
    if b <= a:
        return []
    level = SOURCES[top]
    if level is None:
        return [(None, a, b)]
    lo = math.ceil(a / level.width) * level.width
    hi = min(math.floor(b / level.width) * level.width, state.rolled(level))
    if hi <= lo:
        return plan(a, b, top - 1, state)
    return [*plan(a, lo, top - 1, state), (level, lo, hi), *plan(hi, b, top - 1, state)]


class HistoryQuery:
    """Series, uptime windows and recent heartbeats of one monitor, read from WAL readers."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def series(self, monitor: int, since: float, until: float, step: float) -> list[Point]:
        """Points every step seconds over [since, until), from the coarsest source the step allows.

        Points start at multiples of step. Where the step's source has expired (a range older
        than raw_hours at a 1-minute step, say), the next coarser level fills in, so such points
        hold whole coarser buckets and the ones between them are empty.
        """
        if not step > 0 or not until > since:
            raise ValueError("step must be > 0 and since before until")
        start = math.floor(since / step) * step
        count = math.ceil((until - start) / step)
        if count > MAX_POINTS:
            raise ValueError(f"{count} points requested; at most {MAX_POINTS}: use a larger step")
        buckets = [Bucket() for _ in range(count)]
        top = sum(1 for level in SOURCES[1:] if level is not None and level.width <= step)
        async with self._db.read() as conn:
            state = await read_state(conn)
            kept = (state.kept_raw, state.kept_5m, state.kept_1h)
            while top < len(kept) and start < kept[top]:
                top += 1

            def bucket_at(t: float) -> Bucket | None:
                i = int((t - start) // step)
                return buckets[i] if 0 <= i < count else None

            await _collect(conn, monitor, plan(start, until, top, state), bucket_at)
        return [
            Point(
                at=start + i * step,
                up=b.up,
                down=b.down,
                pending=b.pending,
                maintenance=b.maintenance,
                uptime=b.uptime,
                **_figures(b),
            )
            for i, b in enumerate(buckets)
        ]

    async def uptime(
        self, monitor: int, windows: Sequence[float], *, now: float | None = None
    ) -> list[UptimeWindow]:
        """Uptime and p50/p95/p99 over each of the last `windows` seconds, from rollups.

        A window's start is resolved to the finest level still kept there (to the hour for
        30 days back with the default retention); its end is exact (raw rows since the last
        5-minute rollup).
        """
        until = time.time() if now is None else now
        out: list[UptimeWindow] = []
        async with self._db.read() as conn:
            state = await read_state(conn)
            for window in windows:
                total = Bucket()
                pieces = plan(until - window, until, len(SOURCES) - 1, state)
                await _collect(conn, monitor, pieces, _always(total))
                out.append(
                    UptimeWindow(
                        window=window,
                        uptime=total.uptime,
                        checks=total.checks,
                        up=total.up,
                        down=total.down,
                        pending=total.pending,
                        maintenance=total.maintenance,
                        **_figures(total),
                    )
                )
        return out

    async def recent(self, monitor: int, limit: int) -> list[Heartbeat]:
        """The newest raw heartbeats, newest first (the heartbeat bar)."""
        sql = (
            "SELECT at, status, latency, message FROM history_raw WHERE monitor = ? "
            "ORDER BY at DESC LIMIT ?"
        )
        async with self._db.read() as conn:
            rows = await conn.execute_fetchall(sql, (monitor, limit))
        return [
            Heartbeat(monitor, at / 1000, status, None if lat is None else lat / 1000, message)
            for at, status, lat, message in rows
        ]

    async def latest(self) -> dict[int, Heartbeat]:
        """Every monitor's newest raw heartbeat, by seq (the engine's last check at start).

        One statement; CROSS JOIN keeps the monitors outside in SQLite, so it costs two index
        seeks per monitor with history instead of a scan of every raw row (the join condition
        sits in WHERE: PostgreSQL takes no ON after CROSS JOIN).
        """
        sql = (
            "SELECT r.monitor, r.at, r.status, r.latency, r.message FROM history_monitors m "
            "CROSS JOIN history_raw r WHERE r.monitor = m.monitor AND r.at = "
            "(SELECT max(at) FROM history_raw x WHERE x.monitor = m.monitor)"
        )
        async with self._db.read() as conn:
            rows = await conn.execute_fetchall(sql)
        return {
            m: Heartbeat(m, at / 1000, status, None if lat is None else lat / 1000, message)
            for m, at, status, lat, message in rows
        }

    async def delete_monitor(self, monitor: int) -> None:
        """Drop every raw row and rollup of a monitor, in one transaction."""

        async def work(conn: Connection) -> None:
            await conn.execute("DELETE FROM history_raw WHERE monitor = ?", (monitor,))
            for level in (FIVE_MINUTES, HOURLY, DAILY):
                await conn.execute(
                    f"DELETE FROM {level.table} WHERE id >= ? AND id < ?",
                    (block_id(monitor, 0), block_id(monitor + 1, 0)),
                )
            await conn.execute("DELETE FROM history_monitors WHERE monitor = ?", (monitor,))

        await transact(self._db, work)


def _always(bucket: Bucket) -> Callable[[float], Bucket]:
    return lambda _t: bucket


async def _collect(
    conn: Connection,
    monitor: int,
    pieces: list[tuple[Level | None, float, float]],
    bucket_at: Callable[[float], Bucket | None],
) -> None:
    """Add the heartbeats of every planned piece into the bucket bucket_at(start) names."""
    for source, lo, hi in pieces:
        if source is None:
            rows = await conn.execute_fetchall(
                "SELECT at, status, latency FROM history_raw "
                "WHERE monitor = ? AND at >= ? AND at < ?",
                (monitor, math.ceil(lo * 1000), math.ceil(hi * 1000)),
            )
            for at, status, latency in rows:
                target = bucket_at(at / 1000)
                if target is not None:
                    target.add(status, None if latency is None else latency / 1000)
            continue
        rows = await conn.execute_fetchall(
            f"SELECT id, data FROM {source.table} WHERE id BETWEEN ? AND ?",
            (
                block_id(monitor, int(lo) // source.block),
                block_id(monitor, int(hi - 1) // source.block),
            ),
        )
        for row_id, data in rows:
            for _, start, bucket in block_items(source, row_id, data):
                if lo <= start < hi and (target := bucket_at(start)) is not None:
                    target.merge(bucket)
