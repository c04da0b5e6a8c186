"""Websocket abuse over real sockets: frames the decoder cannot take, and how many sockets one
token or one address may hold.

Clients are aiohttp's websocket client (header auth) and the ``websockets`` library (no
headers: the browser's way, a first ``auth`` frame).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
import websockets
from conftest import Client, token_for
from websockets.asyncio.client import connect
from ws_helpers import WAIT, closed_with, frame, ws_url

MakeClient = Callable[..., Awaitable[Client]]

# Past msgspec's nesting depth, and far under the 64 KiB frame limit. The unknown field comes
# first, so the decoder has to walk it before it knows which op this is.
DEEP = '{"x":' + "[" * 5000 + "]" * 5000 + ',"op":"ping"}'
UPGRADE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
}


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def close_of(ws: websockets.ClientConnection) -> websockets.frames.Close:
    """The close frame the server sent, after whatever frames came before it."""
    with pytest.raises(websockets.ConnectionClosed) as caught:
        async with asyncio.timeout(WAIT):
            while True:
                await ws.recv()
    assert caught.value.rcvd is not None, caught.value
    return caught.value.rcvd


@pytest.mark.parametrize(
    ("first", "reason"), [(DEEP, "frame nested too deeply"), ("hi", "frame is not JSON")]
)
async def test_an_undecodable_first_frame_closes_1007(
    client: Client, caplog: pytest.LogCaptureFixture, first: str, reason: str
) -> None:
    caplog.set_level(logging.DEBUG)
    async with connect(ws_url(client)) as ws:
        await ws.send(first)
        close = await close_of(ws)
    assert (close.code, close.reason) == (1007, reason)
    assert not errors_logged(caplog)
    assert any(reason in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)


async def test_a_nesting_bomb_after_auth_closes_1007(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    ws = await client.ws_connect("/api/ws")
    await ws.send_json({"op": "ping"})
    assert (await frame(ws))["data"] == {"op": "ping"}
    await ws.send_str(DEEP)
    assert await closed_with(ws) == 1007
    assert not errors_logged(caplog)
    # The daemon goes on serving: a new socket works.
    again = await client.ws_connect("/api/ws")
    await again.send_json({"op": "ping"})
    assert (await frame(again))["data"] == {"op": "ping"}


async def _until_admitted(
    client: Client, headers: dict[str, str]
) -> aiohttp.ClientWebSocketResponse:
    """A socket opens once a closed one's slot is given back (when its handler ends)."""
    deadline = time.monotonic() + WAIT
    while True:
        try:
            return await client.ws_connect("/api/ws", headers=headers)
        except aiohttp.WSServerHandshakeError as exc:
            assert exc.status == 429 and time.monotonic() < deadline
            await asyncio.sleep(0.05)


async def test_sockets_per_token_are_capped(make_client: MakeClient) -> None:
    client = await make_client(server={"max_websockets_per_principal": 3})
    token = await token_for(client.app, "viewer")
    auth = {"Authorization": f"Bearer {token}"}
    held = [await client.ws_connect("/api/ws", headers=auth) for _ in range(3)]
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await client.ws_connect("/api/ws", headers=auth)
    assert caught.value.status == 429
    refused = await client.get("/api/ws", headers={**UPGRADE, **auth})
    assert refused.status == 429
    body = await refused.json(content_type="application/problem+json")
    assert body["detail"] == "at most 3 websockets per token or user"
    # Authenticating by frame: the socket is already open, so it is closed with 1008.
    async with connect(ws_url(client)) as ws:
        await ws.send(json.dumps({"op": "auth", "token": token}))
        close = await close_of(ws)
    assert (close.code, close.reason) == (1008, "at most 3 websockets per token or user")
    # Another principal is not affected, and a closed socket gives its slot back.
    other = await client.ws_connect("/api/ws")
    await other.send_json({"op": "ping"})
    assert (await frame(other))["data"] == {"op": "ping"}
    await held[0].close()
    await _until_admitted(client, auth)


async def test_sockets_per_address_are_capped(make_client: MakeClient) -> None:
    client = await make_client(server={"max_websockets_per_address": 2, "per_address_exempt": []})
    tokens = [await token_for(client.app, "viewer") for _ in range(3)]
    for token in tokens[:2]:
        await client.ws_connect("/api/ws", headers={"Authorization": f"Bearer {token}"})
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await client.ws_connect("/api/ws", headers={"Authorization": f"Bearer {tokens[2]}"})
    assert caught.value.status == 429
    # Sockets still waiting for their auth frame count too: refused before the upgrade.
    with pytest.raises(websockets.InvalidStatus) as refused:
        await connect(ws_url(client))
    assert refused.value.response.status_code == 429
    # Another address still gets in (all of 127.0.0.0/8 is loopback on Linux).
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with aiohttp.ClientSession(connector=connector) as elsewhere:
        auth = {"Authorization": f"Bearer {tokens[2]}"}
        async with elsewhere.ws_connect(ws_url(client), headers=auth) as ws:
            await ws.send_json({"op": "ping"})
            assert (await frame(ws))["data"] == {"op": "ping"}


async def test_exempt_addresses_are_not_capped_per_address(make_client: MakeClient) -> None:
    # The default exempts loopback: a reverse proxy on this host speaks for many clients.
    client = await make_client(server={"max_websockets_per_address": 2})
    for _ in range(3):
        token = await token_for(client.app, "viewer")
        ws = await client.ws_connect("/api/ws", headers={"Authorization": f"Bearer {token}"})
        await ws.send_json({"op": "ping"})
        assert (await frame(ws))["data"] == {"op": "ping"}
