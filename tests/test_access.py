"""Failure limiting and the audit trail through the real app: who is limited, what is written.

A credential that checks out always passes; failures, a missing header included, are limited
per client address; anonymous refusals are counted in /metrics, not written to the audit log;
entries ride the change's own transaction and never hold a token-bearing path.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import Client, post
from websockets.asyncio.client import connect
from ws_helpers import WAIT, frame, ws_url

from dragonopsd.appkeys import DATABASE
from dragonopsd.secrets.crypto import KeyRing, write_key_file
from dragonopsd.store import migrations
from dragonopsd.store.db import Database

pytestmark = pytest.mark.backends

MakeClient = Callable[..., Awaitable[Client]]
BAD = {"Authorization": "Bearer dro_not-a-real-token"}


async def audit_items(client: Client, query: str = "") -> list[dict[str, Any]]:
    resp = await client.get(f"/api/audit?limit=500&{query}")
    assert resp.status == 200, await resp.text()
    items: list[dict[str, Any]] = (await resp.json())["items"]
    return items


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}} "):  # prometheus_client sorts the labels
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_a_valid_credential_passes_while_its_address_is_limited(
    make_client: MakeClient,
) -> None:
    client = await make_client(auth={"failure_limit": 3, "failure_window": 60})
    for _ in range(3):
        assert (await client.get("/api/clients", headers=BAD)).status == 401
    blocked = await client.get("/api/clients", headers=BAD)
    assert blocked.status == 429 and 1 <= int(blocked.headers["Retry-After"]) <= 60
    # The same address (behind a proxy: everyone) still gets in with a credential that works.
    assert (await client.get("/api/clients")).status == 200
    assert (await post(client, "/api/clients", {"name": "still works"}))["name"] == "still works"
    ws = await client.ws_connect("/api/ws")  # the session's valid Authorization header
    await ws.send_json({"op": "ping"})
    assert (await frame(ws))["data"] == {"op": "ping"}
    await ws.close()
    viewer = await post(client, "/api/tokens", {"name": "v", "role": "viewer"})
    async with connect(ws_url(client)) as sock:  # the first-frame login passes too
        await sock.send(json.dumps({"op": "auth", "token": viewer["token"]}))
        assert json.loads(await asyncio.wait_for(sock.recv(), WAIT))["type"] == "ack"
    # Failing requests stay limited, whatever shape they fail in.
    assert (await client.get("/api/clients", headers={"Authorization": ""})).status == 429
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/api/ws", headers=BAD)
    assert refused.value.status == 429
    assert (await client.get("/healthz")).status == 200  # public routes are not limited


async def test_the_metrics_token_passes_while_its_address_is_limited(
    make_client: MakeClient,
) -> None:
    client = await make_client(metrics={"token": "scrape-me"}, auth={"failure_limit": 2})
    for _ in range(2):
        assert (await client.get("/metrics", headers={"Authorization": "Bearer no"})).status == 401
    assert (await client.get("/metrics", headers={"Authorization": "Bearer no"})).status == 429
    ok = await client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert ok.status == 200


async def test_anonymous_failures_are_limited_counted_and_never_audited(
    make_client: MakeClient,
) -> None:
    client = await make_client(auth={"failure_limit": 5, "failure_window": 60})
    anonymous = aiohttp.ClientSession()  # no Authorization header at all
    long_id = "x" * 7000
    try:

        async def one() -> int:
            url = client.make_url(f"/api/clients/{long_id}")
            async with anonymous.patch(url, json={"name": "y"}) as resp:
                return resp.status

        statuses = await asyncio.gather(*(one() for _ in range(300)))
        # A push with a made-up token is as anonymous as a missing header.
        async with anonymous.post(client.make_url(f"/api/push/{long_id}")) as resp:
            push_status = resp.status
    finally:
        await anonymous.close()
    assert sorted(set(statuses)) == [401, 429] and statuses.count(401) == 5
    assert push_status == 404
    assert await audit_items(client) == []  # not one row for any of the 301 calls
    text = await (await client.get("/metrics")).text()
    family = "dragonops_http_unaudited_refusals_total"
    assert metric(text, family, route="/api/clients/{id}", code="401") == 5
    assert metric(text, family, route="/api/clients/{id}", code="429") == 295
    assert metric(text, family, route="/api/push/{token}", code="404") == 1
    # Whoever is identified is audited, with the path and id cut short.
    resp = await client.patch(f"/api/clients/{long_id}", json={"name": "y"})
    assert resp.status == 404
    (entry,) = await audit_items(client)
    assert entry["status"] == 404 and entry["outcome"] == "failed"
    assert len(entry["path"]) <= 512 and len(entry["entityId"]) <= 200
    assert entry["route"] == "/api/clients/{id}" and entry["client"] == "127.0.0.1"


async def test_push_tokens_never_reach_the_audit_log(client: Client) -> None:
    monitor = await post(client, "/api/monitors", {"name": "nightly", "kind": "push"})
    token = monitor["pushToken"]
    assert (await client.post(f"/api/push/{token}?status=up")).status == 200
    entries = await audit_items(client, "entity=monitors")
    assert [(e["method"], e["route"], e["entityId"]) for e in entries] == [
        ("POST", "/api/push/{token}", monitor["id"]),
        ("POST", "/api/monitors", monitor["id"]),
    ]
    push = entries[0]
    assert push["path"] == "/api/push/{token}" and push["actorKind"] == "anonymous"
    assert token not in json.dumps(entries)
    assert (await client.post("/api/push/not-a-token")).status == 404
    assert len(await audit_items(client, "entity=monitors")) == 2


async def test_an_upgrade_scrubs_tokens_already_in_the_audit_log(tmp_path: Path) -> None:
    """Entries written before this release held whole paths: the migration keeps templates."""
    path = tmp_path / "old.db"
    old = [m for m in migrations.available() if m.version <= 8]
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for mig in old:
            conn.executescript(f"BEGIN;\n{mig.sql}\n;PRAGMA user_version = {mig.version};COMMIT;")
        rows = [
            ("/api/push/{token}", "/api/push/s3cr3t-push-token", None),
            ("/api/clients/{id}", "/api/clients/" + "z" * 7000, "z" * 7000),
        ]
        for route, raw, ident in rows:
            conn.execute(
                "INSERT INTO audit_log (at, actor, actor_kind, role, method, route, path, "
                "entity, entity_id, request_id, status, outcome) VALUES "
                "('2025-01-01T00:00:00.000Z', 'anonymous:x', 'anonymous', NULL, 'POST', ?, ?, "
                "'x', ?, 'r', 404, 'failed')",
                (route, raw, ident),
            )
    finally:
        conn.close()
    db = Database(path)  # the store's own open runs the migrations
    await db.open()
    try:
        async with db.read() as reader:
            found = await reader.execute_fetchall(
                "SELECT path, length(path), length(entity_id), client FROM audit_log ORDER BY id"
            )
    finally:
        await db.close()
    (push, long_row) = [tuple(r) for r in found]
    assert push == ("/api/push/{token}", 17, None, None)
    assert long_row[1] == 512 and long_row[2] == 200


CREATES = [
    ("/api/clients", "clients", {"name": "atomic"}),
    ("/api/secrets", "secrets", {"key": "API_TOKEN", "value": "s3cr3t"}),
    ("/api/monitors", "monitors", {"name": "beat", "kind": "push"}),
    ("/api/tokens", "tokens", {"name": "ci", "role": "viewer"}),
    (
        "/api/notifications",
        "notification_channels",
        {"name": "ops", "kind": "webhook", "config": {"url": "https://hooks.example/x"}},
    ),
    (
        "/api/maintenance",
        "maintenance_windows",
        {
            "name": "patch",
            "kind": "recurring",
            "cron": "0 2 * * 0",
            "duration": 3600,
            "scope": {"all": True},
        },
    ),
]


# SQLite only: the trace is read as one serial stream of transactions, which holds for SQLite's
# single writer connection; PostgreSQL writes run concurrently on a pool and interleave.
@pytest.mark.sqlite_file
@pytest.mark.parametrize(("path", "table", "body"), CREATES)
async def test_a_write_and_its_audit_entry_commit_in_one_transaction(
    make_client: MakeClient, tmp_path: Path, path: str, table: str, body: dict[str, Any]
) -> None:
    ring = KeyRing.new(str(tmp_path / "secrets.key"))  # so /api/secrets can seal
    write_key_file(tmp_path / "secrets.key", ring, overwrite=False)
    client = await make_client()
    statements: list[str] = []
    db = client.app[DATABASE]
    await db.set_trace_callback(statements.append)
    try:
        created = await post(client, path, body)
    finally:
        await db.set_trace_callback(None)
    created = created.get("meta", created)  # POST /api/tokens: {token, meta}
    # Writes are serialised on one connection, so the trace's write statements fall into
    # transactions (background ones too: samples, rollups); readers never write.
    writes = [
        s.split("(")[0].strip()
        for s in statements
        if s.startswith(("BEGIN", "INSERT", "COMMIT", "UPDATE", "DELETE"))
    ]
    insert = writes.index(f"INSERT INTO {table}")
    begin = max(i for i in range(insert) if writes[i] == "BEGIN IMMEDIATE")
    commit = writes.index("COMMIT", insert)
    assert "INSERT INTO audit_log" in writes[begin:commit], statements
    assert "INSERT INTO audit_log" not in writes[commit:]
    assert "UPDATE audit_log" not in writes
    (entry,) = await audit_items(client)
    assert entry["entityId"] == created["id"] and entry["status"] == 201
    assert entry["path"] == path


async def test_a_flood_of_unknown_tokens_reads_the_store_a_bounded_number_of_times(
    client: Client,
) -> None:
    """Unknown tokens are looked up before refusal, but a flood shares the lookups."""
    statements: list[str] = []
    db = client.app[DATABASE]
    await db.set_trace_callback(statements.append)
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def one(i: int) -> int:
        headers = {"Authorization": f"Bearer dro_random-guess-{i}"}
        async with client.get("/api/clients", headers=headers) as resp:
            return resp.status

    try:
        statuses = await asyncio.gather(*(one(i) for i in range(300)))
    finally:
        await db.set_trace_callback(None)
    elapsed = loop.time() - started
    assert set(statuses) <= {401, 429}
    reads = [s for s in statements if "FROM meta" in s]
    # One read per 0.1 s at most, however many callers asked (tokens.py FRESH_GAP).
    assert 1 <= len(reads) <= elapsed / 0.1 + 2, (len(reads), elapsed)
