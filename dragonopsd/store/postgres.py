"""The PostgreSQL database: an asyncpg pool behind the stores' ``Database`` protocol (sql.py).

Writes are READ COMMITTED transactions on pooled connections, committed before the caller
acknowledges, and run side by side, up to the pool's size less one within a core (a lock per
process made every commit wait for the one before, fsync included). A store that reads a row to
decide its write (If-Match, read-change-write) locks that row first (``sql.lock_row``;
``sql.RowLocks`` queues this core's writers of one row before they take a connection), so
concurrent writers of one row queue on PostgreSQL's row lock and the second sees the first's
commit. Reads take a pooled connection; a snapshot read is a REPEATABLE READ, READ ONLY
transaction.
A write or a read inside a write of the same task joins it (unit.py): the one-connection
pool of a CLI command never waits on itself.

A server that cannot be reached is a 503 ``StoreUnavailable`` ("down"), reported in ``state``
(/readyz) until a statement succeeds again; the pool opens new connections as they are needed,
so a core reconnects on its own when PostgreSQL returns.

Migrations are the numbered scripts of migrations/pg/, tracked in ``schema_migrations`` and
applied under an advisory lock, so cores starting together migrate once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg

from . import migrations
from .migrations import Migration, MigrationError
from .pgconn import PgConnection, Raw, setup
from .sql import Dialect, StoreUnavailable, current_rider
from .unit import holding, joined, savepoint

log = logging.getLogger("dragonopsd.store")

# The advisory lock key cores take to migrate: "dragonops" folded into a bigint.
_MIGRATE_LOCK = int.from_bytes(b"dragonop", "big") >> 1
_VERSIONS = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, "
    "name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
)
# What "the database is away" looks like from asyncpg: refused or dropped sockets, a server
# shutting down or starting up, a database closed to connections (55000), a pool that cannot
# get a connection in time, and asyncpg's own state error when a backend was killed under a
# statement.
_DOWN: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.ObjectNotInPrerequisiteStateError,
    asyncpg.exceptions.InternalClientError,
)
# What opening can meet besides: no such database, a wrong password, no such role.
UNREACHABLE: tuple[type[BaseException], ...] = (
    *_DOWN,
    asyncpg.exceptions.InvalidCatalogNameError,
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,
    asyncpg.exceptions.InvalidPasswordError,
)


def split_password(url: str) -> tuple[str, str | None]:
    """(url without its password, the password) — the password never goes on a command line."""
    parts = urlsplit(url)
    if parts.password is None:
        return url, None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username or ''}@{host}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc)), unquote(parts.password)


def redact(url: str) -> str:
    """url with its password (if any) shown as ***, for logs, messages and check-config."""
    bare, password = split_password(url)
    if password is None:
        return url
    parts = urlsplit(bare)
    user, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


async def current(raw: Raw) -> int:
    """The schema version recorded in the database (0 when never migrated)."""
    exists = await raw.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return 0
    return int(await raw.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))


async def apply_migrations(raw: Raw, scripts: list[Migration] | None = None) -> int:
    """Apply pending migrations, each in its own transaction with its version row, under an
    advisory lock (a second core waits, then finds nothing left to do)."""
    scripts = migrations.available("postgres") if scripts is None else scripts
    newest = scripts[-1].version if scripts else 0
    await raw.execute("SELECT pg_advisory_lock($1)", _MIGRATE_LOCK)
    try:
        await raw.execute(_VERSIONS)
        version = await current(raw)
        if version > newest:
            raise MigrationError(
                f"database schema version {version} is newer than this dragonopsd ({newest}); "
                "upgrade dragonopsd or restore a backup"
            )
        for mig in scripts[version:]:
            try:
                async with raw.transaction():
                    await raw.execute(mig.sql)
                    await raw.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                        mig.version,
                        mig.name,
                    )
            except asyncpg.PostgresError as exc:
                raise MigrationError(
                    f"migration {mig.version:04d}_{mig.name} failed: {exc}; database left at "
                    f"version {version}"
                ) from exc
            version = mig.version
        return version
    finally:
        await raw.execute("SELECT pg_advisory_unlock($1)", _MIGRATE_LOCK)


async def _keep(raw: asyncpg.Connection) -> None:
    """What a released connection needs beyond asyncpg's own rollback of an open transaction:
    nothing. The stores leave no session state behind (no SET, LISTEN, cursors or advisory
    locks past their statement), and the default reset (RESET ALL, UNLISTEN *, ...) is one
    more round trip per request."""


class PostgresDatabase:
    """Owns the connection pool to one PostgreSQL database."""

    def __init__(
        self,
        url: str,
        *,
        password_file: Path | None = None,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 5.0,
    ) -> None:
        self.url = url
        self._password_file = password_file
        self._password: str | None = None
        self._min_size = min_size
        self._max_size = max_size
        self._timeout = connect_timeout
        self._pool: asyncpg.Pool | None = None
        # Write transactions at once: one connection short of the pool, so reads always find
        # one. A burst of writes (every monitor's first status at start) queues here, without
        # a deadline, as behind the old per-process lock; queued at the pool instead, writes
        # waited past its acquire timeout and were taken for a database that is down.
        self._writers = asyncio.Semaphore(max(1, max_size - 1))
        self._trace: Callable[[str], None] | None = None
        self.schema_version = 0
        self.trouble: str | None = None

    @property
    def dialect(self) -> Dialect:
        """The SQL dialect the stores speak to this database."""
        return "postgres"

    @property
    def where(self) -> str:
        """The URL without its password."""
        return redact(self.url)

    @property
    def is_open(self) -> bool:
        """True between a successful open() and close()."""
        return self._pool is not None

    @property
    def state(self) -> str:
        """What /readyz reports: ok, closed, or down (the last statement found no server)."""
        if self._pool is None:
            return "closed"
        return self.trouble or "ok"

    async def open(self, *, migrate: bool = True) -> None:
        """Open the pool (libpq's rules find the password: the URL, PGPASSWORD, ~/.pgpass) and
        apply pending migrations."""
        if self._password_file is not None:
            text = await asyncio.to_thread(self._password_file.read_text, encoding="utf-8")
            self._password = text.strip()
        pool = await asyncpg.create_pool(
            self.url,
            password=self._password,
            min_size=self._min_size,
            max_size=self._max_size,
            timeout=self._timeout,
            init=setup,
            reset=_keep,
        )
        try:
            async with pool.acquire() as raw:
                if migrate:
                    self.schema_version = await apply_migrations(raw)
                else:
                    self.schema_version = await current(raw)
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def close(self) -> None:
        """Close the pool (waits for connections in use to be released)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def _reached(self) -> None:
        if self.trouble is not None:
            log.info("%s: the database answers again", self.where)
            self.trouble = None

    def _lost(self, exc: BaseException) -> StoreUnavailable:
        if self.trouble is None:
            log.warning("%s: the database cannot be reached (%s); answering 503", self.where, exc)
        self.trouble = "down"
        return StoreUnavailable("down")

    def _require(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("database is not open")
        return self._pool

    @asynccontextmanager
    async def write(self) -> AsyncIterator[PgConnection]:
        """One write transaction: COMMIT on success (acknowledge only after), else ROLLBACK.
        Inside another write of this task: a savepoint of it (unit.py)."""
        pool = self._require()
        outer = joined(self)
        if outer is not None:
            async with savepoint(outer) as conn:
                yield conn
            return
        rider = current_rider()
        boarded = False
        try:
            async with self._writers, self._acquire(pool) as raw, raw.transaction():
                conn = PgConnection(raw, self._trace)
                self._traced("BEGIN")
                with holding(self, conn) as unit:
                    yield conn
                if rider is not None:
                    boarded = await rider.board(conn)
                self._traced("COMMIT")
        except _DOWN as exc:
            raise self._lost(exc) from exc
        self._reached()
        if boarded and rider is not None:
            rider.landed()
        unit.committed()

    @asynccontextmanager
    async def read(self, *, snapshot: bool = False) -> AsyncIterator[PgConnection]:
        """A pooled connection; with snapshot=True its statements share one consistent view.
        Inside a write of this task: the write's connection, which sees what it wrote."""
        pool = self._require()
        if (outer := joined(self)) is not None:
            yield outer.conn
            return
        try:
            async with self._acquire(pool) as raw:
                if snapshot:
                    async with raw.transaction(isolation="repeatable_read", readonly=True):
                        yield PgConnection(raw, self._trace)
                else:
                    yield PgConnection(raw, self._trace)
        except _DOWN as exc:
            raise self._lost(exc) from exc
        self._reached()

    @asynccontextmanager
    async def _acquire(self, pool: asyncpg.Pool) -> AsyncIterator[Raw]:
        """A pooled connection within the connect timeout. Not acquire(timeout=), which runs
        every acquire as a task of its own (wait_for), a measurable share of a GET's cost; and
        no timer at all when an idle connection is there to take."""
        if pool.get_idle_size() > 0:
            raw = await pool.acquire()
        else:
            async with asyncio.timeout(self._timeout):
                raw = await pool.acquire()
        try:
            yield raw
        finally:
            await pool.release(raw)

    def _traced(self, sql: str) -> None:
        if self._trace is not None:
            self._trace(sql)

    async def set_trace_callback(self, callback: Callable[[str], None] | None) -> None:
        """Report every statement's text to callback (tests count statements with this)."""
        self._trace = callback

    async def quick_check(self) -> list[str]:
        """["ok"] when the server answers and every table the schema expects is there."""
        async with self.read() as conn:
            raw = conn.raw
            missing = await raw.fetch(
                "SELECT t FROM unnest($1::text[]) AS t WHERE to_regclass(t) IS NULL",
                list(_TABLES),
            )
        return [f"missing table {row[0]}" for row in missing] or ["ok"]

    async def backup(self, target: Path) -> None:
        """pg_dump (custom format) of the database into target, a new 0600 file;
        FileNotFoundError when pg_dump is not installed, RuntimeError when it fails."""
        self._require()
        tool = shutil.which("pg_dump")
        if tool is None:
            raise FileNotFoundError("pg_dump is not installed; install postgresql-client")
        fd = await asyncio.to_thread(os.open, target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        dsn, in_url = split_password(self.url)
        env = dict(os.environ)
        if (password := self._password or in_url) is not None:
            env["PGPASSWORD"] = password
        try:
            proc = await asyncio.create_subprocess_exec(
                tool, "--format=custom", f"--dbname={dsn}", stdout=fd,
                stderr=asyncio.subprocess.PIPE, env=env,
            )  # fmt: skip
        finally:
            os.close(fd)
        _, err = await proc.communicate()
        if proc.returncode != 0:
            await asyncio.to_thread(target.unlink, missing_ok=True)
            raise RuntimeError(f"pg_dump failed: {err.decode(errors='replace').strip()}")


# Tables quick_check expects (the newest schema's).
_TABLES = (
    "meta",
    "clients",
    "projects",
    "environments",
    "servers",
    "tokens",
    "profiles",
    "secrets",
    "settings",
    "audit_log",
    "monitors",
    "monitor_state",
    "incidents",
    "history_raw",
    "history_monitors",
    "history_5m",
    "history_1h",
    "history_1d",
    "history_state",
    "notification_channels",
    "maintenance_windows",
    "sample_servers",
    "samples_raw",
    "samples_1m",
    "samples_1h",
    "samples_state",
    "actions",
)
