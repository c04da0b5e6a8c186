"""The command line and the real daemon process: db maintenance, migrations, durability, demo."""

from __future__ import annotations

import hashlib
import json
import signal
import socket
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from daemon import Daemon

from dragonopsd import __version__
from dragonopsd.store import migrations


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dragonopsd", *args], capture_output=True, text=True, timeout=60
    )


def http(d: Daemon, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """Call the daemon as its bootstrap admin."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {d.token}"}
    req = urllib.request.Request(d.url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_version_and_help() -> None:
    out = cli("version")
    assert out.returncode == 0 and out.stdout.strip() == f"dragonopsd {__version__}"
    for args in (
        ["--help"],
        ["serve", "--help"],
        ["check-config", "--help"],
        ["db", "--help"],
        ["db", "backup", "--help"],
    ):
        res = cli(*args)
        assert res.returncode == 0 and "exit codes" in res.stdout, args
    assert cli("frobnicate").returncode == 2
    assert cli("db").returncode == 2
    bad_port = cli("serve", "--port", "70000", "--state-dir", "/nonexistent")
    assert bad_port.returncode == 2 and "--port" in bad_port.stderr


def test_db_migrate_check_backup(tmp_path: Path) -> None:
    state = tmp_path / "state"
    missing = cli("db", "check", "--state-dir", str(state))
    assert missing.returncode == 1 and "no such database" in missing.stderr
    out = cli("db", "migrate", "--state-dir", str(state))
    assert out.returncode == 0 and f"version {migrations.latest()}" in out.stdout
    with Daemon(state, "--demo") as d:
        d.wait_listening()
        status, _ = http(d, "POST", "/api/clients", {"name": "Backed Up"})
        assert status == 201
        backup = tmp_path / "b" / "copy.db"
        out = cli("db", "backup", str(backup), "--state-dir", str(state))  # while it runs
        assert out.returncode == 0, out.stderr
        assert d.stop() == 0
    with sqlite3.connect(backup) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM clients")}
        assert "Backed Up" in names and len(names) == 4
    again = cli("db", "backup", str(backup), "--state-dir", str(state))
    assert again.returncode == 2 and "refusing to overwrite" in again.stderr
    check = cli("db", "check", "--state-dir", str(state))
    assert check.returncode == 0 and "quick_check: ok" in check.stdout


def test_garbage_database_file_is_a_clear_failure(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "dragonops.db").write_bytes(b"this is not a database" * 200)
    check = cli("db", "check", "--state-dir", str(state))
    assert check.returncode == 1 and "Traceback" not in check.stderr
    assert "not a database" in check.stderr
    with Daemon(state) as d:
        assert d.proc.wait(30) == 1
        assert "not a database" in d.log and "Traceback" not in d.log


def test_newer_schema_stops_the_daemon_and_touches_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert cli("db", "migrate", "--state-dir", str(state)).returncode == 0
    db = state / "dragonops.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 99")
    conn.close()  # the last close checkpoints the WAL into the main file
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    with Daemon(state) as d:
        assert d.proc.wait(30) == 1
        assert "schema version 99 is newer than this dragonopsd" in d.log
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


async def test_failing_migration_is_rolled_back_whole(tmp_path: Path) -> None:
    shipped = migrations.available()
    broken = migrations.Migration(
        len(shipped) + 1,
        "broken",
        "CREATE TABLE half_done (x INTEGER);\nINSERT INTO clients (id) VALUES ('no-name');",
    )
    conn = await aiosqlite.connect(tmp_path / "m.db", isolation_level=None)
    try:
        assert await migrations.migrate(conn, shipped) == len(shipped)
        with pytest.raises(
            migrations.MigrationError, match=rf"{len(shipped) + 1:04d}_broken failed: NOT NULL"
        ):
            await migrations.migrate(conn, [*shipped, broken])
        assert await migrations.current(conn) == len(shipped)
        async with conn.execute("SELECT name FROM sqlite_master WHERE name = 'half_done'") as cur:
            assert await cur.fetchone() is None
    finally:
        await conn.close()


def test_kill_9_never_loses_an_acknowledged_write(tmp_path: Path) -> None:
    state = tmp_path / "state"
    acknowledged = []
    with Daemon(state) as d:
        d.wait_listening()
        for i in range(40):
            status, body = http(d, "POST", "/api/clients", {"name": f"client-{i:02d}"})
            assert status == 201
            acknowledged.append(body["id"])
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait(10)
    with Daemon(state) as d:
        d.wait_listening()
        status, page = http(d, "GET", "/api/clients?limit=500")
        assert status == 200
        assert sorted(i["id"] for i in page["items"]) == sorted(acknowledged)
        assert d.stop() == 0
    assert cli("db", "check", "--state-dir", str(state)).returncode == 0


def test_demo_is_seeded_once(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with Daemon(state, "--demo") as d:
        d.wait_listening()
        _, stats = http(d, "GET", "/api/stats/dashboard")
        assert stats["clients"] == 3 and 10 <= stats["servers"] <= 20
        _, projects = http(d, "GET", "/api/projects?include=environments")
        envs = {e["name"] for p in projects["items"] for e in p["environments"]}
        assert envs == {"Production", "Staging"}
        assert all(p["technology"] for p in projects["items"])
        first = projects["items"][0]["clientId"]
        assert http(d, "DELETE", f"/api/clients/{first}?cascade=true")[0] == 204
        # demo monitors that work offline: the daemon's own API and port, and a push monitor
        _, monitors = http(d, "GET", "/api/monitors")
        kinds = sorted(m["kind"] for m in monitors["items"])
        assert kinds == ["http", "push", "tcp"]
        api = next(m for m in monitors["items"] if m["kind"] == "http")
        assert api["url"] == f"{d.url}/healthz"
        status, report = http(d, "POST", f"/api/monitors/{api['id']}/check")
        assert status == 200 and report["ok"] and report["status"] == "up"
        assert d.stop() == 0
    with Daemon(state, "--demo") as d:
        d.wait_listening()
        _, stats = http(d, "GET", "/api/stats/dashboard")
        assert stats["clients"] == 2  # not re-seeded, and the delete stuck
        assert stats["monitors"]["total"] == 3  # nor the monitors
        assert d.stop() == 0


def test_port_in_use_is_a_clear_failure(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "dragonopsd",
                "serve",
                "--port",
                str(port),
                "--state-dir",
                str(tmp_path / "s"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert out.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in out.stderr and "Traceback" not in out.stderr


def test_json_logs_from_an_env_override(tmp_path: Path) -> None:
    with Daemon(tmp_path / "state", env={"DRAGONOPS_LOG__FORMAT": "json"}) as d:
        d.wait_listening()
        assert d.stop() == 0
        lines = [json.loads(line) for line in d.log.splitlines() if line.strip()]
    assert any("listening on" in rec["msg"] for rec in lines)
    assert all({"ts", "level", "logger", "msg"} <= rec.keys() for rec in lines)
