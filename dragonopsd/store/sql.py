"""What the stores ask of a database: a connection API every backend speaks, no driver in sight.

The stores write their SQL once, with ``?`` placeholders, and run it through these protocols.
The SQLite ``Database`` (db.py, aiosqlite) satisfies them as it is; the PostgreSQL one
(postgres.py over asyncpg) adapts to them. SQL that differs between the engines stays behind
the implementation; ``Database.dialect`` names the engine for the few statements that must.

A write may carry a rider: rows that must commit together with the change or not at all. The
request front sets the request's audit entry as the rider of the request's task (``riding``),
and the first write transaction of that request inserts it before its COMMIT.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Generator, Hashable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal, Protocol

import asyncpg

from ..problem import Problem

Dialect = Literal["sqlite", "postgres"]

# Seconds: a lock passes sooner than a full disk.
_RETRY_AFTER = {"locked": 5, "full": 60, "down": 5}


class Cursor(Protocol):
    """The result of one statement: its rows, how many it changed, the row it inserted."""

    @property
    def rowcount(self) -> int: ...
    @property
    def lastrowid(self) -> int | None: ...
    async def fetchone(self) -> Any: ...
    async def fetchall(self) -> Iterable[Any]: ...


class CursorResult(Protocol):
    """What ``execute`` returns: awaited for the cursor, or entered as ``async with``."""

    def __await__(self) -> Generator[Any, None, Cursor]: ...
    async def __aenter__(self) -> Cursor: ...
    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None: ...


class Connection(Protocol):
    """A connection inside a read or a write of a ``Database``; parameters bind to ``?``."""

    def execute(self, sql: str, parameters: Iterable[Any] = ..., /) -> CursorResult: ...
    def executemany(self, sql: str, parameters: Iterable[Iterable[Any]], /) -> CursorResult: ...
    async def execute_fetchall(
        self, sql: str, parameters: Iterable[Any] = ..., /
    ) -> Iterable[Any]: ...


class Database(Protocol):
    """Owns the connections to one database: transactions for writes, snapshots for reads."""

    schema_version: int
    trouble: str | None

    @property
    def dialect(self) -> Dialect: ...
    @property
    def is_open(self) -> bool: ...
    @property
    def state(self) -> str: ...
    @property
    def where(self) -> str:
        """The database's name for logs and messages (a path, or a URL without password)."""
        ...

    async def open(self, *, migrate: bool = True) -> None: ...
    async def close(self) -> None: ...
    def write(self) -> AbstractAsyncContextManager[Connection]: ...
    def read(self, *, snapshot: bool = False) -> AbstractAsyncContextManager[Connection]: ...
    async def quick_check(self) -> list[str]: ...
    async def backup(self, target: Path) -> None: ...


class StoreUnavailable(Problem):
    """A write the database cannot take now: locked by another process, the disk is full, or
    the database server cannot be reached."""

    def __init__(self, trouble: str, busy_timeout_ms: int = 0) -> None:
        if trouble == "locked":
            detail = (
                "database is locked by another process (waited "
                f"{busy_timeout_ms / 1000:g} s); nothing was changed, try again"
            )
        elif trouble == "full":
            detail = "disk full: the database cannot grow; nothing was changed, try again later"
        else:
            detail = "the database cannot be reached; nothing was changed, try again"
        super().__init__(
            503,
            detail,
            kind=f"store-{trouble}",
            headers={"Retry-After": str(_RETRY_AFTER[trouble])},
        )
        self.trouble = trouble


def is_constraint(exc: BaseException) -> bool:
    """True for a constraint violation (unique, foreign key, check) on either engine."""
    return isinstance(
        exc, sqlite3.IntegrityError | asyncpg.exceptions.IntegrityConstraintViolationError
    )


class RowLocks:
    """In-process locks by key (a table and a row id), held around a write transaction that
    reads a row to decide its write: this core's writers of one row queue here, without
    holding a pooled connection (which reads then lack) and a PostgreSQL row-lock wait each.
    Other cores' writers still meet at the row lock (lock_row). A key's lock is dropped once
    nobody holds or awaits it."""

    def __init__(self) -> None:
        self._held: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        """Hold key's lock for the block."""
        lock, users = self._held.get(key) or (asyncio.Lock(), 0)
        self._held[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._held[key]
            if users == 1:
                del self._held[key]
            else:
                self._held[key] = (lock, users - 1)


async def lock_row(
    db: Database, conn: Connection, table: str, key: Any, column: str = "id"
) -> None:
    """Before reading a row to decide a write on it (If-Match, read-change-write): on
    PostgreSQL, take its row lock, so a concurrent writer of the same row (this core or
    another) waits for this transaction and then reads what it committed. Its own statement,
    not FOR UPDATE on the read: a statement that waited for a lock re-reads only the locked row,
    and the read's derived columns (child counts) would keep the older view. SQLite needs
    nothing: its writes are one at a time (BEGIN IMMEDIATE)."""
    if db.dialect == "postgres":
        await conn.execute(f"SELECT 1 FROM {table} WHERE {column} = ? FOR UPDATE", (key,))


class Rider(Protocol):
    """Rows that commit with a write of the current task (the request's audit entry)."""

    async def board(self, conn: Connection) -> bool:
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


def current_rider() -> Rider | None:
    """The rider of the current task's writes, if any."""
    return _RIDER.get()


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
