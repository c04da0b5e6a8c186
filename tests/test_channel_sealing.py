"""Notification channel credentials sealed with the secrets key ring: never in the database
file, sealed on the first start with a key, re-sealed by `dragonopsd keys rotate`, and still
delivered (webhook signature, chat URL, SMTP login) through real receivers on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Client, post
from notify_helpers import (
    SIGNING_SECRET,
    Mailbox,
    Receiver,
    receiver_fixture,  # noqa: F401 - the `receiver` fixture
    smtp_server,
)

from dragonopsd.secrets.crypto import KeyRing, KeyRingError, read_key_file, write_key_file

# Every test here that starts the app runs on SQLite and on PostgreSQL (conftest.py).
pytestmark = pytest.mark.backends

MakeClient = Callable[..., Awaitable[Client]]
HOOK_TOKEN = "T0001/B0002/hooktoken-5d1e"
SMTP_PASSWORD = "smtp-pass-123"  # the one notify_helpers' server accepts
CREDENTIALS = (HOOK_TOKEN, SIGNING_SECRET, SMTP_PASSWORD)


def new_key_file(state: Path) -> KeyRing:
    ring = KeyRing.new(str(state / "secrets.key"))
    write_key_file(state / "secrets.key", ring, overwrite=False)
    return ring


def raw_database(state: Path) -> bytes:
    return b"".join(p.read_bytes() for p in state.iterdir() if p.name.startswith("dragonops.db"))


def channel_keys(state: Path) -> list[str | None]:
    with sqlite3.connect(state / "dragonops.db") as conn:
        rows = conn.execute("SELECT key_id FROM notification_channels ORDER BY name")
        return [r[0] for r in rows]


def keys_cli(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DRAGONOPS_")}
    return subprocess.run(
        [sys.executable, "-m", "dragonopsd", "keys", *args, "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean,
    )


async def make_channels(client: Client, receiver: Receiver, smtp_port: int) -> dict[str, Any]:
    hook = {"url": receiver.url("/hook"), "secret": SIGNING_SECRET}
    slack = {"url": receiver.url(f"/services/{HOOK_TOKEN}")}
    mail = {
        "host": "127.0.0.1",
        "port": smtp_port,
        "security": "none",
        "username": "alerts",
        "password": SMTP_PASSWORD,
        "from": "dragonops@example.com",
        "to": ["oncall@example.com"],
    }
    made = {}
    for kind, config in (("webhook", hook), ("slack", slack), ("email", mail)):
        made[kind] = await post(
            client, "/api/notifications", {"name": f"{kind} ch", "kind": kind, "config": config}
        )
    return made


async def deliver_all(client: Client, channels: dict[str, Any]) -> None:
    for kind, ch in channels.items():
        result = await (await client.post(f"/api/notifications/{ch['id']}/test")).json()
        assert result["ok"] is True, (kind, result)


@pytest.fixture
async def mailbox() -> Any:
    box = Mailbox()
    server = smtp_server(box)
    await asyncio.to_thread(server.start)
    box.port = server.port  # type: ignore[attr-defined]
    yield box
    await asyncio.to_thread(server.stop)


@pytest.mark.sqlite_file
async def test_credentials_are_sealed_at_rest_and_still_delivered(
    tmp_path: Path, make_client: MakeClient, receiver: Receiver, mailbox: Any
) -> None:
    ring = new_key_file(tmp_path)
    client = await make_client()
    channels = await make_channels(client, receiver, mailbox.port)
    await deliver_all(client, channels)
    assert receiver.bad_signatures == 0 and len(receiver.at(f"/services/{HOOK_TOKEN}")) == 1
    assert mailbox.logins == [(b"alerts", SMTP_PASSWORD.encode())]
    # A PATCH that keeps the credentials re-seals them; the masked URL round-trips.
    slack = channels["slack"]
    resp = await client.patch(
        f"/api/notifications/{slack['id']}", json={"name": "slack 2", "config": slack["config"]}
    )
    assert resp.status == 200
    await deliver_all(client, {"slack": slack})
    assert len(receiver.at(f"/services/{HOOK_TOKEN}")) == 2
    await client.close()  # checkpoints the WAL into the main file
    raw = raw_database(tmp_path)
    for credential in CREDENTIALS:
        assert credential.encode() not in raw, credential
    assert channel_keys(tmp_path) == [ring.primary] * 3


@pytest.mark.sqlite_file
async def test_rows_in_clear_are_sealed_on_the_first_start_with_a_key(
    tmp_path: Path, make_client: MakeClient, receiver: Receiver, mailbox: Any
) -> None:
    # A key file named in the config is never created for you: until it exists, rows are
    # stored in clear, as they were before channels were sealed.
    named = {"key_file": "secrets.key"}
    client = await make_client(secrets=named)
    channels = await make_channels(client, receiver, mailbox.port)
    await client.close()
    assert channel_keys(tmp_path) == [None] * 3
    assert HOOK_TOKEN.encode() in raw_database(tmp_path)
    ring = new_key_file(tmp_path)
    client = await make_client(secrets=named)
    assert channel_keys(tmp_path) == [ring.primary] * 3
    await deliver_all(client, channels)
    await client.close()
    raw = raw_database(tmp_path)
    for credential in CREDENTIALS:
        assert credential.encode() not in raw, credential


@pytest.mark.sqlite_file
async def test_rotation_reseals_channels_and_the_key_guard_covers_them(
    tmp_path: Path, make_client: MakeClient, receiver: Receiver, mailbox: Any
) -> None:
    old = new_key_file(tmp_path)
    client = await make_client()
    channels = await make_channels(client, receiver, mailbox.port)
    await client.close()
    # Only channels use the old key (no secret exists): prune must still keep it.
    rotated = old.rotated()
    write_key_file(tmp_path / "secrets.key", rotated, overwrite=True)
    assert keys_cli(tmp_path, "prune").stdout.startswith("nothing to prune")
    out = keys_cli(tmp_path, "rotate")
    assert out.returncode == 0, out.stderr
    new = read_key_file(tmp_path / "secrets.key").primary
    assert channel_keys(tmp_path) == [new] * 3
    out = keys_cli(tmp_path, "prune")
    assert out.returncode == 0 and old.primary in out.stdout, out.stdout + out.stderr
    assert set(read_key_file(tmp_path / "secrets.key").keys) == {new}
    client = await make_client()
    await deliver_all(client, channels)
    await client.close()
    for credential in CREDENTIALS:
        assert credential.encode() not in raw_database(tmp_path), credential
    # A key file without the channels' key is refused at start, like one missing a secret's.
    (tmp_path / "secrets.key").unlink()
    new_key_file(tmp_path)
    with pytest.raises(KeyRingError, match=new):
        await make_client()
    assert json.loads((tmp_path / "secrets.key").read_text())["primary"] != new
