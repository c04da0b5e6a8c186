"""The command line and the real daemon process: db maintenance, migrations, durability, demo."""

from __future__ import annotations

import hashlib
import json
import signal
import socket
import sqlite3
import stat
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
        ["db", "copy", "--help"],
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
    assert missing.returncode == 2 and "no database" in missing.stderr
    out = cli("db", "migrate", "--state-dir", str(state))
    assert out.returncode == 0 and f"version {migrations.latest()}" in out.stdout
    with Daemon(state, "--demo") as d:
        d.wait_listening()
        status, _ = http(d, "POST", "/api/clients", {"name": "Backed Up"})
        assert status == 201
        (tmp_path / "b").mkdir()
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


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_state_is_private_and_backups_go_where_told(tmp_path: Path) -> None:
    """The database holds token hashes, the audit log and sealed secrets: the state directory
    is 0700 and the database, its -wal/-shm and backups 0600, whatever the umask. A backup
    into a directory that does not exist fails (exit 2, naming it) instead of creating it."""
    state = tmp_path / "state"
    with Daemon(state) as d:
        d.wait_listening()
        assert http(d, "POST", "/api/clients", {"name": "Private"})[0] == 201
        assert mode(state) == 0o700
        for name in ("dragonops.db", "dragonops.db-wal", "dragonops.db-shm", "admin.token"):
            assert mode(state / name) == 0o600, name
        backup = tmp_path / "copy.db"
        out = cli("db", "backup", str(backup), "--state-dir", str(state))
        assert out.returncode == 0, out.stderr
        assert mode(backup) == 0o600
        nowhere = tmp_path / "no" / "such" / "dir" / "copy.db"
        out = cli("db", "backup", str(nowhere), "--state-dir", str(state))
        assert out.returncode == 2 and str(nowhere.parent) in out.stderr, out.stderr
        assert "Traceback" not in out.stderr and not (tmp_path / "no").exists()
        assert d.stop() == 0
    made = tmp_path / "made"
    assert cli("db", "migrate", "--state-dir", str(made)).returncode == 0
    assert mode(made) == 0o700 and mode(made / "dragonops.db") == 0o600


def test_a_second_daemon_on_the_same_state_refuses_to_start(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with Daemon(state) as first:
        first.wait_listening()
        with Daemon(state) as second:
            assert second.wait_exit(30) == 1, second.log
            assert str(state) in second.log and str(first.proc.pid) in second.log, second.log
            assert "already" in second.log and "--state-dir" in second.log, second.log
            assert "Traceback" not in second.log and "locked" not in second.log, second.log
        assert http(first, "GET", "/api/clients")[0] == 200  # the first one never noticed
        first.kill()  # kill -9: the lock goes with the process
        with Daemon(state) as third:
            third.wait_listening()
            assert third.stop() == 0
