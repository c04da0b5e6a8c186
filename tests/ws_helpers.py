"""Websocket test helpers: URLs, bounded receives, and reading up to a subscription's ack."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import aiohttp
from conftest import Client
from websockets.asyncio.client import ClientConnection, connect

from dragonopsd.appkeys import HUB
from dragonopsd.live.hub import HubSettings

WAIT = 3.0  # every receive in these tests is bounded by this


def ws_url(client: Client, path: str = "/api/ws") -> str:
    """The ws:// URL of a path on the test server."""
    return str(client.make_url(path)).replace("http://", "ws://", 1)


def quick(client: Client, **changes: Any) -> HubSettings:
    """Shorten the hub's waits for a test (the settings are read per connection)."""
    settings = client.app[HUB].settings
    for name, value in changes.items():
        setattr(settings, name, value)
    return settings


async def frame(ws: aiohttp.ClientWebSocketResponse, wait: float = WAIT) -> dict[str, Any]:
    """The next text frame, decoded; fails on close or timeout."""
    msg = await ws.receive(timeout=wait)
    assert msg.type == aiohttp.WSMsgType.TEXT, (msg.type, msg.data, msg.extra)
    decoded: dict[str, Any] = json.loads(msg.data)
    return decoded


async def until_ack(ws: aiohttp.ClientWebSocketResponse, op: str) -> list[dict[str, Any]]:
    """Frames up to and including the ack of op (a subscribe's snapshot comes before it)."""
    frames = []
    async with asyncio.timeout(WAIT):
        while True:
            f = await frame(ws)
            frames.append(f)
            if f["type"] == "ack" and f["data"]["op"] == op:
                return frames


async def subscribe(ws: aiohttp.ClientWebSocketResponse, *topics: str) -> list[dict[str, Any]]:
    """Subscribe and return the frames up to the ack."""
    await ws.send_json({"op": "subscribe", "topics": list(topics)})
    return await until_ack(ws, "subscribe")


async def closed_with(ws: aiohttp.ClientWebSocketResponse, wait: float = WAIT) -> int | None:
    """Read until the server closes the socket; its close code."""
    async with asyncio.timeout(wait):
        while True:
            msg = await ws.receive()
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                return ws.close_code
            assert msg.type != aiohttp.WSMsgType.ERROR, msg.data


async def stalled_client(client: Client, topic: str, *, batch: bool = False) -> ClientConnection:
    """A websockets client on a tiny receive buffer that never reads after subscribing."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: small window
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (client.host, client.port))
    ws = await connect(
        ws_url(client),
        sock=sock,
        max_queue=1,  # websockets stops reading the socket once one frame waits
        additional_headers=client.session.headers,
        ping_interval=None,
        close_timeout=0.1,
    )
    op: dict[str, Any] = {"op": "subscribe", "topics": [topic]}
    if batch:
        op["batch"] = True
    await ws.send(json.dumps(op))
    return ws
