"""The write transaction a task holds open: writes inside it join it, as one unit of work.

Django's ``atomic()`` is the model. The outermost ``Database.write()`` of a task opens the
transaction; a ``write()`` inside it, by the same task on the same database, is a SAVEPOINT of
it (undone alone when it fails), and a ``read()`` inside it goes through the same connection, so
it sees the rows written so far. Several stores' writes thus commit together or not at all (an
import), each store still writing through its own ``write()``.

What must not happen for a write that is rolled back (an event, a cache entry) is handed to
``on_commit``: it runs after the outermost COMMIT, and never after a ROLLBACK.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any, Generic, Protocol, TypeVar

from .sql import Connection

C = TypeVar("C", bound=Connection)
log = logging.getLogger("dragonopsd.store")


class UnitOfWork(Protocol):
    """Several stores' writes as one transaction (a ``Database`` is one): inside ``write()``,
    this task's store writes join it and its reads see them; all commit together or none do."""

    def write(self) -> AbstractAsyncContextManager[object]: ...


class OpenWrite(Generic[C]):
    """A task's open write transaction on one database, and what waits for its COMMIT."""

    __slots__ = ("after", "conn", "db", "depth", "task")

    def __init__(self, db: object, conn: C) -> None:
        self.db = db
        self.conn = conn
        self.task = asyncio.current_task()
        self.depth = 0  # savepoints open inside it
        self.after: list[Callable[[], None]] = []

    def committed(self) -> None:
        """The transaction committed: run what waited for it, in the order it was handed in.
        A callback that fails is logged, not raised: the write did commit, and the callbacks
        after it still run."""
        after, self.after = self.after, []
        for callback in after:
            try:
                callback()
            except Exception:
                log.exception("an after-commit step failed (the write itself committed)")


# A context variable, as the write rider is: the stores' writes find the open transaction
# without every caller between the import and the store passing a connection along.
_OPEN: ContextVar[OpenWrite[Any] | None] = ContextVar("dragonopsd_open_write", default=None)


def joined(db: object) -> OpenWrite[Any] | None:
    """The write this task holds open on db, if any. A task started inside a write inherits
    the variable but not the transaction: it waits for its own, as any other task does."""
    open_ = _OPEN.get()
    if open_ is None or open_.db is not db or open_.task is not asyncio.current_task():
        return None
    return open_


@contextmanager
def holding(db: object, conn: C) -> Iterator[OpenWrite[C]]:
    """Within the block, conn's transaction is this task's open write on db."""
    open_ = OpenWrite(db, conn)
    token = _OPEN.set(open_)
    try:
        yield open_
    finally:
        _OPEN.reset(token)


@asynccontextmanager
async def savepoint(open_: OpenWrite[C]) -> AsyncIterator[C]:
    """A write inside the open one: released on success; on failure rolled back to, with the
    on_commit callbacks it handed in, and the error raised on to the caller."""
    open_.depth += 1
    name = f"joined_{open_.depth}"
    handed_in = len(open_.after)
    await open_.conn.execute(f"SAVEPOINT {name}")
    try:
        yield open_.conn
    except BaseException:
        # The rest of the transaction stays usable (PostgreSQL refuses every statement after
        # an error until this): a caller may catch the error and carry on.
        del open_.after[handed_in:]
        try:
            await open_.conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
            await open_.conn.execute(f"RELEASE SAVEPOINT {name}")
        except Exception as lost:
            # SQLite rolls the whole transaction back by itself on some errors (disk full):
            # the savepoint is gone with it, and the error to report is the first one.
            log.debug("savepoint %s already gone: %s", name, lost)
        raise
    else:
        await open_.conn.execute(f"RELEASE SAVEPOINT {name}")
    finally:
        open_.depth -= 1


def on_commit(callback: Callable[[], None]) -> None:
    """Run callback after the COMMIT of this task's open write: at once when none is open,
    never when it rolls back."""
    open_ = _OPEN.get()
    if open_ is None or open_.task is not asyncio.current_task():
        callback()
    else:
        open_.after.append(callback)
