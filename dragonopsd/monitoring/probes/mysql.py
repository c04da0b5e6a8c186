"""MySQL/MariaDB probe: log in with aiomysql, run one query in a read-only session, roll back."""

from __future__ import annotations

import contextlib
import re
import time
from typing import Any

import aiomysql  # type: ignore[import-untyped]  # ships no py.typed; used through a few calls
import pymysql  # type: ignore[import-untyped]  # aiomysql's errors are PyMySQL's

from ...model.monitor import MonitorSpec
from .login import AuthenticationFailed, Login, login_for
from .query import DEFAULT_QUERY, MAX_ROWS, QueryFailed, query_context
from .result import ProbeEnv, ProbeResult

ACCESS_DENIED = 1045  # ER_ACCESS_DENIED_ERROR: wrong user or password
UNKNOWN_VARIABLE = 1193  # the server is MySQL (max_execution_time), not MariaDB
CANNOT_CONNECT = (2003, 2013)  # CR_CONN_HOST_ERROR, CR_SERVER_LOST
# What a read-only transaction does not stop: writing a server file (SELECT ... INTO OUTFILE,
# with the FILE privilege), dynamic SQL and procedures that could do so. Matched anywhere,
# comments and strings included: a health query never needs these words.
_NOT_RUN = re.compile(r"outfile|dumpfile|\bexecute\b|\bcall\b|\bhandler\b", re.IGNORECASE)


def _code(exc: pymysql.MySQLError) -> int | None:
    return exc.args[0] if exc.args and isinstance(exc.args[0], int) else None


async def _connect(spec: MonitorSpec, login: Login) -> Any:
    try:
        conn = await aiomysql.connect(
            host=login.ip,
            port=login.port,
            user=login.username,
            password=login.password or "",
            db=spec.database,
            connect_timeout=spec.timeout,
            ssl=login.ssl,
            autocommit=False,
            # Defaults made explicit: one statement per query (no CLIENT_MULTI_STATEMENTS),
            # no LOAD DATA LOCAL, no option files read from the daemon's home.
            client_flag=0,
            local_infile=False,
            read_default_file=None,
            program_name="dragonopsd",
        )
    except pymysql.OperationalError as exc:
        if _code(exc) == ACCESS_DENIED:
            raise AuthenticationFailed from None
        cause = exc.__cause__ or exc.__context__
        if _code(exc) in CANNOT_CONNECT and isinstance(cause, OSError):
            raise cause from None
        raise OSError(f"mysql error {_code(exc)}") from None
    return conn


async def _limit(cursor: Any, seconds: float) -> None:
    """A statement timeout: MariaDB's max_statement_time (s), else MySQL's max_execution_time."""
    try:
        await cursor.execute(f"SET SESSION max_statement_time = {seconds:.3f}")
    except pymysql.MySQLError as exc:
        if _code(exc) != UNKNOWN_VARIABLE:
            raise
        await cursor.execute(f"SET SESSION max_execution_time = {max(1, int(seconds * 1000))}")


async def probe_mysql(spec: MonitorSpec, env: ProbeEnv) -> ProbeResult:
    """Connect, run spec.query (SELECT 1); CONNECTED, RESPONSE_TIME, RESULT, ROWS, IP."""
    query = spec.query or DEFAULT_QUERY
    if _NOT_RUN.search(query):
        error = "query failed: INTO OUTFILE/DUMPFILE, EXECUTE, CALL and HANDLER are not run"
        return ProbeResult({"CONNECTED": False}, error=error)
    login = await login_for(spec, env)
    ip = login.ip
    started = time.perf_counter()
    conn = await _connect(spec, login)
    try:
        async with conn.cursor() as cursor:
            # Read-only for the whole session, not only the transaction: a DDL statement's
            # implicit commit would otherwise leave the transaction and run in autocommit.
            await cursor.execute("SET SESSION TRANSACTION READ ONLY")
            await _limit(cursor, spec.timeout)
            await cursor.execute("START TRANSACTION READ ONLY")
            try:
                await cursor.execute(query)
                if not cursor.description:  # as for postgres: a health query returns rows
                    raise QueryFailed("query failed: it must return rows (SELECT, VALUES, SHOW)")
                rows = await cursor.fetchmany(MAX_ROWS + 1)
            except (pymysql.MySQLError, QueryFailed) as exc:
                if isinstance(exc, QueryFailed):
                    error = str(exc)
                else:
                    message = exc.args[1] if len(exc.args) > 1 else ""
                    error = f"query failed: {_code(exc)} {message}"[:200]
                elapsed = (time.perf_counter() - started) * 1000
                context = {"CONNECTED": True, "RESPONSE_TIME": elapsed, "IP": ip}
                return ProbeResult(context, latency_ms=elapsed, error=error)
            finally:
                with contextlib.suppress(pymysql.MySQLError):
                    await conn.rollback()
    finally:
        conn.close()
    elapsed = (time.perf_counter() - started) * 1000
    context = query_context(rows, elapsed)
    context["IP"] = ip
    return ProbeResult(context, latency_ms=elapsed)
