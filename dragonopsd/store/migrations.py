"""Numbered SQL migrations tracked with ``PRAGMA user_version``.

Each file ``NNNN_name.sql`` runs in one transaction together with the version bump, so a
failing migration leaves the database exactly as it was.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from importlib import resources

import aiosqlite

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(Exception):
    """A migration could not be applied; the database was left untouched."""


@dataclass(frozen=True)
class Migration:
    """One numbered SQL script."""

    version: int
    name: str
    sql: str


def available(dialect: str = "sqlite") -> list[Migration]:
    """Every migration shipped in the package for a dialect, in version order: SQLite's in
    migrations/, PostgreSQL's (the same numbers, its own types) in migrations/pg/."""
    folder = resources.files("dragonopsd.store").joinpath("migrations")
    if dialect == "postgres":
        folder = folder.joinpath("pg")
    found = []
    for entry in folder.iterdir():
        m = _NAME.match(entry.name)
        if m:
            found.append(Migration(int(m[1]), m[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda mig: mig.version)
    for expected, mig in enumerate(found, start=1):
        if mig.version != expected:
            raise MigrationError(f"migration numbering has a gap before {mig.version:04d}")
    return found


def latest(dialect: str = "sqlite") -> int:
    """The schema version this build expects."""
    return len(available(dialect))


async def current(conn: aiosqlite.Connection) -> int:
    """The schema version recorded in the database file."""
    async with conn.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def migrate(conn: aiosqlite.Connection, migrations: list[Migration] | None = None) -> int:
    """Apply pending migrations on an autocommit connection; return the new version."""
    migrations = available() if migrations is None else migrations
    version = await current(conn)
    newest = migrations[-1].version if migrations else 0
    if version > newest:
        raise MigrationError(
            f"database schema version {version} is newer than this dragonopsd ({newest}); "
            "upgrade dragonopsd or restore a backup"
        )
    for mig in migrations[version:]:
        script = f"BEGIN IMMEDIATE;\n{mig.sql}\n;PRAGMA user_version = {mig.version};\nCOMMIT;"
        try:
            await conn.executescript(script)
        except sqlite3.Error as exc:
            if conn.in_transaction:
                await conn.rollback()
            raise MigrationError(
                f"migration {mig.version:04d}_{mig.name} failed: {exc}; database left at "
                f"version {version}"
            ) from exc
        version = mig.version
    return version
