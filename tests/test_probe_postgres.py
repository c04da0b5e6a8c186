"""postgres monitors against the real PostgreSQL on 127.0.0.1:5432 (trust for postgres; a role
with a password is made per test and dropped)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from service_probes import closed_port, probe, probe_env, silent_server

from dragonopsd.monitoring.conditions import evaluate_all, parse_all

PASSWORD = "pg-Pa55-" + secrets.token_hex(4)


@pytest.fixture
async def database() -> AsyncIterator[tuple[str, str]]:
    """A fresh database with a table of three rows, and a login role that owns it; (db, role)."""
    suffix = secrets.token_hex(4)
    db, role = f"probe_{suffix}", f"prober_{suffix}"
    admin = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="postgres")
    try:
        # In dragonops_pw: .ci/services makes its members give a password (the rest is trust).
        await admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}' IN ROLE dragonops_pw")
        await admin.execute(f"CREATE DATABASE {db} OWNER {role}")
        conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database=db)
        try:
            await conn.execute(
                f"CREATE TABLE items (id int, name text); ALTER TABLE items OWNER TO {role}"
            )
            await conn.execute("INSERT INTO items VALUES (1, 'a'), (2, 'b'), (3, 'c')")
        finally:
            await conn.close()
        yield db, role
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        await admin.execute(f"DROP ROLE IF EXISTS {role}")
        await admin.close()


async def table(db: str) -> list[tuple[int, str]]:
    conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database=db)
    try:
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        assert [r[0] for r in tables] == ["items"]
        return [tuple(r) for r in await conn.fetch("SELECT id, name FROM items ORDER BY id")]
    finally:
        await conn.close()


async def test_up_with_password_from_the_secrets_store(database: tuple[str, str]) -> None:
    db, role = database
    async with probe_env({"PG": PASSWORD}) as env:
        result, _ = await probe(
            env,
            "postgres",
            host="127.0.0.1",
            username=role,
            password_secret="PG",
            database=db,
            query="SELECT count(*), max(name) FROM items",
        )
    assert result.error is None, result.error
    assert result.context["CONNECTED"] is True
    assert result.context["RESULT"] == 3 and result.context["ROWS"] == 1
    assert result.context["IP"] == "127.0.0.1" and result.context["RESPONSE_TIME"] > 0
    verdicts = evaluate_all(
        parse_all(
            ["[RESULT] == 3", "[ROWS] == 1", "[RESPONSE_TIME] < 5000", "[CONNECTED] == true"]
        ),
        result.context,
    )
    assert all(v.success for v in verdicts), verdicts
    failing = evaluate_all(parse_all(["[RESULT] > 3", "[ROWS] >= 2"]), result.context)
    assert not any(v.success for v in failing)


async def test_default_query_and_rows(database: tuple[str, str]) -> None:
    db, role = database
    async with probe_env({"PG": PASSWORD}) as env:
        default, _ = await probe(
            env, "postgres", host="127.0.0.1", username=role, password_secret="PG", database=db
        )
        many, _ = await probe(
            env,
            "postgres",
            host="127.0.0.1",
            username=role,
            password_secret="PG",
            database=db,
            query="SELECT name FROM items ORDER BY id",
        )
    assert default.error is None and default.context["RESULT"] == 1
    assert many.context["ROWS"] == 3 and many.context["RESULT"] == "a"


async def test_wrong_password_says_authentication_and_never_the_password(
    database: tuple[str, str],
) -> None:
    db, role = database
    wrong = "wrong-" + PASSWORD
    async with probe_env({"PG": wrong}) as env:
        result, _ = await probe(
            env, "postgres", host="127.0.0.1", username=role, password_secret="PG", database=db
        )
    assert result.error == "authentication failed"
    assert wrong not in repr(result) and PASSWORD not in repr(result)


async def test_missing_secret_is_named() -> None:
    async with probe_env({}) as env:
        result, _ = await probe(
            env, "postgres", host="127.0.0.1", username="postgres", password_secret="NOPE"
        )
    assert result.error is not None and "'NOPE' does not exist" in result.error


async def test_port_closed_is_down() -> None:
    async with probe_env() as env:
        result, _ = await probe(
            env, "postgres", host="127.0.0.1", port=closed_port(), username="postgres"
        )
    assert result.error == "connection refused"
    assert result.context["CONNECTED"] is False


async def test_timeout_against_a_listener_that_never_answers() -> None:
    async with silent_server() as silent, probe_env() as env:
        result, wall = await probe(
            env, "postgres", host="127.0.0.1", port=silent.port, username="postgres", timeout=1.0
        )
    assert result.error == "timeout after 1.0s"
    assert wall < 2.5
    assert await silent.all_ended()  # the probe left no connection open behind it


@pytest.mark.parametrize(
    "query",
    [
        "DELETE FROM items",
        "UPDATE items SET name = 'x'",
        "CREATE TABLE sneaky (id int)",
        "INSERT INTO items VALUES (9, 'z') RETURNING id",
        "DELETE FROM items; SELECT 1",
        "COMMIT; DELETE FROM items",
        "SET TRANSACTION READ WRITE",
        "COPY items TO '/tmp/dragonops-probe-copy.txt'",
        "DO $$ BEGIN CREATE TABLE sneaky (id int); END $$",
    ],
)
async def test_a_query_monitor_cannot_write(database: tuple[str, str], query: str) -> None:
    db, role = database
    async with probe_env({"PG": PASSWORD}) as env:
        result, _ = await probe(
            env,
            "postgres",
            host="127.0.0.1",
            username=role,
            password_secret="PG",
            database=db,
            query=query,
        )
    assert result.error is not None and result.error.startswith("query failed:"), result.error
    assert await table(db) == [(1, "a"), (2, "b"), (3, "c")]
    assert not Path("/tmp/dragonops-probe-copy.txt").exists()


async def test_statement_timeout_ends_a_slow_query(database: tuple[str, str]) -> None:
    db, role = database
    async with probe_env({"PG": PASSWORD}) as env:
        result, wall = await probe(
            env,
            "postgres",
            host="127.0.0.1",
            username=role,
            password_secret="PG",
            database=db,
            query="SELECT pg_sleep(10)",
            timeout=1.5,
        )
    assert result.error is not None
    assert wall < 3


async def test_even_a_superuser_monitor_writes_no_server_file() -> None:
    """A read-only transaction still lets a superuser COPY to a server file; the probe runs
    only statements that return rows, so it never gets that far."""
    target = Path(f"/tmp/dragonops-probe-{secrets.token_hex(4)}.txt")
    async with probe_env() as env:
        result, _ = await probe(
            env,
            "postgres",
            host="127.0.0.1",
            username="postgres",
            query=f"COPY (SELECT 1) TO '{target}'",
        )
    assert result.error == "query failed: it must return rows (SELECT, VALUES, SHOW)"
    assert not target.exists()
