"""A write inside a write of the same task joins it (store/unit.py), on SQLite and PostgreSQL:
a savepoint undone alone when it fails, reads that see what was written, on_commit callbacks
that wait for the COMMIT, and other tasks that wait for their own transaction."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pg import database

from dragonopsd.store.rollups import transact
from dragonopsd.store.sql import Connection, Database, is_constraint
from dragonopsd.store.unit import on_commit

pytestmark = pytest.mark.backends

PUT = "INSERT INTO meta (key, value) VALUES (?, 'x')"
# Before store/unit.py a nested write waited for its own outer write for ever: fail instead.
GUARD = 60


@pytest.fixture
async def db(storage_url: str, tmp_path: Path) -> AsyncIterator[Database]:
    opened = database(storage_url, tmp_path / "unit.db")
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


async def keys(db: Database) -> list[str]:
    async with db.read() as conn:
        rows = await conn.execute_fetchall(
            "SELECT key FROM meta WHERE key LIKE 'unit:%' ORDER BY key"
        )
    return [str(r[0]) for r in rows]


async def put(conn: Connection, key: str) -> None:
    await conn.execute(PUT, (f"unit:{key}",))


async def test_nested_writes_commit_with_the_outer_one_and_fail_alone(db: Database) -> None:
    done: list[str] = []
    async with asyncio.timeout(GUARD), db.write() as outer:
        await put(outer, "a")
        async with db.write() as inner:
            await put(inner, "b")
            on_commit(lambda: done.append("b"))
        assert await keys(db) == ["unit:a", "unit:b"]  # a read inside sees the write so far
        with pytest.raises(Exception) as refused:
            async with db.write() as inner:
                await put(inner, "c")
                on_commit(lambda: done.append("c"))
                await put(inner, "a")  # the primary key again
        assert is_constraint(refused.value)
        await put(outer, "d")  # the transaction is still usable after the savepoint's rollback
        assert done == []
    assert await keys(db) == ["unit:a", "unit:b", "unit:d"]
    assert done == ["b"]


async def test_an_outer_rollback_takes_the_nested_writes_and_callbacks_along(
    db: Database,
) -> None:
    done: list[str] = []
    with pytest.raises(RuntimeError):
        async with asyncio.timeout(GUARD), db.write() as outer:
            await put(outer, "a")
            async with db.write() as inner:
                await put(inner, "b")
                on_commit(lambda: done.append("b"))
            raise RuntimeError("changed my mind")
    assert await keys(db) == [] and done == []
    on_commit(lambda: done.append("now"))  # no write open: at once
    assert done == ["now"]


async def test_another_task_waits_for_its_own_transaction(db: Database) -> None:
    async def other() -> list[str]:
        async with db.write() as conn:
            await put(conn, "other")
        return await keys(db)

    async with asyncio.timeout(GUARD):
        async with db.write() as outer:
            await put(outer, "mine")
            # Started inside the write, it inherits the context but not the transaction.
            task = asyncio.create_task(other())
            for _ in range(20):
                await asyncio.sleep(0)
            assert not task.done()
        assert await task == ["unit:mine", "unit:other"]


async def test_a_failing_after_commit_step_neither_undoes_the_write_nor_skips_the_rest(
    db: Database,
) -> None:
    done: list[str] = []

    def broken() -> None:
        raise RuntimeError("a subscriber's bug")

    async with asyncio.timeout(GUARD), db.write() as conn:  # no error reaches the writer
        await put(conn, "kept")
        on_commit(broken)
        on_commit(lambda: done.append("after"))
    assert await keys(db) == ["unit:kept"] and done == ["after"]


async def test_a_transact_inside_a_write_joins_it_instead_of_waiting_for_it(
    db: Database,
) -> None:
    """transact() runs its work in a task of its own (so a cancel cannot cut it short): from
    inside an open write that task waited for the write its own caller held, for ever."""

    async def work(conn: Connection) -> str:
        await put(conn, "inner")
        return "done"

    async with asyncio.timeout(GUARD), db.write() as conn:
        await put(conn, "outer")
        assert await transact(db, work) == "done"
    assert await keys(db) == ["unit:inner", "unit:outer"]
