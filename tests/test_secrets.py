"""Secrets: sealed at rest, write-only over the API, keys generated, rotated and pruned by the CLI.

In-process tests run the real app on a real SQLite file; the rotation and start-up tests run the
real `dragonopsd serve` and `dragonopsd keys` processes against the same state directory.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import sqlite3
import stat
import subprocess
import sys
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Client, post, token_for
from daemon import Daemon

from dragonopsd.appkeys import BUS
from dragonopsd.secrets.crypto import KEYS_ENV, KeyRing, KeyRingError, write_key_file

# Every test here that starts the app runs on SQLite and on PostgreSQL (conftest.py).
pytestmark = pytest.mark.backends

MakeClient = Callable[..., Awaitable[Client]]
PLAIN = "hunter2-PLAINTEXT-7f3a9c"


def keys_cli(
    state: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DRAGONOPS_")}
    return subprocess.run(
        [sys.executable, "-m", "dragonopsd", "keys", *args, "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean | (env or {}),
    )


def new_key_file(state: Path) -> KeyRing:
    ring = KeyRing.new(str(state / "secrets.key"))
    write_key_file(state / "secrets.key", ring, overwrite=False)
    return ring


@pytest.fixture
async def vault(tmp_path: Path, make_client: MakeClient) -> Client:
    """The real app, called as admin, with a key file in its state directory."""
    new_key_file(tmp_path)
    return await make_client()


def db_rows(path: Path, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return list(conn.execute(sql, args))


async def test_value_is_write_only_outside_reveal(vault: Client) -> None:
    sub = vault.app[BUS].subscribe(["secrets"])
    created = await post(
        vault, "/api/secrets", {"key": "DB_PASSWORD", "env": "prod", "value": PLAIN}
    )
    assert set(created) == {"id", "key", "env", "version", "description", "createdAt", "updatedAt"}
    assert created["version"] == 1
    sid = created["id"]
    default_env = await post(vault, "/api/secrets", {"key": "API_TOKEN", "value": PLAIN + "x"})
    assert default_env["env"] == "default"
    for path in ("/api/secrets", f"/api/secrets/{sid}", "/api/secrets?env=prod&q=PASS"):
        resp = await vault.get(path)
        text = await resp.text()
        assert resp.status == 200 and PLAIN not in text and '"value"' not in text, path
    page = await (await vault.get("/api/secrets?env=prod")).json()
    assert [i["key"] for i in page["items"]] == ["DB_PASSWORD"] and page["nextCursor"] is None

    revealed = await (await vault.get(f"/api/secrets/{sid}/value")).json()
    assert revealed == {
        "id": sid,
        "key": "DB_PASSWORD",
        "env": "prod",
        "version": 1,
        "value": PLAIN,
    }

    resp = await vault.patch(f"/api/secrets/{sid}", json={"value": "second ✓ value"})
    body = await resp.json()
    assert resp.status == 200 and body["version"] == 2 and "value" not in body
    resp = await vault.patch(f"/api/secrets/{sid}", json={"description": "primary db"})
    assert (await resp.json())["version"] == 2
    revealed = await (await vault.get(f"/api/secrets/{sid}/value")).json()
    assert revealed["value"] == "second ✓ value" and revealed["version"] == 2

    audit = await (await vault.get(f"/api/audit?entityId={sid}&method=GET")).json()
    assert [e["route"] for e in audit["items"]] == ["/api/secrets/{id}/value"] * 2

    assert (await vault.delete(f"/api/secrets/{sid}")).status == 204
    assert (await vault.get(f"/api/secrets/{sid}")).status == 404
    assert (await vault.get(f"/api/secrets/{sid}/value")).status == 404
    events = [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]
    assert [e.data.op for e in events] == ["created", "created", "updated", "updated", "deleted"]
    assert all(PLAIN not in repr(e.data) for e in events)


async def test_pagination_by_key(vault: Client) -> None:
    for i in range(5):
        await post(vault, "/api/secrets", {"key": f"K{i}", "env": "e", "value": "v"})
    seen: list[str] = []
    cursor = ""
    while True:
        page = await (await vault.get(f"/api/secrets?limit=2{cursor}")).json()
        seen += [i["key"] for i in page["items"]]
        if page["nextCursor"] is None:
            break
        cursor = f"&cursor={page['nextCursor']}"
    assert seen == ["K0", "K1", "K2", "K3", "K4"]
    assert (await vault.get("/api/secrets?bogus=1")).status == 422
    assert (await vault.get("/api/secrets?env=-x")).status == 422


async def test_duplicate_key_and_env_is_409(vault: Client) -> None:
    await post(vault, "/api/secrets", {"key": "TOKEN", "env": "prod", "value": "a"})
    problem = await post(vault, "/api/secrets", {"key": "TOKEN", "env": "prod", "value": "b"}, 409)
    assert "TOKEN" in problem["detail"] and "prod" in problem["detail"]
    await post(vault, "/api/secrets", {"key": "TOKEN", "env": "staging", "value": "b"})


async def test_bad_input_is_422_and_never_echoes_the_value(vault: Client) -> None:
    marker = "SECRET-MARKER-Q9"
    bodies: list[dict[str, Any]] = [
        {"key": "1starts-with-digit", "value": marker},
        {"key": "has space", "value": marker},
        {"key": "", "value": marker},
        {"key": "K" * 129, "value": marker},
        {"key": "OK", "env": "bad env", "value": marker},
        {"key": "OK", "value": ""},
        {"key": "OK", "value": marker * 4200},  # 67,200 characters
        {"key": "OK", "value": "€" * 30_000},  # under the character limit, 90,000 bytes
        {"key": "OK", "value": 12345},
        {"key": "OK", "value": marker, "extra": marker},
    ]
    for body in bodies:
        resp = await vault.post("/api/secrets", json=body)
        text = await resp.text()
        assert resp.status == 422, (body.get("key"), text[:200])
        assert marker not in text and "€€" not in text and "12345" not in text
    created = await post(vault, "/api/secrets", {"key": "OK", "value": "fine"})
    resp = await vault.patch(f"/api/secrets/{created['id']}", json={"value": marker * 5000})
    assert resp.status == 422 and marker not in await resp.text()
    page = await (await vault.get("/api/secrets")).json()
    assert [(i["key"], i["version"]) for i in page["items"]] == [("OK", 1)]


@pytest.mark.sqlite_file
async def test_database_file_never_holds_a_plaintext(
    tmp_path: Path, vault: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    values = [f"{PLAIN}-{i}" for i in range(20)]
    for i, value in enumerate(values):
        created = await post(vault, "/api/secrets", {"key": f"S{i}", "value": value})
        await vault.patch(f"/api/secrets/{created['id']}", json={"value": value + "-v2"})
    await vault.close()  # checkpoints the WAL into the main file
    files = [p for p in tmp_path.iterdir() if p.name.startswith("dragonops.db")]
    raw = b"".join(p.read_bytes() for p in files)
    assert b"hunter2" not in raw and "hunter2".encode("utf-16-le") not in raw
    rows = db_rows(tmp_path / "dragonops.db", "SELECT key_id, length(value) FROM secrets")
    assert len(rows) == 20 and all(n > 12 + 16 for _, n in rows)
    assert "hunter2" not in caplog.text


@pytest.mark.sqlite_file
async def test_ciphertext_copied_to_another_row_does_not_open(
    tmp_path: Path, vault: Client
) -> None:
    a = await post(vault, "/api/secrets", {"key": "A", "value": "value-of-a"})
    b = await post(vault, "/api/secrets", {"key": "B", "value": "value-of-b"})
    db = tmp_path / "dragonops.db"

    def copy_ciphertext() -> None:
        # BEGIN IMMEDIATE: take the write lock first (waiting out the daemon's own background
        # writes), so the read inside the UPDATE cannot be overtaken by another commit (WAL's
        # SQLITE_BUSY_SNAPSHOT, which no busy timeout retries). In a thread: the daemon runs
        # on this test's loop and must be able to finish a transaction it has open.
        conn = sqlite3.connect(db, timeout=30, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "UPDATE secrets SET value = (SELECT value FROM secrets WHERE id = ?), "
                "key_id = (SELECT key_id FROM secrets WHERE id = ?) WHERE id = ?",
                (a["id"], a["id"], b["id"]),
            )
            conn.execute("COMMIT")
        finally:
            conn.close()

    await asyncio.to_thread(copy_ciphertext)
    (blob,) = db_rows(db, "SELECT value FROM secrets WHERE id = ?", (b["id"],))[0]
    resp = await vault.get(f"/api/secrets/{b['id']}/value")
    text = await resp.text()
    assert resp.status == 500 and resp.content_type == "application/problem+json"
    assert "does not open" in text and b["id"] in text
    for leak in ("value-of-a", "value-of-b", base64.b64encode(blob).decode()[:16], blob.hex()[:16]):
        assert leak not in text
    assert (await (await vault.get(f"/api/secrets/{a['id']}/value")).json())[
        "value"
    ] == "value-of-a"


@pytest.mark.sqlite_file
async def test_first_start_creates_the_key_file(
    tmp_path: Path, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """No key file and nothing sealed yet: the first start writes one (0600) in the state
    directory, as it does the admin token, and says where; secrets work at once."""
    caplog.set_level(logging.INFO)
    client = await make_client()
    key_file = tmp_path / "secrets.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert str(key_file) in caplog.text and "created" in caplog.text
    created = await post(client, "/api/secrets", {"key": "K", "value": PLAIN})
    await client.close()
    ring = json.loads(key_file.read_text())
    assert db_rows(tmp_path / "dragonops.db", "SELECT key_id FROM secrets") == [(ring["primary"],)]
    client = await make_client()  # the second start uses the same file
    assert json.loads(key_file.read_text()) == ring
    value = await (await client.get(f"/api/secrets/{created['id']}/value")).json()
    assert value["value"] == PLAIN


async def test_a_configured_key_file_that_is_missing_answers_503(
    tmp_path: Path, make_client: MakeClient
) -> None:
    """[secrets] key_file names a file that is not there (a mount that failed, say): no new
    key is made in its place; secret routes answer 503 and the rest works."""
    client = await make_client(secrets={"key_file": "keys/ring.json"})
    for method, path in (("GET", "/api/secrets"), ("POST", "/api/secrets")):
        resp = await client.request(method, path, json={"key": "K", "value": PLAIN})
        problem = await resp.json(content_type=None)
        assert resp.status == 503, problem
        assert "key file is missing" in problem["detail"], problem
        assert "dragonopsd keys generate" in problem["detail"], problem
    assert not (tmp_path / "keys").exists() and not (tmp_path / "secrets.key").exists()
    assert (await client.get("/api/clients")).status == 200
    await post(client, "/api/clients", {"name": "still works"})
    # `keys generate` while the daemon runs: the key file is picked up without a restart.
    (tmp_path / "keys").mkdir()
    ring = KeyRing.new("k")
    await asyncio.to_thread(write_key_file, tmp_path / "keys" / "ring.json", ring, overwrite=False)
    await asyncio.sleep(1.1)
    await post(client, "/api/secrets", {"key": "K", "value": PLAIN})


async def test_a_lost_key_file_is_not_replaced(
    tmp_path: Path, make_client: MakeClient, storage_url: str
) -> None:
    """Secrets are stored and the default key file is gone: a new key would open none of
    them, so none is made; 503 until the old file is restored. On PostgreSQL, whose database
    other cores share, the core refuses to start instead, naming the key file to copy."""
    client = await make_client()
    await post(client, "/api/secrets", {"key": "K", "value": PLAIN})
    await client.close()
    key_file = tmp_path / "secrets.key"
    kept = key_file.read_bytes()
    key_file.unlink()
    if storage_url:
        with pytest.raises(KeyRingError, match=f"{key_file}: no key file"):
            await make_client()
    else:
        client = await make_client()
        resp = await client.get("/api/secrets")
        assert resp.status == 503, await resp.text()
        await client.close()
    assert not key_file.exists()
    key_file.write_bytes(kept)
    key_file.chmod(0o600)
    client = await make_client()
    assert (await client.get("/api/secrets")).status == 200


@pytest.mark.sqlite_file
async def test_keys_from_the_environment(
    tmp_path: Path, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = KeyRing.new("x"), KeyRing.new("x")
    monkeypatch.setenv(
        KEYS_ENV, f"{old.primary}:{base64.b64encode(old.keys[old.primary]).decode()}"
    )
    client = await make_client()
    created = await post(client, "/api/secrets", {"key": "K", "value": PLAIN})
    await client.close()
    both = [(r.primary, r.keys[r.primary]) for r in (new, old)]
    monkeypatch.setenv(KEYS_ENV, ",".join(f"{k}:{base64.b64encode(v).decode()}" for k, v in both))
    client = await make_client()
    value = await (await client.get(f"/api/secrets/{created['id']}/value")).json()
    assert value["value"] == PLAIN
    await post(client, "/api/secrets", {"key": "K2", "value": PLAIN})
    kids = db_rows(tmp_path / "dragonops.db", "SELECT key, key_id FROM secrets ORDER BY key")
    assert kids == [("K", old.primary), ("K2", new.primary)]


# --- Roles: needs bearer-token auth (conftest.token_for). ---------------------------------------
async def test_roles_on_secret_routes(vault: Client) -> None:
    sid = (await post(vault, "/api/secrets", {"key": "K", "value": PLAIN}))["id"]
    calls = [
        ("GET", "/api/secrets", None, "viewer"),
        ("GET", f"/api/secrets/{sid}", None, "viewer"),
        ("POST", "/api/secrets", {"key": "K2", "value": "v"}, "admin"),
        ("PATCH", f"/api/secrets/{sid}", {"description": "d"}, "admin"),
        ("GET", f"/api/secrets/{sid}/value", None, "admin"),
        ("DELETE", f"/api/secrets/{sid}", None, "admin"),
    ]
    rank = {"viewer": 0, "operator": 1, "admin": 2}
    for role in ("viewer", "operator"):
        headers = {"Authorization": f"Bearer {await token_for(vault.app, role)}"}
        for method, path, body, needs in calls:
            resp = await vault.request(method, path, json=body, headers=headers)
            text = await resp.text()
            expected = 200 if rank[role] >= rank[needs] else 403
            assert resp.status == expected, (role, method, path, text)
            assert PLAIN not in text
    resp = await vault.get(f"/api/secrets/{sid}/value", headers={"Authorization": "Bearer nope"})
    assert resp.status == 401


# --- The real processes. ---------------------------------------------------------------------
def http(d: Daemon, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    token_file = d.state_dir / "admin.token"
    if token_file.exists():
        headers["Authorization"] = f"Bearer {token_file.read_text().strip()}"
    req = urllib.request.Request(d.url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_keys_generate_writes_0600_and_refuses_to_overwrite(tmp_path: Path) -> None:
    state = tmp_path / "state"
    config = tmp_path / "d.toml"
    config.write_text('[secrets]\nkey_file = "keys/ring.json"\n')
    out = keys_cli(state, "generate", "--config", str(config))
    assert out.returncode == 0, out.stderr
    path = state / "keys" / "ring.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = json.loads(path.read_text())
    assert (
        list(doc["keys"]) == [doc["primary"]]
        and len(base64.b64decode(doc["keys"][doc["primary"]])) == 32
    )
    before = path.read_bytes()
    again = keys_cli(state, "generate", "--config", str(config))
    assert again.returncode == 1 and "already exists" in again.stderr
    assert path.read_bytes() == before and not [p for p in path.parent.iterdir() if p != path]
    env = {KEYS_ENV: f"{doc['primary']}:{doc['keys'][doc['primary']]}"}
    for action in ("rotate", "prune"):
        res = keys_cli(state, action, "--config", str(config), env=env)
        assert res.returncode == 2 and "not in use" in res.stderr, res.stderr
    assert keys_cli(tmp_path / "empty", "rotate").returncode == 1


def test_rotate_and_prune_while_the_daemon_runs(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert keys_cli(state, "generate").returncode == 0
    old = json.loads((state / "secrets.key").read_text())["primary"]
    values: dict[str, str] = {}
    with Daemon(state) as d:
        d.wait_listening()
        for i in range(450):  # more than two batches of 200
            status, body = http(
                d, "POST", "/api/secrets", {"key": f"S{i:03d}", "value": f"v{i}-{PLAIN}"}
            )
            assert status == 201, body
            values[body["id"]] = f"v{i}-{PLAIN}"
        out = keys_cli(state, "rotate")
        assert out.returncode == 0, out.stderr
        assert "re-encrypted 450/450" in out.stdout
        ring = json.loads((state / "secrets.key").read_text())
        new = ring["primary"]
        assert new != old and set(ring["keys"]) == {old, new}
        for ident, value in values.items():
            status, body = http(d, "GET", f"/api/secrets/{ident}/value")
            assert status == 200 and body["value"] == value, body
        out = keys_cli(state, "prune")
        assert out.returncode == 0 and old in out.stdout, out.stderr
        assert set(json.loads((state / "secrets.key").read_text())["keys"]) == {new}
        status, body = http(d, "POST", "/api/secrets", {"key": "AFTER", "value": "after"})
        assert status == 201
        assert keys_cli(state, "prune").stdout.startswith("nothing to prune")
        assert d.stop() == 0
        assert "hunter2" not in d.log
    db = state / "dragonops.db"
    assert db_rows(db, "SELECT DISTINCT key_id FROM secrets") == [(new,)]
    assert db_rows(db, "SELECT key FROM meta WHERE key LIKE 'keycheck:%'") == [(f"keycheck:{new}",)]
    with Daemon(state) as d:  # the pruned ring still matches the database
        d.wait_listening()
        status, body = http(d, "GET", f"/api/secrets/{next(iter(values))}/value")
        assert status == 200 and body["value"] == values[next(iter(values))]


def _refused(state: Path, *expected: str) -> None:
    with Daemon(state) as d:
        assert d.proc.wait(30) == 1, d.log
        assert "cannot start" in d.log and "Traceback" not in d.log, d.log
        for text in expected:
            assert text in d.log, d.log


def test_a_wrong_key_file_is_refused_at_start(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert keys_cli(state, "generate").returncode == 0
    key_file = state / "secrets.key"
    good = key_file.read_bytes()
    doc = json.loads(good)
    kid = doc["primary"]
    with Daemon(state) as d:
        d.wait_listening()
        assert http(d, "POST", "/api/secrets", {"key": "K", "value": PLAIN})[0] == 201
        assert d.stop() == 0

    # Same key id, other key: the stored key check does not open.
    doc["keys"][kid] = base64.b64encode(os.urandom(32)).decode()
    key_file.write_text(json.dumps(doc))
    _refused(state, kid, "key check does not open")
    # Another key id altogether: rows name a key the file does not hold.
    key_file.unlink()
    assert keys_cli(state, "generate").returncode == 0
    _refused(state, kid, "does not hold")
    # Readable by others, or not a key file at all.
    key_file.write_bytes(good)
    key_file.chmod(0o644)
    _refused(state, "chmod 600")
    key_file.chmod(0o600)
    key_file.write_text('{"primary": "k1", "keys": {"k1": "c2hvcnQ="}}')
    _refused(state, "key k1 is 5 bytes, expected 32")
    key_file.write_bytes(good)
    with Daemon(state) as d:
        d.wait_listening()
        assert d.stop() == 0
