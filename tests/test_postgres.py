"""The PostgreSQL store as an operator meets it: `dragonopsd serve` and `dragonopsd db` on a
real server, kill -9, two cores migrating at once, and a database that goes away."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from signal import SIGKILL
from typing import Any

import pytest
from conftest import Client
from daemon import Daemon
from pg import fresh_database, psql
from redis_helpers import SHARED_URL

from dragonopsd.config import HistoryConfig
from dragonopsd.store import migrations
from dragonopsd.store.history import Heartbeat, HistoryWriter
from dragonopsd.store.pgconn import COPY_ROWS
from dragonopsd.store.postgres import PostgresDatabase


def call(daemon: Daemon, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One HTTP request to the daemon as its admin; (status, decoded body)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{daemon.url}{path}", data=data, method=method)
    req.add_header("Authorization", f"Bearer {daemon.token}")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def test_serve_on_postgres_keeps_acknowledged_writes_through_kill_9(
    tmp_path: Path, redis_prefix: str
) -> None:
    with fresh_database() as url:
        env = {
            "DRAGONOPS_STORAGE__URL": url,
            "DRAGONOPS_REDIS__URL": SHARED_URL,
            "DRAGONOPS_REDIS__PREFIX": redis_prefix,
        }
        state = tmp_path / "state"
        with Daemon(state, env=env) as first:
            first.wait_listening()
            _, c = call(first, "POST", "/api/clients", {"name": "Acme"})
            _, p = call(first, "POST", "/api/projects", {"clientId": c["id"], "name": "Portal"})
            status, e = call(
                first, "POST", "/api/environments", {"projectId": p["id"], "name": "Prod"}
            )
            assert status == 201, e
            status, s = call(
                first, "POST", "/api/servers", {"environmentId": e["id"], "name": "web"}
            )
            assert status == 201, s
            first.signal(SIGKILL)
            first.wait_exit()
        assert not (state / "dragonops.db").exists()  # nothing went to a SQLite file
        with Daemon(state, env=env) as second:
            second.wait_listening()
            status, got = call(
                second, "GET", f"/api/clients/{c['id']}?include=projects.environments.servers"
            )
            assert status == 200, got
            servers = got["projects"][0]["environments"][0]["servers"]
            assert [x["id"] for x in servers] == [s["id"]]
            status, ready = call(second, "GET", "/readyz")
            assert status == 200 and ready["checks"]["store"] == "ok", ready
            assert second.stop() == 0


def test_serve_on_postgres_without_redis_refuses_naming_both_keys(tmp_path: Path) -> None:
    with fresh_database() as url:
        with Daemon(tmp_path / "state", env={"DRAGONOPS_STORAGE__URL": url}) as daemon:
            assert daemon.wait_exit() == 2
        assert "[storage] url" in daemon.log and "[redis] url" in daemon.log, daemon.log


def dragonopsd(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dragonopsd", *args],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip


def test_db_migrate_check_and_backup_on_postgres(tmp_path: Path) -> None:
    with fresh_database() as url:
        # A password in the URL (trust auth ignores it) is never printed.
        parts = url.split("@")
        secret_url = f"{parts[0]}:s3cr3t-pw@{parts[1]}"
        env = {"PATH": "/usr/bin:/bin", "DRAGONOPS_STORAGE__URL": secret_url}
        state = ["--state-dir", str(tmp_path / "state")]
        done = dragonopsd("db", "check", *state, env=env)
        assert done.returncode == 1 and "schema version: 0" in done.stdout, done
        done = dragonopsd("db", "migrate", *state, env=env)
        assert done.returncode == 0, done
        assert f"schema at version {migrations.latest()}" in done.stdout
        done = dragonopsd("db", "check", *state, env=env)
        assert done.returncode == 0 and "quick_check: ok" in done.stdout, done
        backup = tmp_path / "backup.dump"
        done = dragonopsd("db", "backup", str(backup), *state, env=env)
        assert done.returncode == 0 and "pg_dump" in done.stdout, done
        assert backup.stat().st_size > 0 and backup.stat().st_mode & 0o777 == 0o600
        for out in (done.stdout, done.stderr):
            assert "s3cr3t-pw" not in out
        done = dragonopsd("check-config", *state, env={**env, "DRAGONOPS_REDIS__URL": SHARED_URL})
        assert done.returncode == 0 and "***" in done.stdout and "s3cr3t-pw" not in done.stdout


def test_migrations_have_the_same_numbers_on_both_engines() -> None:
    sqlite = [(m.version, m.name) for m in migrations.available("sqlite")]
    assert [(m.version, m.name) for m in migrations.available("postgres")] == sqlite


async def test_two_cores_starting_together_migrate_once() -> None:
    with fresh_database() as url:
        cores = [PostgresDatabase(url), PostgresDatabase(url)]
        await asyncio.gather(*(db.open() for db in cores))
        try:
            assert [db.schema_version for db in cores] == [migrations.latest()] * 2
            name = url.rsplit("/", 1)[1]
            applied = psql("SELECT count(*), count(DISTINCT version) FROM schema_migrations", name)
            assert applied == f"{migrations.latest()}|{migrations.latest()}"
        finally:
            for db in cores:
                await db.close()


@pytest.mark.parametrize("storage_url", ["postgres"], indirect=True)
async def test_a_lost_database_is_a_503_problem_and_comes_back(
    make_client: Any, storage_url: str
) -> None:
    client: Client = await make_client()
    name = storage_url.rsplit("/", 1)[1]
    psql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
    try:
        resp = await client.post("/api/clients", json={"name": "Acme"})
        body = await resp.json(content_type=None)
        assert resp.status == 503, body
        assert resp.content_type == "application/problem+json"
        assert "cannot be reached" in body["detail"] and "Traceback" not in json.dumps(body)
        resp = await client.get("/readyz")
        assert resp.status == 503 and (await resp.json())["checks"]["store"] == "down"
    finally:
        psql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    resp = await client.post("/api/clients", json={"name": "Acme"})
    assert resp.status == 201, await resp.text()
    resp = await client.get("/readyz")
    assert (await resp.json())["checks"]["store"] == "ok"


async def test_a_large_history_batch_goes_through_copy_and_upserts() -> None:
    """Batches from COPY_ROWS rows are COPYed, then upserted: a retried flush rewrites its rows,
    and a batch holding one key twice (which one upsert may not touch twice) still lands."""
    with fresh_database() as url:
        db = PostgresDatabase(url)
        await db.open()
        try:
            writer = HistoryWriter(db, HistoryConfig())
            for i in range(COPY_ROWS * 2):
                writer.submit(Heartbeat(i % 7, 1_700_000_000 + i, 1, 5.0, None))
            statements: list[str] = []
            await db.set_trace_callback(statements.append)
            assert await writer.flush() == COPY_ROWS * 2
            await db.set_trace_callback(None)
            for i in range(COPY_ROWS):  # the same keys again, now down, plus one key twice
                writer.submit(Heartbeat(i % 7, 1_700_000_000 + i, 0, None, "down"))
            writer.submit(Heartbeat(0, 1_700_000_000, 0, None, "twice"))
            assert await writer.flush() == COPY_ROWS + 1
            name = url.rsplit("/", 1)[1]
            counts = psql("SELECT count(*), sum(status) FROM history_raw", name)
            assert counts == f"{COPY_ROWS * 2}|{COPY_ROWS}"
            assert (
                psql(
                    "SELECT message FROM history_raw WHERE monitor = 0 AND at = 1700000000000", name
                )
                == "twice"
            )
        finally:
            await db.close()
        # Through COPY: no statement per row was traced for the first flush.
        assert sum("INSERT INTO history_raw" in s for s in statements) == 1
