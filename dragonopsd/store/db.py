"""The SQLite database: one writer connection behind a lock, a small pool of WAL readers.

Every connection runs in its own aiosqlite thread, so the event loop never waits on disk.
Writers serialise on one connection (SQLite allows one writer anyway, and queueing here is
cheaper than SQLITE_BUSY retries); readers see the last committed snapshot and never block it.

A write may carry a rider: rows that must commit together with the change or not at all. The
request front sets the request's audit entry as the rider of the request's task (``riding``),
and the first write transaction of that request inserts it before its COMMIT.

A write the file cannot take for a reason that passes (another process holds the lock past
the busy timeout, the disk is full) is a 503 ``StoreUnavailable`` naming the cause, and the
database reports it in ``state`` (/readyz) until a write succeeds again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from contextvars import ContextVar
from pathlib import Path
from typing import Protocol

import aiosqlite

from ..problem import Problem
from . import migrations

log = logging.getLogger("dragonopsd.store")

# SQLite's primary result codes for a write that may work later.
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_FULL = 5, 6, 13
_RETRY_AFTER = {"locked": 5, "full": 60}  # seconds: a lock passes sooner than a full disk


class StoreUnavailable(Problem):
    """A write the database cannot take now: locked by another process, or the disk is full."""

    def __init__(self, trouble: str, busy_timeout_ms: int) -> None:
        if trouble == "locked":
            detail = (
                "database is locked by another process (waited "
                f"{busy_timeout_ms / 1000:g} s); nothing was changed, try again"
            )
        else:
            detail = "disk full: the database cannot grow; nothing was changed, try again later"
        super().__init__(
            503,
            detail,
            kind=f"store-{trouble}",
            headers={"Retry-After": str(_RETRY_AFTER[trouble])},
        )
        self.trouble = trouble


def _trouble(exc: BaseException) -> str | None:
    """ "locked" or "full" when exc is SQLite refusing a write for a reason that passes."""
    if not isinstance(exc, sqlite3.OperationalError):
        return None
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return "locked"
    return "full" if code == _SQLITE_FULL else None


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
        """One write transaction: COMMIT on success (acknowledge only after), else ROLLBACK."""
        if self._writer is None:
            raise RuntimeError("database is not open")
        rider = _RIDER.get()
        async with self._write_lock:
            conn = self._writer
            boarded = False
            before = conn.total_changes
            try:
                # Inside the try: a cancellation while BEGIN is queued must still roll back,
                # or the shared writer would stay stuck in a transaction. The rollback runs
                # after the BEGIN on the connection's own thread, so it is always safe.
                await conn.execute("BEGIN IMMEDIATE")
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


def is_constraint(exc: BaseException) -> bool:
    """True for a constraint violation (unique, foreign key, check)."""
    return isinstance(exc, sqlite3.IntegrityError)
