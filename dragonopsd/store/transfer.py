"""Moving a single-host install to PostgreSQL: every row of every table of a SQLite file.

The table list comes from the SQLite file itself (sqlite_master, minus SQLite's own tables), so
a table a later migration adds is copied without anyone listing it here; a table or column the
PostgreSQL schema does not have is an error naming it, never a silent loss. The source is opened
read-only; the target is migrated first, must hold no rows (besides what its migrations seed),
and receives everything in one transaction through COPY, so a failed copy leaves it empty.
Values are copied as they are stored: secrets and sealed channel credentials stay ciphertext.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from . import migrations
from .pgconn import Raw
from .postgres import PostgresDatabase

CHUNK = 5000  # rows read from SQLite and sent with one COPY


class TransferError(Exception):
    """The copy cannot be made as asked (a usage error: nothing was written)."""


@dataclass(frozen=True)
class Table:
    """One table to copy: its name and the columns both schemas share."""

    name: str
    columns: tuple[str, ...]


def _open_source(path: Path) -> sqlite3.Connection:
    """The SQLite file, read-only (mode=ro: the copy cannot change the install it moves)."""
    if not path.is_file():
        raise TransferError(f"{path}: no SQLite database there")
    try:
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
        )
        # One read transaction: every table comes from the same snapshot, even if a daemon
        # still writes to the file (WAL readers keep theirs until the end).
        conn.execute("BEGIN")
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.Error as exc:
        raise TransferError(f"{path}: cannot read it as a SQLite database: {exc}") from None
    latest = migrations.latest("sqlite")
    if version != latest:
        conn.close()
        raise TransferError(
            f"{path}: schema version {version}, this dragonopsd copies version {latest}; "
            "run `dragonopsd db migrate` on it with the same dragonopsd version first"
        )
    return conn


def _source_tables(conn: sqlite3.Connection) -> dict[str, tuple[str, ...]]:
    """Every table of the file but SQLite's own (sqlite_sequence, sqlite_stat1, ...)."""
    names = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' "
            "ESCAPE '\\' ORDER BY name"
        )
    ]
    return {
        name: tuple(row[1] for row in conn.execute(f'PRAGMA table_info("{name}")'))
        for name in names
    }


async def _target_columns(raw: Raw) -> dict[str, dict[str, str]]:
    """table -> column -> data type, for the target's public schema."""
    rows = await raw.fetch(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema()"
    )
    found: dict[str, dict[str, str]] = {}
    for row in rows:
        found.setdefault(row["table_name"], {})[row["column_name"]] = row["data_type"]
    return found


def plan(source: dict[str, tuple[str, ...]], target: dict[str, dict[str, str]]) -> list[Table]:
    """The tables to copy; TransferError naming every table or column the target lacks."""
    problems = []
    tables = []
    for name, columns in source.items():
        if name not in target:
            problems.append(f"table {name} is not in the PostgreSQL schema")
            continue
        there = target[name]
        missing = [c for c in columns if c not in there]
        extra = [c for c in there if c not in columns]
        if missing or extra:
            problems.append(
                f"table {name}: columns differ (only in SQLite: {', '.join(missing) or '-'}; "
                f"only in PostgreSQL: {', '.join(extra) or '-'})"
            )
            continue
        tables.append(Table(name, columns))
    if problems:
        raise TransferError("the schemas do not match: " + "; ".join(problems))
    return tables


async def _ordered(raw: Raw, tables: list[Table]) -> list[Table]:
    """Tables with the ones others reference first, so every foreign key holds as rows land."""
    edges = await raw.fetch(
        "SELECT conrelid::regclass::text AS child, confrelid::regclass::text AS parent "
        "FROM pg_constraint WHERE contype = 'f' AND connamespace = current_schema()::regnamespace"
    )
    parents: dict[str, set[str]] = {t.name: set() for t in tables}
    for edge in edges:
        if edge["child"] in parents and edge["parent"] != edge["child"]:
            parents[edge["child"]].add(edge["parent"])
    done: list[Table] = []
    left = list(tables)
    while left:
        ready = [t for t in left if parents[t.name] <= {d.name for d in done}]
        if not ready:  # a cycle: COPY in name order and let the constraint say what fails
            ready = left[:1]
        done.extend(ready)
        left = [t for t in left if t not in ready]
    return done


