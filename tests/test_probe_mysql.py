"""mysql monitors against the real MariaDB on 127.0.0.1:3306 (root without a password; a user
with a password and its database are made per test and dropped)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomysql  # type: ignore[import-untyped]
import pytest
from service_probes import closed_port, probe, probe_env, silent_server

from dragonopsd.monitoring.conditions import evaluate_all, parse_all

PASSWORD = "my-Pa55-" + secrets.token_hex(4)


async def admin() -> Any:
    return await aiomysql.connect(host="127.0.0.1", port=3306, user="root", autocommit=True)


@pytest.fixture
async def database() -> AsyncIterator[tuple[str, str]]:
    """A database with a table of three rows and a user with every right on it; (db, user)."""
    suffix = secrets.token_hex(4)
    db, user = f"probe_{suffix}", f"prober_{suffix}"
    conn = await admin()
    try:
        async with conn.cursor() as cur:
            await cur.execute(f"CREATE DATABASE {db}")
            await cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{PASSWORD}'")
            await cur.execute(f"GRANT ALL ON {db}.* TO '{user}'@'%'")
            await cur.execute(f"CREATE TABLE {db}.items (id int, name text)")
            await cur.execute(f"INSERT INTO {db}.items VALUES (1, 'a'), (2, 'b'), (3, 'c')")
        yield db, user
    finally:
        async with conn.cursor() as cur:
            await cur.execute(f"DROP DATABASE IF EXISTS {db}")
            await cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        conn.close()


async def table(db: str) -> list[tuple[Any, ...]]:
    conn = await admin()
    try:
        async with conn.cursor() as cur:
            await cur.execute(f"SHOW TABLES FROM {db}")
            assert [r[0] for r in await cur.fetchall()] == ["items"]
            await cur.execute(f"SELECT id, name FROM {db}.items ORDER BY id")
            return list(await cur.fetchall())
    finally:
        conn.close()


def login(db: str, user: str, **fields: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "username": user,
        "password_secret": "MY",
        "database": db,
        **fields,
    }


async def test_up_with_password_from_the_secrets_store(database: tuple[str, str]) -> None:
    db, user = database
    conditions = ["[RESULT] == 3", "[ROWS] == 1", "[RESPONSE_TIME] < 5000", "[CONNECTED] == true"]
    async with probe_env({"MY": PASSWORD}) as env:
        result, _ = await probe(
            env, "mysql", **login(db, user, query="SELECT count(*), max(name) FROM items")
        )
        rows, _ = await probe(env, "mysql", **login(db, user, query="SELECT name FROM items"))
        default, _ = await probe(env, "mysql", **login(db, user))
    assert result.error is None, result.error
    assert result.context["IP"] == "127.0.0.1"
    assert all(v.success for v in evaluate_all(parse_all(conditions), result.context))
    assert not any(
        v.success for v in evaluate_all(parse_all(["[RESULT] > 3", "[ROWS] >= 2"]), result.context)
    )
    assert rows.context["ROWS"] == 3 and rows.context["RESULT"] == "a"
    assert default.error is None and default.context["RESULT"] == 1


async def test_wrong_password_says_authentication_and_never_the_password(
    database: tuple[str, str],
) -> None:
    db, user = database
    wrong = "wrong-" + PASSWORD
    async with probe_env({"MY": wrong}) as env:
        result, _ = await probe(env, "mysql", **login(db, user))
    assert result.error == "authentication failed"
    assert wrong not in repr(result) and PASSWORD not in repr(result)


async def test_port_closed_is_down() -> None:
    async with probe_env() as env:
        result, _ = await probe(env, "mysql", host="127.0.0.1", port=closed_port(), username="root")
    assert result.error == "connection refused"
    assert result.context["CONNECTED"] is False


async def test_timeout_against_a_listener_that_never_answers() -> None:
    async with silent_server() as silent, probe_env() as env:
        result, wall = await probe(
            env, "mysql", host="127.0.0.1", port=silent.port, username="root", timeout=1.0
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
        "DROP TABLE items",
        "INSERT INTO items VALUES (9, 'z')",
        "DELETE FROM items; SELECT 1",
        "COMMIT",
        "SELECT * FROM items INTO OUTFILE '/tmp/dragonops-probe-outfile.txt'",
        "EXECUTE IMMEDIATE 'DELETE FROM items'",
    ],
)
async def test_a_query_monitor_cannot_write(database: tuple[str, str], query: str) -> None:
    db, user = database
    async with probe_env({"MY": PASSWORD}) as env:
        result, _ = await probe(env, "mysql", **login(db, user, query=query))
    assert result.error is not None and result.error.startswith("query failed:"), result
    assert await table(db) == [(1, "a"), (2, "b"), (3, "c")]
    assert not Path("/tmp/dragonops-probe-outfile.txt").exists()


async def test_statement_timeout_ends_a_slow_query(database: tuple[str, str]) -> None:
    db, user = database
    async with probe_env({"MY": PASSWORD}) as env:
        result, wall = await probe(
            env, "mysql", **login(db, user, query="SELECT SLEEP(10) FROM items", timeout=1.5)
        )
    assert result.error is not None
    assert wall < 3
