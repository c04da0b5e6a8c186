"""The batched writer under heartbeat and sample history (store/batch.py), on a real SQLite file
and on a fresh PostgreSQL database, and the block codec both rollup levels share
(store/blocks.py)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest
from pg import BACKENDS, fresh_database

from dragonopsd.config import HistoryConfig
from dragonopsd.store.batch import BatchWriter
from dragonopsd.store.blocks import decode_block, encode_block
from dragonopsd.store.db import Database
from dragonopsd.store.histogram import Bucket
from dragonopsd.store.postgres import PostgresDatabase
from dragonopsd.store.sample_rollups import Agg
from dragonopsd.store.sql import Connection
from dragonopsd.store.sql import Database as Store

log = logging.getLogger("test.batch")
# A flush into the scratch table before it exists: a real failed flush, as each backend says it.
NO_TABLE = (sqlite3.OperationalError, asyncpg.UndefinedTableError)


@pytest.fixture(params=BACKENDS)
async def db(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """A migrated database: a file in tmp_path, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        database: Store = Database(tmp_path / "batch.db")
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


class Rows:
    """Writes (n, text) rows into a table of their own; notes what it was told is committed."""

    def __init__(self) -> None:
        self.committed: list[list[tuple[int, str]]] = []

    async def write(self, conn: Connection, batch: list[tuple[int, str]]) -> Callable[[], None]:
        await conn.executemany(
            "INSERT INTO scratch (n, text) VALUES (?, ?)"
            " ON CONFLICT (n) DO UPDATE SET text = excluded.text",
            batch,
        )
        return lambda: self.committed.append(batch)


def writer(
    db: Store, rows: Rows, *, max_queue: int = 1000, interval: float = 10.0
) -> BatchWriter[tuple[int, str]]:
    schedule = HistoryConfig(flush_interval=interval, flush_rows=100_000)
    return BatchWriter(
        db, rows.write, schedule, max_queue=max_queue, log=log, what=("test", "rows")
    )


async def stored(db: Store) -> list[tuple[int, str]]:
    async with db.read() as conn:
        got = await conn.execute_fetchall("SELECT n, text FROM scratch ORDER BY n")
    return [(int(n), str(text)) for n, text in got]


async def create_scratch(db: Store) -> None:
    async with db.write() as conn:
        await conn.execute("CREATE TABLE scratch (n INTEGER PRIMARY KEY, text TEXT NOT NULL)")


async def test_a_failed_flush_puts_its_rows_back_in_order_and_promises_nothing(
    db: Store,
) -> None:
    rows = Rows()
    w = writer(db, rows)
    for n in range(5):
        w.put((n, f"r{n}"))
    with pytest.raises(NO_TABLE):  # the table is not there yet: a real failed flush
        await w.flush()
    assert (w.queue_depth, w.flushed_total, w.submitted_total, rows.committed) == (5, 0, 5, [])
    w.put((5, "r5"))
    await create_scratch(db)
    assert await w.flush() == 6
    assert await stored(db) == [(n, f"r{n}") for n in range(6)]
    assert rows.committed == [[(n, f"r{n}") for n in range(6)]]
    assert (w.queue_depth, w.flushed_total, w.dropped) == (0, 6, 0)
    assert w.last_flush_seconds > 0


async def test_requeue_into_a_full_queue_drops_the_oldest_and_counts(db: Store) -> None:
    rows = Rows()
    w = writer(db, rows, max_queue=4)
    for n in range(4):
        w.put((n, "old"))
    flush = asyncio.create_task(w.flush())  # takes all four, then fails (no table)
    await asyncio.sleep(0)
    for n in range(4, 7):
        w.put((n, "new"))
    with pytest.raises(NO_TABLE):
        await flush
    assert (w.queue_depth, w.dropped) == (4, 3)
    await create_scratch(db)
    await w.flush()
    assert [n for n, _ in await stored(db)] == [3, 4, 5, 6]


async def test_sync_waits_for_the_commit_of_everything_submitted(db: Store) -> None:
    await create_scratch(db)
    rows = Rows()
    w = writer(db, rows, interval=10.0)  # left to itself, the writer would wait 10 s
    runner = asyncio.create_task(w.run())
    try:
        for n in range(50):
            w.put((n, "x"))
        assert await w.sync(8.0)
        assert len(await stored(db)) == 50 and w.flushed_total == 50
        assert await w.sync(8.0)  # nothing new: at once
    finally:
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner


async def test_sync_is_false_when_rows_were_dropped_while_it_waited(db: Store) -> None:
    w = writer(db, Rows(), max_queue=2, interval=0.05)
    runner = asyncio.create_task(w.run())
    try:
        for n in range(2):
            w.put((n, "x"))
        waiting = asyncio.create_task(w.sync(8.0))
        await asyncio.sleep(0)
        for n in range(2, 5):  # the flushes fail (no table yet): these push the oldest out
            w.put((n, "x"))
        await create_scratch(db)
        assert not await waiting
        assert w.dropped == 3 and [n for n, _ in await stored(db)] == [3, 4]
    finally:
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner


async def test_a_failing_store_keeps_the_rows_and_stop_drains_them(
    db: Store, caplog: pytest.LogCaptureFixture
) -> None:
    rows = Rows()
    w = writer(db, rows, interval=0.05)
    runner = asyncio.create_task(w.run())
    for n in range(3):
        w.put((n, "x"))
    for _ in range(200):  # the writer's flushes fail (no table) and are retried
        await asyncio.sleep(0.01)
        if "test flush failed; the rows stay queued" in caplog.text:
            break
    assert "test flush failed; the rows stay queued" in caplog.text
    assert w.queue_depth == 3
    await create_scratch(db)
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    assert w.queue_depth == 0 and [n for n, _ in await stored(db)] == [0, 1, 2]


def test_one_block_codec_serves_heartbeat_and_sample_buckets() -> None:
    bucket = Bucket()
    bucket.add(1, 0.012)
    bucket.add(0, None)
    agg = Agg.of_row([3, 30, 12, 60, 25, 9, 3, 120, 40, 6, 2, 600, 300])
    back = decode_block(encode_block({0: bucket, 11: bucket}), Bucket)
    assert sorted(back) == [0, 11] and (back[11].up, back[11].down) == (1, 1)
    aggs = decode_block(encode_block({5: agg}), Agg)
    assert list(aggs) == [5] and aggs[5].n == 3 and aggs[5].maxes == agg.maxes
    with pytest.raises(ValueError, match="after a block of Agg"):
        decode_block(encode_block({5: agg}) + b"\x00", Agg)