def _seeded() -> set[str]:
    """Tables a fresh PostgreSQL migration already fills (one-row state tables): their rows
    are replaced by the source's, not counted as "not empty"."""
    found = set()
    for mig in migrations.available("postgres"):
        for line in mig.sql.splitlines():
            words = line.split()
            if words[:2] == ["INSERT", "INTO"] and len(words) > 2:
                found.add(words[2].split("(")[0])
    return found


def _blob(value: Any) -> bytes:
    if not isinstance(value, bytes):
        raise TypeError(f"expected a BLOB, found {type(value).__name__}")
    return value


_CASTS: dict[str, Callable[[Any], Any]] = {
    "bigint": int,
    "integer": int,
    "smallint": int,
    "double precision": float,
    "real": float,
    "text": str,
    "bytea": _blob,
}


def _converter(types: list[str]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """SQLite's loosely typed values as the exact types COPY's binary format wants."""
    casts = [_CASTS.get(t, lambda v: v) for t in types]

    def convert(row: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(None if v is None else cast(v) for cast, v in zip(casts, row, strict=True))

    return convert


async def _copy_table(
    source: sqlite3.Connection, raw: Raw, table: Table, types: dict[str, str]
) -> int:
    cols = ", ".join(f'"{c}"' for c in table.columns)
    cursor = await asyncio.to_thread(source.execute, f'SELECT {cols} FROM "{table.name}"')
    convert = _converter([types[c] for c in table.columns])
    count = 0
    try:
        while rows := await asyncio.to_thread(cursor.fetchmany, CHUNK):
            records = [convert(row) for row in rows]
            await raw.copy_records_to_table(
                table.name, records=records, columns=list(table.columns)
            )
            count += len(records)
    except (TypeError, ValueError, sqlite3.Error, asyncpg.PostgresError) as exc:
        # A value that does not fit its column, an unreadable page, a constraint refused.
        raise TransferError(f"table {table.name}: {exc}") from None
    return count


async def _reset_identities(raw: Raw) -> None:
    """Identity and serial columns continue after the highest copied id."""
    rows = await raw.fetch(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND (is_identity = 'YES' "
        "OR column_default LIKE 'nextval(%')"
    )
    for row in rows:
        table, column = row["table_name"], row["column_name"]
        await raw.execute(
            f"SELECT setval(pg_get_serial_sequence('\"{table}\"', '{column}'), "
            f'COALESCE((SELECT MAX("{column}") FROM "{table}"), 0) + 1, false)'
        )


async def copy_sqlite(source_path: Path, target: PostgresDatabase) -> list[tuple[str, int]]:
    """Copy every row of the SQLite file into target (opened and migrated by the caller);
    the rows copied per table. TransferError (nothing written) when it cannot be done."""
    source = await asyncio.to_thread(_open_source, source_path)
    try:
        async with target.write() as conn:
            raw = conn.raw
            columns = await _target_columns(raw)
            tables = await _ordered(
                raw, plan(await asyncio.to_thread(_source_tables, source), columns)
            )
            seeded = _seeded()
            for table in tables:
                if table.name in seeded:
                    await raw.execute(f'DELETE FROM "{table.name}"')
                elif await raw.fetchval(f'SELECT EXISTS (SELECT 1 FROM "{table.name}")'):
                    raise TransferError(
                        f"{target.where} is not empty: table {table.name} has rows; "
                        "copy into a new, empty database"
                    )
            counts = [(t.name, await _copy_table(source, raw, t, columns[t.name])) for t in tables]
            await _reset_identities(raw)
    finally:
        await asyncio.to_thread(source.close)
    return counts
