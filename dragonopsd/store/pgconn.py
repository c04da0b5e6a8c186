"""An asyncpg connection behind the stores' connection API (store/sql.py).

The stores write ``?`` placeholders and a little SQL that only SQLite spells its way; this
module numbers the placeholders (``$1``…, never inside a quoted literal or identifier) and maps
those few spellings:

- ``json_each(?)`` (an IN list bound as one JSON array) → ``json_array_elements_text(?::json)``,
  whose one column is named ``value`` as json_each's is;
- ``LIKE`` → ``ILIKE``: SQLite's LIKE ignores ASCII case, and the stores' name filters count on it.

Everything else the stores write is already common to both engines (upserts are ON CONFLICT,
inserted ids come back through RETURNING). A translation is computed once per statement text.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Generator, Iterable, Sequence
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

# A connection as the pool lends it, or one opened directly (migrations from the CLI).
Raw = asyncpg.Connection | PoolConnectionProxy

_CODE_REWRITES = (
    (re.compile(r"\bjson_each\(\?\)"), "json_array_elements_text(?::json)"),
    (re.compile(r"(?<![A-Za-z_])LIKE\b"), "ILIKE"),
)
# Quoted literals ('it''s'), quoted identifiers and line comments pass through untouched.
_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*")
# A one-row INSERT ... VALUES (?, ...) with whatever follows (ON CONFLICT ...): the shape a
# batch of many rows can take through COPY.
_BULK = re.compile(r"^\s*INSERT INTO (\w+) \(([\w, ]+)\) VALUES \(\?(?:, \?)*\)(.*)$", re.DOTALL)
COPY_ROWS = 1000  # from this many rows a batch goes through COPY (executemany below it)
_ROWS = re.compile(r"^\s*(?:SELECT|WITH|VALUES)\b|\bRETURNING\b", re.IGNORECASE)


@functools.lru_cache(maxsize=2048)
def translate(sql: str) -> str:
    """The PostgreSQL text of a statement the stores wrote for SQLite's placeholders."""
    out: list[str] = []
    number = 0

    def code(part: str) -> str:
        nonlocal number
        for pattern, replacement in _CODE_REWRITES:
            part = pattern.sub(replacement, part)
        pieces = part.split("?")
        text = pieces[0]
        for piece in pieces[1:]:
            number += 1
            text += f"${number}{piece}"
        return text

    pos = 0
    for m in _QUOTED.finditer(sql):
        out.append(code(sql[pos : m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(code(sql[pos:]))
    return "".join(out)


def _returns_rows(sql: str) -> bool:
    return _ROWS.search(sql) is not None


def _count(status: str) -> int:
    """Rows a command changed, from its status tag ("UPDATE 3", "INSERT 0 1"); -1 if none."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else -1


class PgCursor:
    """A statement's rows (already fetched) and how many rows it changed."""

    __slots__ = ("_pos", "_rowcount", "_rows")

    def __init__(self, rows: Sequence[asyncpg.Record], rowcount: int) -> None:
        self._rows = rows
        self._pos = 0
        self._rowcount = rowcount

    @property
    def rowcount(self) -> int:
        """Rows changed (or returned, with RETURNING); -1 for a plain SELECT, as in sqlite3."""
        return self._rowcount

    @property
    def lastrowid(self) -> int | None:
        """PostgreSQL has no rowid: inserts that need their id ask with RETURNING."""
        return None

    async def fetchone(self) -> asyncpg.Record | None:
        """The next row, or None after the last."""
        if self._pos >= len(self._rows):
            return None
        self._pos += 1
        return self._rows[self._pos - 1]

    async def fetchall(self) -> list[asyncpg.Record]:
        """The rows not fetched yet."""
        rest = list(self._rows[self._pos :])
        self._pos = len(self._rows)
        return rest


class PendingCursor:
    """A statement on its way: awaited for its cursor, or used as ``async with``."""

    __slots__ = ("_run",)

    def __init__(self, run: Any) -> None:
        self._run = run

    def __await__(self) -> Generator[Any, None, PgCursor]:
        cursor: PgCursor = yield from self._run.__await__()
        return cursor

    async def __aenter__(self) -> PgCursor:
        cursor: PgCursor = await self._run
        return cursor

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        return None


class PgConnection:
    """One pooled asyncpg connection, speaking the stores' connection API."""

    __slots__ = ("_trace", "raw")

    def __init__(self, raw: Raw, trace: Callable[[str], None] | None = None) -> None:
        self.raw = raw
        self._trace = trace

    def execute(self, sql: str, parameters: Iterable[Any] = (), /) -> PendingCursor:
        """Run one statement; rows are fetched when it returns any."""
        return PendingCursor(self._execute(sql, tuple(parameters)))

    def executemany(self, sql: str, parameters: Iterable[Iterable[Any]], /) -> PendingCursor:
        """Run one statement per parameter row."""
        return PendingCursor(self._executemany(sql, [tuple(p) for p in parameters]))

    async def execute_fetchall(
        self, sql: str, parameters: Iterable[Any] = (), /
    ) -> list[asyncpg.Record]:
        """Run one statement and return all its rows."""
        text = translate(sql)
        if self._trace is not None:
            self._trace(text)
        result: list[asyncpg.Record] = await self.raw.fetch(text, *parameters)
        return result

    async def _execute(self, sql: str, args: tuple[Any, ...]) -> PgCursor:
        text = translate(sql)
        if self._trace is not None:
            self._trace(text)
        if _returns_rows(text):
            rows = await self.raw.fetch(text, *args)
            return PgCursor(rows, len(rows) if text.lstrip()[:6].upper() != "SELECT" else -1)
        return PgCursor((), _count(await self.raw.execute(text, *args)))

    async def _executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> PgCursor:
        text = translate(sql)
        if not rows:
            return PgCursor((), 0)
        if text.lstrip()[:6].upper() == "INSERT":
            bulk = _BULK.match(sql) if len(rows) >= COPY_ROWS else None
            if bulk is not None and await self._copy_insert(bulk, rows):
                return PgCursor((), len(rows))
        if self._trace is not None:
            for _ in rows:  # one per row, as SQLite's trace reports executemany
                self._trace(text)
        if text.lstrip()[:6].upper() == "INSERT":
            # Pipelined: one round trip per batch, but still one statement per row server-side.
            await self.raw.executemany(text, rows)
            return PgCursor((), len(rows))
        # UPDATE/DELETE callers read how many rows changed, which executemany does not say.
        changed = 0
        for args in rows:
            changed += max(_count(await self.raw.execute(text, *args)), 0)
        return PgCursor((), changed)

    async def _copy_insert(self, bulk: re.Match[str], rows: list[tuple[Any, ...]]) -> bool:
        """COPY the rows into a temporary twin of the table, then one INSERT ... SELECT with the
        statement's own tail (its ON CONFLICT): ~3x the rows/s of executemany, and the
        history writer needs 50,000 heartbeats/s. False (nothing written) when the batch holds
        one key twice, which a single upsert may not touch twice: executemany does it then."""
        table, columns, tail = bulk[1], bulk[2], bulk[3]
        names = [c.strip() for c in columns.split(",")]
        scratch = f"_bulk_{table}"
        await self.raw.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {scratch} "
            f"ON COMMIT DELETE ROWS AS SELECT {columns} FROM {table} WITH NO DATA"
        )
        await self.raw.copy_records_to_table(scratch, records=rows, columns=names)
        insert = f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {scratch}{tail}"
        try:
            async with self.raw.transaction():  # a savepoint: a refused upsert undoes only itself
                await self.raw.execute(insert)
        except asyncpg.exceptions.CardinalityViolationError:
            await self.raw.execute(f"TRUNCATE {scratch}")
            return False
        await self.raw.execute(f"TRUNCATE {scratch}")
        if self._trace is not None:
            self._trace(insert)
        return True


def _numeric(text: str) -> int | float:
    """numeric as SQLite would give it: SUM over integers is an int, AVG a float."""
    return int(text) if text.lstrip("-").isdigit() else float(text)


async def setup(raw: asyncpg.Connection) -> None:
    """Per pooled connection: numeric arrives as int/float, not Decimal (the stores do
    integer arithmetic on SUM(...) results, as with SQLite)."""
    await raw.set_type_codec(
        "numeric", encoder=str, decoder=_numeric, schema="pg_catalog", format="text"
    )
