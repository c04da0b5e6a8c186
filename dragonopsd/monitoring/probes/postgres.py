"""PostgreSQL probe: log in with asyncpg, run one query in a read-only transaction, roll back."""

from __future__ import annotations

import contextlib
import time

import asyncpg

from ...model.monitor import MonitorSpec
from .login import AuthenticationFailed, login_for
from .query import DEFAULT_QUERY, MAX_ROWS, QueryFailed, query_context
from .result import ProbeEnv, ProbeResult

# SQLSTATE class 28: invalid authorization (wrong password, no such role, pg_hba reject).
_AUTH_ERRORS = (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)


async def probe_postgres(spec: MonitorSpec, env: ProbeEnv) -> ProbeResult:
    """Connect, run spec.query (SELECT 1); CONNECTED, RESPONSE_TIME, RESULT, ROWS, IP."""
    login = await login_for(spec, env)
    started = time.perf_counter()
    statement_ms = max(1, int(spec.timeout * 1000))
    try:
        conn = await asyncpg.connect(
            host=login.ip,
            port=login.port,
            user=login.username,
            # Never None: asyncpg would then send the daemon's PGPASSWORD or ~/.pgpass to
            # whatever host the monitor names.
            password=login.password or "",
            passfile="/dev/null",
            database=spec.database or login.username,
            ssl=login.ssl or False,
            direct_tls=False,
            timeout=spec.timeout,
            statement_cache_size=0,
            server_settings={
                "application_name": "dragonopsd",
                # Read-only twice over: every transaction of the session, and the one below.
                "default_transaction_read_only": "on",
                "statement_timeout": str(statement_ms),
            },
        )
    except _AUTH_ERRORS:
        raise AuthenticationFailed from None
    try:
        # One statement through the extended protocol (no "; DELETE ..." piggyback), inside a
        # read-only transaction that is always rolled back.
        transaction = conn.transaction(readonly=True)
        await transaction.start()
        try:
            # Parsed first, run only if it returns rows: a health query is a SELECT (or VALUES,
            # SHOW, ...). COPY TO a server file, which a read-only transaction allows a
            # superuser, and every other statement without a result never runs at all.
            statement = await conn.prepare(spec.query or DEFAULT_QUERY)
            if not statement.get_attributes():
                raise QueryFailed("query failed: it must return rows (SELECT, VALUES, SHOW)")
            cursor = await statement.cursor()
            rows = await cursor.fetch(MAX_ROWS + 1)
        except asyncpg.PostgresError as exc:
            raise QueryFailed(f"query failed: {exc.sqlstate} {exc}"[:200]) from None
        finally:
            # Whatever the query did to the transaction, nothing it did is kept; the
            # connection is dropped next anyway.
            with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError):
                await transaction.rollback()
    except QueryFailed as exc:
        elapsed = (time.perf_counter() - started) * 1000
        context = {"CONNECTED": True, "RESPONSE_TIME": elapsed, "IP": login.ip}
        return ProbeResult(context, latency_ms=elapsed, error=str(exc))
    finally:
        conn.terminate()
    elapsed = (time.perf_counter() - started) * 1000
    context = query_context([tuple(row) for row in rows], elapsed)
    context["IP"] = login.ip
    return ProbeResult(context, latency_ms=elapsed)
