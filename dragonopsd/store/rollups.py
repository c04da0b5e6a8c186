"""Heartbeat rollups: 5-minute, hourly and daily buckets, packed into blocks, plus retention.

Why blocks: a row per bucket costs ~20 bytes of key and record overhead before any data, which
alone would eat the storage budget for a year of hourly buckets. So one row holds every bucket
of a block (an hour of 5-minute buckets, a day of hourly ones, 16 days of daily ones), keyed by
``id = monitor << 24 | block number`` in a plain rowid table (rows up to ~4 KB stay on their
page; a WITHOUT ROWID row spills to an overflow page past ~1 KB).

Each level is derived from the one below once its buckets have closed: raw rows -> 5-minute
buckets (after GRACE_S, so late heartbeats still land), 5-minute -> hourly, hourly -> daily.
``history_state`` records how far each level is complete; readers take a level's buckets only
below that mark and the finer levels (finally raw rows) above it, so a query never counts a
heartbeat twice or misses one. Every step is idempotent: a crash mid-way redoes it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ..config import HistoryConfig
from . import blocks
from .blocks import UPSERT_BLOCK, encode_block
from .histogram import Bucket
from .sql import Connection, Database
from .unit import joined

log = logging.getLogger("dragonopsd.history")

GRACE_S = 120  # raw rows are rolled up this long after their 5-minute bucket closes
KEY_BITS = 24  # block numbers below 2**24 (hours since 1970 until the year 3884)
CHUNK = 100  # monitors per rollup or retention transaction, so API writes are never starved
RAW_SPAN_S = 3600  # raw time rolled up per round (bounds one transaction when catching up)
T = TypeVar("T")


@dataclass(frozen=True)
class Level:
    """One rollup granularity: bucket width and block width in seconds, and its table."""

    name: str
    table: str
    width: int
    block: int
    span: int  # source time rolled per round


FIVE_MINUTES = Level("5m", "history_5m", 300, 3600, RAW_SPAN_S)
HOURLY = Level("1h", "history_1h", 3600, 86_400, 6 * 3600)
DAILY = Level("1d", "history_1d", 86_400, 16 * 86_400, 4 * 86_400)


def decode_block(data: bytes) -> dict[int, Bucket]:
    """Parse a block of heartbeat buckets (the codec: store/blocks.py)."""
    return blocks.decode_block(data, Bucket)


def block_id(monitor: int, block: int) -> int:
    """The row id of a monitor's block number."""
    return monitor << KEY_BITS | block


async def finish_on_cancel(work: Coroutine[Any, Any, T]) -> T:
    """Await work in its own task; if the caller is cancelled, let it finish, then re-raise.

    A write cancelled between BEGIN and COMMIT could leave the one shared writer connection
    inside its transaction (or lose a batch already popped from the queue).
    """
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])  # a second cancel ends this wait; the task still finishes
        if not task.cancelled():
            task.exception()  # retrieved: the caller's cancellation is what propagates
        raise


async def transact(db: Database, work: Callable[[Connection], Awaitable[T]]) -> T:
    """Run work in one write transaction that cancelling the caller cannot cut short. Inside
    this task's open write it joins that one, in this task: a task of its own would wait for
    the write its caller holds (unit.py)."""
    if joined(db) is not None:
        async with db.write() as conn:
            return await work(conn)

    async def run() -> T:
        async with db.write() as conn:
            return await work(conn)

    return await finish_on_cancel(run())


def block_items(level: Level, row_id: int, data: bytes) -> Iterator[tuple[int, int, Bucket]]:
    """(monitor, bucket start in seconds, bucket) for every bucket stored in a block row."""
    monitor, block = row_id >> KEY_BITS, row_id & ((1 << KEY_BITS) - 1)
    base = block * level.block
    for slot, bucket in decode_block(data).items():
        yield monitor, base + slot * level.width, bucket


