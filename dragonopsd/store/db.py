"""The SQLite database: one writer connection behind a lock, a small pool of WAL readers.

Every connection runs in its own aiosqlite thread, so the event loop never waits on disk.
Writers serialise on one connection (SQLite allows one writer anyway, and queueing here is
cheaper than SQLITE_BUSY retries); readers see the last committed snapshot and never block it.

A write may carry a rider: rows that must commit together with the change or not at all. The
request front sets the request's audit entry as the rider of the request's task (``riding``),
and the first write transaction of that request inserts it before its COMMIT.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Protocol

import aiosqlite

from . import migrations


class Rider(Protocol):
    """Rows that commit with a write of the current task (the request's audit entry)."""

    async def board(self, conn: aiosqlite.Connection) -> bool:
        """Insert its rows into the open transaction; True when it did."""
        ...

    def landed(self) -> None:
        """The transaction it boarded committed."""
        ...

    def created(self, ident: str) -> None:
        """The transaction created the row ident (the entity the rows are about)."""
        ...


# A context variable, not a parameter: the request front knows the entry, the stores know
# the transaction, and nothing between them (handlers, services) has to pass it along.
_RIDER: ContextVar[Rider | None] = ContextVar("dragonopsd_write_rider", default=None)


@contextmanager
def riding(rider: Rider) -> Iterator[None]:
    """Make rider board the write transactions run inside this block (this task only)."""
    token = _RIDER.set(rider)
    try:
        yield
    finally:
        _RIDER.reset(token)


def note_created(ident: str) -> None:
    """Tell the current rider, if any, which row the current write created."""
    rider = _RIDER.get()
    if rider is not None:
        rider.created(ident)


class Database:
    """Owns the connections to one SQLite file."""

    def __init__(
        self,
        path: Path,
        *,
        synchronous: str = "full",
        busy_timeout_ms: int = 5000,
        readers: int = 2,
    ) -> None:
        self.path = path
        self._synchronous = synchronous
        self._busy_timeout_ms = busy_timeout_ms
        self._reader_count = readers
        self._writer: aiosqlite.Connection | None = None
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all: list[aiosqlite.Connection] = []
        self._write_lock = asyncio.Lock()
        self.schema_version = 0

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        self._all.append(conn)
        await conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        await conn.execute("PRAGMA foreign_keys = ON")
        await conn.execute(f"PRAGMA synchronous = {self._synchronous.upper()}")
        return conn

    async def open(self, *, migrate: bool = True) -> None:
        """Open the file (creating its directory), switch to WAL, apply migrations, open readers."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._writer = await self._connect()
            async with self._writer.execute("PRAGMA page_count") as cur:
                row = await cur.fetchone()
            if row is not None and row[0] == 0:
                # Only settable on an empty file: lets retention hand pages back to the OS
                # (PRAGMA incremental_vacuum) instead of the file only ever growing.
                await self._writer.execute("PRAGMA auto_vacuum = INCREMENTAL")
            await self._writer.execute("PRAGMA journal_mode = WAL")
            if migrate:
                self.schema_version = await migrations.migrate(self._writer)
            else:
                self.schema_version = await migrations.current(self._writer)
            for _ in range(self._reader_count):
                conn = await self._connect()
                await conn.execute("PRAGMA query_only = ON")
                self._readers.put_nowait(conn)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Close every connection; WAL is checkpointed by the last one to close."""
        conns, self._all = self._all, []
        self._writer = None
        self._readers = asyncio.Queue()
        for conn in reversed(conns):
            await conn.close()

    @property
    def is_open(self) -> bool:
        """True between a successful open() and close()."""
        return self._writer is not None

    @asynccontextmanager
    async def write(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction: COMMIT on success (acknowledge only after), else ROLLBACK."""
        if self._writer is None:
            raise RuntimeError("database is not open")
        rider = _RIDER.get()
        async with self._write_lock:
            conn = self._writer
            boarded = False
            try:
                # Inside the try: a cancellation while BEGIN is queued must still roll back,
                # or the shared writer would stay stuck in a transaction. The rollback runs
                # after the BEGIN on the connection's own thread, so it is always safe.
                await conn.execute("BEGIN IMMEDIATE")
                yield conn
                if rider is not None:
                    boarded = await rider.board(conn)
            except BaseException:
                # Unconditional: sqlite3's rollback is a no-op outside a transaction.
                await asyncio.shield(conn.rollback())
                raise
            await conn.commit()
            if boarded and rider is not None:
                rider.landed()

    @asynccontextmanager
    async def read(self, *, snapshot: bool = False) -> AsyncIterator[aiosqlite.Connection]:
        """A reader connection; with snapshot=True its statements share one consistent view."""
        if self._writer is None:
            raise RuntimeError("database is not open")
        conn = await self._readers.get()
        try:
            if snapshot:
                await conn.execute("BEGIN")
                try:
                    yield conn
                finally:
                    await conn.rollback()
            else:
                yield conn
        finally:
            self._readers.put_nowait(conn)

    async def set_trace_callback(self, callback: Callable[[str], None] | None) -> None:
        """Trace every SQL statement on every connection (tests count statements with this)."""
        for conn in self._all:
            await conn.set_trace_callback(callback)  # type: ignore[arg-type]  # None clears it

    async def quick_check(self) -> list[str]:
        """``PRAGMA quick_check``: ["ok"] for a sound file, else the problems found."""
        async with self.read() as conn, conn.execute("PRAGMA quick_check") as cur:
            return [str(row[0]) for row in await cur.fetchall()]

    async def backup(self, target: Path) -> None:
        """Copy the live database to target through SQLite's online backup API."""
        if self._writer is None:
            raise RuntimeError("database is not open")
        target.parent.mkdir(parents=True, exist_ok=True)
        dest = await aiosqlite.connect(target)
        try:
            async with self._write_lock:
                await self._writer.backup(dest)
        finally:
            await dest.close()


def is_constraint(exc: BaseException) -> bool:
    """True for a constraint violation (unique, foreign key, check)."""
    return isinstance(exc, sqlite3.IntegrityError)
