"""PostgreSQL for the tests: a fresh database per test on the local server (127.0.0.1:5432,
user postgres, trust auth), dropped when the test ends.

A test module runs on both backends with
``pytestmark = pytest.mark.parametrize("storage_url", BACKENDS, indirect=True)``: the
``storage_url`` fixture (conftest.py) is "" for SQLite, or the URL of a fresh database.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dragonopsd.store.db import Database as SqliteDatabase
from dragonopsd.store.postgres import PostgresDatabase
from dragonopsd.store.sql import Database

SERVER = "postgresql://postgres@127.0.0.1:5432"
BACKENDS = ["sqlite", "postgres"]


def psql(sql: str, database: str = "postgres") -> str:
    """Run one statement with psql as the superuser; its unaligned output."""
    done = subprocess.run(
        ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
         "-U", "postgres", "-d", database, "-c", sql],
        check=True, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    return done.stdout.strip()


@contextmanager
def fresh_database() -> Iterator[str]:
    """The URL of a new, empty database, dropped (connections and all) afterwards."""
    name = f"dragonops_test_{secrets.token_hex(6)}"
    psql(f'CREATE DATABASE "{name}"')
    try:
        yield f"{SERVER}/{name}"
    finally:
        psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database(storage_url: str, path: Path) -> Database:
    """The Database a store test works on: PostgreSQL at storage_url, else the file path."""
    if storage_url:
        return PostgresDatabase(storage_url)
    return SqliteDatabase(path)
