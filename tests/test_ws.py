"""The websocket hub over real sockets: authentication, Origin, frames and bad input.

Clients are aiohttp's websocket client (header auth, from the test client's admin session) and
the ``websockets`` library (no headers: the browser's way, a first ``auth`` frame).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
import websockets
from conftest import Client, post, token_for
from websockets.asyncio.client import connect
from ws_helpers import WAIT, closed_with, frame, quick, subscribe, until_ack, ws_url

from dragonopsd.appkeys import AUTHENTICATOR, BUS, HUB

pytestmark = pytest.mark.backends

MakeClient = Callable[..., Awaitable[Client]]


async def test_a_plain_get_is_told_to_upgrade(client: Client) -> None:
    resp = await client.get("/api/ws", headers={"Authorization": ""})
    assert resp.status == 400
    assert "upgrade" in (await resp.json(content_type="application/problem+json"))["detail"]


async def test_bad_header_token_is_401_before_the_upgrade(client: Client) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await client.ws_connect("/api/ws", headers={"Authorization": "Bearer dro_wrong"})
    assert caught.value.status == 401


async def test_foreign_origin_is_403_before_the_upgrade(make_client: MakeClient) -> None:
    client = await make_client(server={"cors_origins": ["https://ops.example"]})
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await client.ws_connect("/api/ws", headers={"Origin": "https://evil.example"})
    assert caught.value.status == 403
    for origin in ("https://ops.example", f"http://{client.host}:{client.port}"):
        ws = await client.ws_connect("/api/ws", headers={"Origin": origin})
        await ws.send_json({"op": "ping"})
        assert (await frame(ws))["data"] == {"op": "ping"}
        await ws.close()


async def test_no_auth_frame_in_time_closes_4401(client: Client) -> None:
    quick(client, auth_timeout=0.2)
    async with connect(ws_url(client)) as ws:
        with pytest.raises(websockets.ConnectionClosed) as caught:
            await asyncio.wait_for(ws.recv(), WAIT)
    assert caught.value.rcvd is not None and caught.value.rcvd.code == 4401


async def test_first_frame_auth_then_subscribe(client: Client) -> None:
    token = await token_for(client.app, "viewer")
    async with connect(ws_url(client)) as ws:
        await ws.send(json.dumps({"op": "auth", "token": token}))
        first = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
        assert first["type"] == "ack" and first["data"] == {"op": "auth", "role": "viewer"}
        await ws.send(json.dumps({"op": "subscribe", "topics": ["inventory"]}))
        ack = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
        assert ack["data"] == {"op": "subscribe", "topics": ["inventory"]}
        await post(client, "/api/clients", {"name": "Acme"})
        event = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
    assert event["type"] == "event" and event["event"] == "inventory.changed"
    assert event["topic"] == "inventory" and event["seq"] == 1
    assert event["data"]["entity"] == "client" and event["data"]["op"] == "created"


@pytest.mark.parametrize("first", ['{"op":"auth","token":"dro_wrong"}', '{"op":"ping"}', "[1]"])
async def test_a_bad_first_frame_closes_4401(client: Client, first: str) -> None:
    async with connect(ws_url(client)) as ws:
        await ws.send(first)
        with pytest.raises(websockets.ConnectionClosed) as caught:
            await asyncio.wait_for(ws.recv(), WAIT)
    assert caught.value.rcvd is not None and caught.value.rcvd.code == 4401


async def test_revoking_the_token_closes_the_socket(client: Client) -> None:
    quick(client, check_interval=0.2)
    created = await post(client, "/api/tokens", {"name": "screen", "role": "viewer"})
    headers = {"Authorization": f"Bearer {created['token']}"}
    ws = await client.ws_connect("/api/ws", headers=headers)
    await subscribe(ws, "monitors")
    assert (await client.delete(f"/api/tokens/{created['meta']['id']}")).status == 204
    assert await closed_with(ws, 2.0) == 4401


async def test_an_expiring_token_closes_the_socket(client: Client) -> None:
    quick(client, check_interval=0.2)
    soon = datetime.fromtimestamp(time.time() + 1.5, UTC).isoformat()
    _, token = await client.app[AUTHENTICATOR].tokens.create("brief", "viewer", soon, "tests")
    ws = await client.ws_connect("/api/ws", headers={"Authorization": f"Bearer {token}"})
    await subscribe(ws, "incidents")
    assert await closed_with(ws, 3.0) == 4401


async def test_agent_tokens_may_not_stream(client: Client, tree: Any) -> None:
    server = (await tree())["server"]
    tokens = client.app[AUTHENTICATOR].tokens
    _, token = await tokens.create("agent", "agent", None, "tests", server_id=server["id"])
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await client.ws_connect("/api/ws", headers={"Authorization": f"Bearer {token}"})
    assert caught.value.status == 403
    async with connect(ws_url(client)) as ws:
        await ws.send(json.dumps({"op": "auth", "token": token}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), WAIT)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_unknown_topic_gets_an_error_frame_and_the_socket_stays_open(
    client: Client,
) -> None:
    ws = await client.ws_connect("/api/ws")
    frames = await subscribe(ws, "secrets", "servers.*.metrics", "servers.x/y.metrics")
    errors = [f for f in frames if f["type"] == "error"]
    assert {e["topic"] for e in errors} == {"secrets", "servers.x/y.metrics"}
    assert frames[-1]["data"] == {"op": "subscribe", "topics": ["servers.*.metrics"]}
    await ws.send_json({"op": "ping"})
    assert (await until_ack(ws, "ping"))[-1]["type"] == "ack"


async def test_malformed_frames_get_error_frames(client: Client) -> None:
    ws = await client.ws_connect("/api/ws")
    for bad in ("{not json", '{"op":"dance"}', '{"op":"subscribe","topics":"monitors"}', "[]"):
        await ws.send_str(bad)
        reply = await frame(ws)
        assert reply["type"] == "error" and reply["data"]["message"].startswith("bad frame")
    await ws.send_bytes(b"\xff\xfe")
    assert (await frame(ws))["type"] == "error"
    await ws.send_json({"op": "auth", "token": "again"})
    assert (await frame(ws))["data"] == {"message": "already authenticated", "op": "auth"}
    await ws.send_json({"op": "ping"})
    assert (await frame(ws))["data"] == {"op": "ping"}


async def test_a_frame_over_64_kib_closes_the_socket(client: Client) -> None:
    ws = await client.ws_connect("/api/ws")
    await ws.send_str(json.dumps({"op": "subscribe", "topics": ["x" * 70_000]}))
    assert await closed_with(ws) == 1009
    assert not client.app[HUB].clients or all(c.closing for c in client.app[HUB].clients)


async def test_server_stream_is_one_servers_metrics(client: Client) -> None:
    ws = await client.ws_connect("/api/servers/web-1/stream")
    await until_ack(ws, "subscribe")
    bus = client.app[BUS]
    bus.publish("servers.web-2.metrics", {"serverId": "web-2", "cpu": 1.0}, "server.metrics")
    bus.publish("servers.web-1.metrics", {"serverId": "web-1", "cpu": 2.0}, "server.metrics")
    got = await frame(ws)
    assert got["topic"] == "servers.web-1.metrics" and got["data"]["cpu"] == 2.0
    assert got["event"] == "server.metrics" and got["seq"] == 1


async def test_shutdown_closes_sockets_with_going_away(client: Client) -> None:
    async with connect(ws_url(client), additional_headers=client.session.headers) as ws:
        await ws.send(json.dumps({"op": "ping"}))
        await asyncio.wait_for(ws.recv(), WAIT)
        await asyncio.wait_for(client.close(), WAIT)
        with pytest.raises(websockets.ConnectionClosed) as caught:
            await asyncio.wait_for(ws.recv(), WAIT)
    assert caught.value.rcvd is not None and caught.value.rcvd.code == 1001
