"""The SQLite database: one writer connection behind a lock, a small pool of WAL readers.

Every connection runs in its own aiosqlite thread, so the event loop never waits on disk.
Writers serialise on one connection (SQLite allows one writer anyway, and queueing here is
cheaper than SQLITE_BUSY retries); readers see the last committed snapshot and never block it.

A write carries the task's rider (sql.riding), committed with it or not at all. A write or a
read inside a write of the same task joins it (unit.py).

A write the file cannot take for a reason that passes (another process holds the lock past
the busy timeout, the disk is full) is a 503 ``StoreUnavailable`` naming the cause, and the
database reports it in ``state`` (/readyz) until a write succeeds again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import aiosqlite

from . import migrations
from .sql import (
    Dialect,
    Rider,
    StoreUnavailable,
    current_rider,
    is_constraint,
    note_created,
    riding,
)
from .unit import holding, joined, savepoint

# Re-exported: callers that predate sql.py import these from here.
__all__ = ["Database", "Rider", "StoreUnavailable", "is_constraint", "note_created", "riding"]

log = logging.getLogger("dragonopsd.store")

# SQLite's primary result codes for a write that may work later.
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_FULL = 5, 6, 13


def _trouble(exc: BaseException) -> str | None:
    """ "locked" or "full" when exc is SQLite refusing a write for a reason that passes."""
    if not isinstance(exc, sqlite3.OperationalError):
        return None
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return "locked"
    return "full" if code == _SQLITE_FULL else None


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
        # "locked" or "full" from the last write that failed so, until one succeeds again.
        self.trouble: str | None = None

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        self._all.append(conn)
        await conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        await conn.execute("PRAGMA foreign_keys = ON")
        await conn.execute(f"PRAGMA synchronous = {self._synchronous.upper()}")
        return conn

    async def open(self, *, migrate: bool = True) -> None:
        """Open the file (creating it 0600 in a 0700 directory), switch to WAL, apply
        migrations, open readers."""
        await asyncio.to_thread(_create_private, self.path)
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
    def dialect(self) -> Dialect:
        """The SQL dialect the stores speak to this database."""
        return "sqlite"

    @property
    def where(self) -> str:
        """The file, for logs and messages."""
        return str(self.path)

    @property
    def is_open(self) -> bool:
        """True between a successful open() and close()."""
        return self._writer is not None

    @property
    def state(self) -> str:
        """What /readyz reports: ok, closed, locked or full."""
        if self._writer is None:
            return "closed"
        return self.trouble or "ok"

    def _troubled(self, trouble: str) -> None:
        if self.trouble != trouble:
            log.warning(
                "%s: %s; writes answer 503 until one succeeds",
                self.path,
                "database is locked by another process" if trouble == "locked" else "disk full",
            )
        self.trouble = trouble

    def _wrote(self, changed: bool) -> None:
        # A transaction that changed nothing proves the lock, not that the disk has room.
        if self.trouble == "locked" or (self.trouble == "full" and changed):
            log.info("%s: writes succeed again (was %s)", self.path, self.trouble)
            self.trouble = None

    @asynccontextmanager
    async def write(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction: COMMIT on success (acknowledge only after), else ROLLBACK.
        Inside another write of this task: a savepoint of it (unit.py)."""
        if self._writer is None:
            raise RuntimeError("database is not open")
        outer = joined(self)
        if outer is not None:
            async with savepoint(outer) as conn:
                yield conn
            return
        rider = current_rider()
        async with self._write_lock:
            conn = self._writer
            boarded = False
            before = conn.total_changes
            try:
                # Inside the try: a cancellation while BEGIN is queued must still roll back,
                # or the shared writer would stay stuck in a transaction. The rollback runs
                # after the BEGIN on the connection's own thread, so it is always safe.
                await conn.execute("BEGIN IMMEDIATE")
                with holding(self, conn) as unit:
                    yield conn
                if rider is not None:
                    boarded = await rider.board(conn)
                await conn.commit()
            except BaseException as exc:
                # Unconditional: sqlite3's rollback is a no-op outside a transaction.
                await asyncio.shield(conn.rollback())
                trouble = _trouble(exc)
                if trouble is None:
                    raise
                self._troubled(trouble)
                raise StoreUnavailable(trouble, self._busy_timeout_ms) from exc
            self._wrote(conn.total_changes != before)
            if boarded and rider is not None:
                rider.landed()
        unit.committed()

    @asynccontextmanager
    async def read(self, *, snapshot: bool = False) -> AsyncIterator[aiosqlite.Connection]:
        """A reader connection; with snapshot=True its statements share one consistent view.
        Inside a write of this task: the write's connection, which sees what it wrote."""
        if self._writer is None:
            raise RuntimeError("database is not open")
        if (outer := joined(self)) is not None:
            yield outer.conn
            return
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
        """Copy the live database to target, a new file (0600) in an existing directory,
        through SQLite's online backup API; FileExistsError / FileNotFoundError otherwise."""
        if self._writer is None:
            raise RuntimeError("database is not open")
        await asyncio.to_thread(_new_private_file, target)
        dest = await aiosqlite.connect(target)
        try:
            async with self._write_lock:
                await self._writer.backup(dest)
        finally:
            await dest.close()


def _new_private_file(path: Path) -> None:
    """Create path, owner-only from the first byte (no chmod window); fails if it exists."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _create_private(path: Path) -> None:
    """The database file, 0600, in a 0700 directory, unless they exist (then they are left
    as the operator made them). SQLite gives -wal and -shm the mode of the database file."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with suppress(FileExistsError):
        _new_private_file(path)