@dataclass
class State:
    """How far each level is complete (rolled) and from when it still has data (kept), seconds."""

    rolled_5m: int
    rolled_1h: int
    rolled_1d: int
    kept_raw: int
    kept_5m: int
    kept_1h: int

    def rolled(self, level: Level) -> int:
        """Every bucket of level before this time is stored."""
        return int(getattr(self, f"rolled_{level.name}"))


async def read_state(conn: Connection) -> State:
    """The single history_state row."""
    sql = "SELECT rolled_5m, rolled_1h, rolled_1d, kept_raw, kept_5m, kept_1h FROM history_state"
    rows = list(await conn.execute_fetchall(sql))
    return State(*rows[0])


async def write_slots(
    conn: Connection, level: Level, buckets: dict[tuple[int, int], Bucket]
) -> None:
    """Store (monitor, start) -> bucket into level's blocks, replacing slots already there."""
    blocks: dict[int, dict[int, Bucket]] = {}
    for (monitor, start), bucket in buckets.items():
        row_id = block_id(monitor, start // level.block)
        blocks.setdefault(row_id, {})[(start % level.block) // level.width] = bucket
    if not blocks:
        return
    ids = sorted(blocks)
    for lo in range(0, len(ids), 500):
        part = ids[lo : lo + 500]
        marks = ",".join("?" * len(part))
        sql = f"SELECT id, data FROM {level.table} WHERE id IN ({marks})"
        for row_id, data in await conn.execute_fetchall(sql, part):
            stored = decode_block(data)
            stored.update(blocks[row_id])
            blocks[row_id] = stored
    await conn.executemany(
        f"INSERT INTO {level.table} (id, data) VALUES (?, ?) {UPSERT_BLOCK}",
        [(row_id, encode_block(slots)) for row_id, slots in blocks.items()],
    )


async def monitor_chunks(db: Database) -> list[list[int]]:
    """Every monitor with history, in ascending runs of at most CHUNK."""
    async with db.read() as conn:
        rows = await conn.execute_fetchall("SELECT monitor FROM history_monitors ORDER BY monitor")
    seqs = [int(r[0]) for r in rows]
    return [seqs[i : i + CHUNK] for i in range(0, len(seqs), CHUNK)] or [[]]


def _ranges(chunks: list[list[int]]) -> list[tuple[int, int]]:
    """Inclusive seq ranges, one per chunk, that together cover every possible seq."""
    edges = [chunk[0] for chunk in chunks[1:]]
    return list(zip([-(2**62), *edges], [e - 1 for e in edges] + [2**62], strict=True))


async def _read_source(
    conn: Connection,
    source: Level | None,
    target: Level,
    span: tuple[int, int],
    seqs: tuple[int, int],
) -> dict[tuple[int, int], Bucket]:
    """(monitor, start) -> bucket of target's width over span (seconds) for monitors in seqs,
    from raw rows (source None) or from source's blocks."""
    lo, hi = span
    width = target.width
    out: dict[tuple[int, int], Bucket] = {}

    def into(monitor: int, start: int) -> Bucket:
        key = (monitor, start // width * width)
        bucket = out.get(key)
        if bucket is None:
            bucket = out[key] = Bucket()
        return bucket

    # CROSS JOIN keeps monitors as the outer loop: one index seek per monitor into the span,
    # where the planner would otherwise walk every raw row of the chunk's monitors. (The join
    # conditions sit in WHERE, the same for SQLite: PostgreSQL takes no ON after CROSS JOIN.)
    if source is None:
        sql = (
            "SELECT r.monitor, r.at, r.status, r.latency FROM history_monitors m "
            "CROSS JOIN history_raw r WHERE r.monitor = m.monitor AND r.at >= ? AND r.at < ? "
            "AND m.monitor BETWEEN ? AND ?"
        )
        for monitor, at, status, latency in await conn.execute_fetchall(
            sql, (lo * 1000, hi * 1000, *seqs)
        ):
            into(monitor, at // 1000).add(status, None if latency is None else latency / 1000)
        return out
    sql = (
        f"SELECT t.id, t.data FROM history_monitors m CROSS JOIN {source.table} t "
        f"WHERE t.id BETWEEN (m.monitor << {KEY_BITS}) + ? AND (m.monitor << {KEY_BITS}) + ? "
        "AND m.monitor BETWEEN ? AND ?"
    )
    args = (lo // source.block, (hi - 1) // source.block, *seqs)
    for row_id, data in await conn.execute_fetchall(sql, args):
        for monitor, start, bucket in block_items(source, row_id, data):
            if lo <= start < hi:
                into(monitor, start).merge(bucket)
    return out


async def _first_raw_at(db: Database, since: int) -> int | None:
    """The earliest raw heartbeat at or after since (seconds), found with one seek per monitor."""
    sql = (
        "SELECT min((SELECT min(at) FROM history_raw r WHERE r.monitor = m.monitor "
        "AND r.at >= ?)) FROM history_monitors m"
    )
    async with db.read() as conn:
        rows = list(await conn.execute_fetchall(sql, (since * 1000,)))
    return None if not rows or rows[0][0] is None else int(rows[0][0]) // 1000


async def _roll_round(db: Database, source: Level | None, target: Level, lo: int, hi: int) -> None:
    """Roll [lo, hi) of source (None: raw rows) into target, a short transaction per chunk."""
    ranges = _ranges(await monitor_chunks(db))
    for n, seqs in enumerate(ranges):

        async def work(conn: Connection, seqs: tuple[int, int] = seqs, n: int = n) -> None:
            buckets = await _read_source(conn, source, target, (lo, hi), seqs)
            await write_slots(conn, target, buckets)
            if n == len(ranges) - 1:
                await conn.execute(f"UPDATE history_state SET rolled_{target.name} = ?", (hi,))

        await transact(db, work)


async def roll_up(db: Database, now: float, *, max_rounds: int = 10_000) -> int:
    """Bring every level up to date as of now (injectable for tests); returns the rounds run."""
    rounds = 0
    while rounds < max_rounds:
        async with db.read() as conn:
            state = await read_state(conn)
        if state.rolled_5m == 0:  # first run: every level starts at the oldest heartbeat's day
            first = await _first_raw_at(db, 0)
            if first is None:
                return rounds
            # Not past the present (a first heartbeat from a clock that was ahead).
            day = min(first, int(now) - GRACE_S) // 86_400 * 86_400
            await _set_state(db, rolled_5m=day, rolled_1h=day, rolled_1d=day)
            continue
        if state.rolled_5m > int(now - GRACE_S) // 300 * 300:
            await _pull_back(db, state, now)
            continue
        step = _next_step(state)
        if step is not None:
            await _roll_round(db, *step)
            rounds += 1
            continue
        lo, limit = state.rolled_5m, int(now - GRACE_S) // 300 * 300
        if lo >= limit:
            return rounds
        nxt = await _first_raw_at(db, lo)
        if nxt is None or nxt // 300 * 300 > lo:  # no heartbeats yet: skip the empty time
            await _set_state(db, rolled_5m=limit if nxt is None else min(limit, nxt // 300 * 300))
        else:
            await _roll_round(db, None, FIVE_MINUTES, lo, min(limit, lo + RAW_SPAN_S))
        rounds += 1
    return rounds


async def _pull_back(db: Database, state: State, now: float) -> None:
    """The clock went back: the marks, set while it was ahead, would keep every heartbeat
    stamped from now on below them, never rolled up, until retention deletes it.

    Each mark goes back to an hour before the present: passes run every minute, well within
    GRACE_S, so every heartbeat stamped since the step (even across a quick restart) is above
    it. Rolling is idempotent: the time rolled again is rebuilt from the raw rows and finer
    buckets still there, and slots whose sources retention already deleted are kept as they are.
    """
    mark = int(now - GRACE_S - RAW_SPAN_S) // 300 * 300
    hour = min(state.rolled_1h, mark // 3600 * 3600)
    day = min(state.rolled_1d, hour // 86_400 * 86_400)
    log.warning(
        "the clock is behind the history rollups (rolled to %d, now %d): rolling again from %d",
        state.rolled_5m,
        int(now),
        mark,
    )
    await _set_state(db, rolled_5m=mark, rolled_1h=hour, rolled_1d=day)


def _next_step(state: State) -> tuple[Level, Level, int, int] | None:
    """The next cascade round (daily from hourly, hourly from 5-minute) that has closed."""
    for source, target in ((HOURLY, DAILY), (FIVE_MINUTES, HOURLY)):
        lo = state.rolled(target)
        limit = state.rolled(source) // target.width * target.width
        if lo < limit:
            return source, target, lo, min(limit, lo + target.span)
    return None


async def _set_state(db: Database, **values: int) -> None:
    """Update history_state columns (names come from this module, never from input)."""
    sets = ", ".join(f"{name} = ?" for name in values)

    async def work(conn: Connection) -> None:
        await conn.execute(f"UPDATE history_state SET {sets}", tuple(values.values()))

    await transact(db, work)


async def apply_retention(db: Database, cfg: HistoryConfig, now: float) -> int:
    """Delete raw rows and rollups past their retention (never what is not yet rolled up).

    Deletes go per monitor (an index seek each) in short transactions of CHUNK monitors, and only
    once at least a block's worth has expired, so each run removes whole pages at a time.
    """
    async with db.read() as conn:
        state = await read_state(conn)
    t = int(now)
    cuts = {
        "raw": min(t - cfg.raw_hours * 3600, state.rolled_5m) // 300 * 300,
        "5m": min(t - cfg.five_minute_days * 86_400, state.rolled_1h) // 3600 * 3600,
        "1h": min(t - cfg.hourly_days * 86_400, state.rolled_1d) // 86_400 * 86_400,
    }
    kept = {"raw": state.kept_raw, "5m": state.kept_5m, "1h": state.kept_1h}
    due = {name: cut for name, cut in cuts.items() if cut >= kept[name] + _MIN_PRUNE[name]}
    if not due:
        return 0
    chunks = await monitor_chunks(db)

    async def work(conn: Connection, chunk: list[int], last: bool) -> int:
        deleted = await delete_before(conn, chunk, due, _RAW_DELETE, (FIVE_MINUTES, HOURLY))
        if last:
            await set_kept(conn, "history_state", due)
        return deleted

    total = 0
    for n, chunk in enumerate(chunks):
        last = n == len(chunks) - 1
        total += await transact(db, functools.partial(work, chunk=chunk, last=last))
    return total


async def delete_before(
    conn: Connection,
    keys: Sequence[int],
    cuts: Mapping[str, int],
    raw_delete: str,
    levels: Sequence[Level],
) -> int:
    """Delete the keys' rows older than each level's cut (seconds; "raw" or a level's name).

    Raw rows go through raw_delete (parameters: key, cut in ms), rollup blocks by row id range;
    either way one index seek per key. Returns how many rows went. Heartbeat and sample
    retention both prune this way.
    """
    by_name = {level.name: level for level in levels}
    deleted = 0
    for name, cut in cuts.items():
        if name == "raw":
            sql, params = raw_delete, [(k, cut * 1000) for k in keys]
        else:
            level = by_name[name]
            sql = f"DELETE FROM {level.table} WHERE id >= ? AND id < ?"
            params = [(block_id(k, 0), block_id(k, cut // level.block)) for k in keys]
        cur = await conn.executemany(sql, params)
        deleted += max(cur.rowcount, 0)
    return deleted


async def set_kept(conn: Connection, state_table: str, cuts: Mapping[str, int]) -> None:
    """Record each level's cut as where its rows now start (state_table's kept_* columns)."""
    sets = ", ".join(f"kept_{name} = ?" for name in cuts)
    await conn.execute(f"UPDATE {state_table} SET {sets}", tuple(cuts.values()))


_MIN_PRUNE = {"raw": 300, "5m": 3600, "1h": 86_400}
_RAW_DELETE = "DELETE FROM history_raw WHERE monitor = ? AND at < ?"
