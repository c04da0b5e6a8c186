"""Moving a single-host install to PostgreSQL with `dragonopsd db copy`, and the secrets key file
every core must share: real daemons, a real SQLite file, real PostgreSQL and Redis."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from daemon import Daemon
from pg import fresh_database, psql
from redis_helpers import SHARED_URL


def call(
    daemon: Daemon, method: str, path: str, body: Any = None, token: str | None = None
) -> tuple[int, Any, dict[str, str]]:
    """One HTTP request (as the admin unless token is given): (status, body, headers)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{daemon.url}{path}", data=data, method=method)
    req.add_header("Authorization", f"Bearer {token or daemon.token}")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null"), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null"), dict(exc.headers)


def db(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dragonopsd", "db", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def populate(d: Daemon) -> dict[str, Any]:
    """An install with inventory, a push monitor with heartbeats, a secret, a token, a channel."""
    _, c, _ = call(d, "POST", "/api/clients", {"name": "Acme"})
    _, p, _ = call(d, "POST", "/api/projects", {"clientId": c["id"], "name": "Portal"})
    _, e, _ = call(d, "POST", "/api/environments", {"projectId": p["id"], "name": "Prod"})
    status, s, _ = call(d, "POST", "/api/servers", {"environmentId": e["id"], "name": "web"})
    assert status == 201, s
    status, m, _ = call(d, "POST", "/api/monitors", {"name": "nightly", "kind": "push"})
    assert status == 201, m
    for _ in range(3):
        status, _, _ = call(d, "POST", f"/api/push/{m['pushToken']}?status=up")
        assert status == 200
    status, secret, _ = call(d, "POST", "/api/secrets", {"key": "DB_PW", "value": "hunter2✓"})
    assert status == 201, secret
    status, viewer, _ = call(d, "POST", "/api/tokens", {"name": "v", "role": "viewer"})
    assert status == 201, viewer
    hook = "https://hooks.slack.com/services/T0001/B0002/SuPeRsEcReTtOkEn"
    body = {"name": "ops", "kind": "slack", "config": {"url": hook}}
    status, channel, _ = call(d, "POST", "/api/notifications", body)
    assert status == 201, channel
    _, _, headers = call(d, "GET", f"/api/clients/{c['id']}")
    return {"client": c, "etag": headers["ETag"], "monitor": m, "secret": secret,
            "viewer": viewer, "channel": channel}  # fmt: skip


def test_db_copy_moves_a_sqlite_install_to_postgres(tmp_path: Path, redis_prefix: str) -> None:
    old = tmp_path / "old"
    with Daemon(old) as single:
        single.wait_listening()
        made = populate(single)
        deadline = time.monotonic() + 10
        while True:  # the history writer flushes in batches: wait until all three are stored
            _, beats, _ = call(single, "GET", f"/api/monitors/{made['monitor']['id']}/heartbeats")
            if len(beats["items"]) == 3 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert single.stop() == 0
    admin = (old / "admin.token").read_text().strip()
    new = tmp_path / "new"
    new.mkdir(mode=0o700)
    shutil.copy2(old / "secrets.key", new / "secrets.key")  # copy2 keeps its 0600
    with fresh_database() as url:
        secret_url = url.replace("postgres@", "postgres:s3cr3t-pw@")  # trust auth ignores it
        done = db("copy", "--from", str(old / "dragonops.db"), "--to", secret_url)
        assert done.returncode == 0, done.stderr
        assert "s3cr3t-pw" not in done.stdout + done.stderr
        counts = dict(line.split(": ") for line in done.stdout.splitlines() if ": " in line)
        assert counts["clients"] == "1 rows" and counts["secrets"] == "1 rows", done.stdout
        assert counts["history_raw"] != "0 rows" and counts["audit_log"] != "0 rows"
        assert int(psql("SELECT count(*) FROM tokens", url.rsplit("/", 1)[1])) >= 2

        again = db("copy", "--from", str(old / "dragonops.db"), "--to", secret_url)
        assert again.returncode == 2 and "not empty: table" in again.stderr, again.stderr
        assert "s3cr3t-pw" not in again.stdout + again.stderr

        env = {
            "DRAGONOPS_STORAGE__URL": url,
            "DRAGONOPS_REDIS__URL": SHARED_URL,
            "DRAGONOPS_REDIS__PREFIX": redis_prefix,
        }
        with Daemon(new, env=env) as core:
            core.wait_listening()
            cid = made["client"]["id"]
            status, got, headers = call(core, "GET", f"/api/clients/{cid}", token=admin)
            assert status == 200 and got["id"] == cid, got
            assert headers["ETag"] == made["etag"]
            mid = made["monitor"]["id"]
            status, moved, _ = call(core, "GET", f"/api/monitors/{mid}/heartbeats", token=admin)
            assert status == 200 and len(beats["items"]) == 3, beats
            assert [b for b in moved["items"] if b in beats["items"]] == beats["items"], moved
            status, history, _ = call(core, "GET", f"/api/monitors/{mid}/history", token=admin)
            assert status == 200, history
            sid = made["secret"]["id"]
            status, value, _ = call(core, "GET", f"/api/secrets/{sid}/value", token=admin)
            assert status == 200 and value["value"] == "hunter2✓", value
            viewer = made["viewer"]["token"]
            assert call(core, "GET", "/api/clients", token=viewer)[0] == 200
            status, channel, _ = call(
                core, "GET", f"/api/notifications/{made['channel']['id']}", token=admin
            )
            assert status == 200 and channel["name"] == "ops", channel
            status, audit, _ = call(core, "GET", "/api/audit", token=admin)
            assert status == 200 and audit["items"], audit
            # New rows continue after the copied ids (identities were reset).
            status, m2, _ = call(
                core, "POST", "/api/monitors", {"name": "second", "kind": "push"}, token=admin
            )
            assert status == 201, m2
            assert core.stop() == 0


def test_db_copy_refuses_a_bad_url_and_a_missing_source(tmp_path: Path) -> None:
    source = tmp_path / "none.db"
    bad = db("copy", "--from", str(source), "--to", "postgresql://u:pa55@127.0.0.1:99x/d")
    assert bad.returncode == 2 and "--to URL cannot be parsed" in bad.stderr, bad.stderr
    assert "pa55" not in bad.stderr
    other = db("copy", "--from", str(source), "--to", "mysql://u:pa55@host/d")
    assert other.returncode == 2 and "not a PostgreSQL URL" in other.stderr, other.stderr
    assert "pa55" not in other.stderr
    away = db("copy", "--from", str(source), "--to", "postgresql://u:pa55@127.0.0.1:1/d")
    assert away.returncode == 2 and "cannot open postgresql://u:***@127.0.0.1:1/d" in away.stderr
    with fresh_database() as url:
        missing = db("copy", "--from", str(source), "--to", url)
        assert missing.returncode == 2 and "no SQLite database there" in missing.stderr


def test_a_core_without_the_shared_key_file_refuses_to_start(
    tmp_path: Path, redis_prefix: str
) -> None:
    with fresh_database() as url:
        env = {
            "DRAGONOPS_STORAGE__URL": url,
            "DRAGONOPS_REDIS__URL": SHARED_URL,
            "DRAGONOPS_REDIS__PREFIX": redis_prefix,
        }
        with Daemon(tmp_path / "a", env=env) as first:
            first.wait_listening()
            status, _, _ = call(first, "POST", "/api/secrets", {"key": "K", "value": "v"})
            assert status == 201
            other = tmp_path / "b"
            done = subprocess.run(
                [sys.executable, "-m", "dragonopsd", "keys", "generate", "--state-dir", str(other)],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            with Daemon(other, env=env) as second:
                code = second.wait_exit()
                assert code != 0, second.log
                assert str(other / "secrets.key") in second.log, second.log
            # No key file at all: refused too, not a core that answers 503 for every secret.
            bare = tmp_path / "c"
            with Daemon(bare, env=env) as third:
                assert third.wait_exit() != 0, third.log
                assert f"{bare / 'secrets.key'}: no key file" in third.log, third.log
                assert not (bare / "secrets.key").exists()
            assert first.stop() == 0


def test_db_copy_names_what_the_schemas_do_not_share(tmp_path: Path) -> None:
    made = db("migrate", "--state-dir", str(tmp_path))
    assert made.returncode == 0, made.stderr
    source = tmp_path / "dragonops.db"
    with sqlite3.connect(source) as conn:
        conn.execute("ALTER TABLE clients ADD COLUMN colour TEXT")
        conn.execute("CREATE TABLE extras (id INTEGER PRIMARY KEY)")
    conn.close()
    with fresh_database() as url:
        done = db("copy", "--from", str(source), "--to", url)
        assert done.returncode == 2, done.stderr
        assert "table clients: columns differ (only in SQLite: colour" in done.stderr
        assert "table extras is not in the PostgreSQL schema" in done.stderr
        assert psql("SELECT count(*) FROM history_state", url.rsplit("/", 1)[1]) == "1"
