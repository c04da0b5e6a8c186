"""Credentials in monitors: masked for viewers, and kept out of the monitor altogether with
``${secret:NAME}`` references that the probe resolves from the secrets store."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from conftest import Client, post, token_for

from dragonopsd.secrets.crypto import KeyRing, write_key_file

# Every test here that starts the app runs on SQLite and on PostgreSQL (conftest.py).
pytestmark = pytest.mark.backends

MakeClient = Callable[..., Awaitable[Client]]
TOKEN = "tok-s3cr3t-4417"
PASSWORD = "p@ss/w:rd-8812"


async def recorder(aiohttp_server: Any) -> tuple[str, list[dict[str, str]]]:
    """A loopback server that keeps the headers of every request; its base URL."""
    seen: list[dict[str, str]] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/check", handle)
    server = await aiohttp_server(app)
    return f"127.0.0.1:{server.port}", seen


async def as_viewer(client: Client) -> dict[str, str]:
    return {"Authorization": f"Bearer {await token_for(client.app, 'viewer')}"}


async def test_viewers_never_read_credentials_stored_in_monitors(client: Client) -> None:
    basic = await post(
        client,
        "/api/monitors",
        {
            "name": "site",
            "kind": "http",
            "enabled": False,
            "url": "http://admin:hunter2-url@example.test:8080/health?apikey=k-991&verbose",
            "method": "POST",
            "body": '{"password": "hunter2-body"}',
            "headers": {"Authorization": "Bearer hunter2-header", "X-Env": "prod"},
        },
    )
    push = await post(client, "/api/monitors", {"name": "backup", "kind": "push"})
    viewer = await as_viewer(client)
    listed = await (await client.get("/api/monitors", headers=viewer)).text()
    one = await (await client.get(f"/api/monitors/{basic['id']}", headers=viewer)).json()
    other = await (await client.get(f"/api/monitors/{push['id']}", headers=viewer)).json()
    for text in (listed, str(one), str(other)):
        for secret in ("hunter2", "k-991", "admin:", push["pushToken"]):
            assert secret not in text
    assert one["url"] == "http://****@example.test:8080/health?apikey=****&verbose"
    assert one["headers"] == {"Authorization": "****", "X-Env": "****"}
    assert one["body"] == "****" and other["pushToken"] == "****"
    # Operators (and admins) manage monitors, so they read them whole.
    operator = {"Authorization": f"Bearer {await token_for(client.app, 'operator')}"}
    whole = await (await client.get(f"/api/monitors/{basic['id']}", headers=operator)).json()
    assert whole["headers"]["Authorization"] == "Bearer hunter2-header"
    assert whole["url"].startswith("http://admin:hunter2-url@")


async def test_secret_references_are_resolved_at_probe_time_and_never_stored(
    tmp_path: Path, make_client: MakeClient, aiohttp_server: Any
) -> None:
    write_key_file(
        tmp_path / "secrets.key", KeyRing.new(str(tmp_path / "secrets.key")), overwrite=False
    )
    client = await make_client()
    await post(client, "/api/secrets", {"key": "API_TOKEN", "env": "prod", "value": TOKEN})
    await post(client, "/api/secrets", {"key": "SITE_PASS", "value": PASSWORD})
    where, seen = await recorder(aiohttp_server)
    m = await post(
        client,
        "/api/monitors",
        {
            "name": "with secrets",
            "kind": "http",
            "enabled": False,
            "url": f"http://probe:${{secret:SITE_PASS}}@{where}/check",
            "headers": {"X-Token": "Bearer ${secret:prod/API_TOKEN}"},
        },
    )
    assert m["headers"] == {"X-Token": "Bearer ${secret:prod/API_TOKEN}"}
    report = await (await client.post(f"/api/monitors/{m['id']}/check")).json()
    assert report["ok"] is True, report
    (got,) = seen
    assert got["X-Token"] == f"Bearer {TOKEN}"
    assert (
        got["Authorization"] == "Basic " + base64.b64encode(f"probe:{PASSWORD}".encode()).decode()
    )
    missing = await post(
        client,
        "/api/monitors",
        {
            "name": "dangling",
            "kind": "http",
            "enabled": False,
            "url": f"http://{where}/check",
            "headers": {"X-Token": "${secret:NOPE}"},
        },
    )
    report = await (await client.post(f"/api/monitors/{missing['id']}/check")).json()
    assert report["ok"] is False and report["error"] == "secret 'NOPE' does not exist"
    assert len(seen) == 1  # nothing was sent without its secret
    await client.close()  # checkpoints the WAL into the main file
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("dragonops.db"))
    assert TOKEN.encode() not in raw and PASSWORD.encode() not in raw


async def test_secret_references_are_checked_where_they_are_written(client: Client) -> None:
    base = {"name": "x", "kind": "http", "enabled": False}
    cases = [
        (
            {"url": "http://h.test/", "headers": {"X-Token": "${secret:not a name}"}},
            "$.headers.X-Token",
        ),
        ({"url": "http://h.test/${secret:KEY}"}, "$.url"),
        ({"url": "http://h.test/?t=${secret:KEY}"}, "$.url"),
        ({"url": "http://h.test/", "method": "POST", "body": "${secret:KEY}"}, "$.body"),
    ]
    for fields, field in cases:
        resp = await client.post("/api/monitors", json={**base, **fields})
        body = await resp.json()
        assert resp.status == 422 and body["errors"][0]["field"] == field, (fields, body)
    assert (await (await client.get("/api/monitors")).json())["items"] == []
