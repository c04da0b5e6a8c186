"""Fan-out: snapshot then gapless seq, coalescing of metrics, and a stalled client that
neither delays 20 others nor loses them an event (it is closed with 1013 instead)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from conftest import Client, post
from ws_helpers import WAIT, frame, quick, stalled_client, subscribe

from dragonopsd.appkeys import BUS, HUB

MakeClient = Callable[..., Awaitable[Client]]


def status(n: int, pad: int = 0) -> dict[str, Any]:
    return {"monitorId": "m1", "status": "down" if n % 2 else "up", "n": n, "pad": "x" * pad}


async def test_snapshot_then_live_events_in_seq_order(client: Client) -> None:
    created = await post(
        client,
        "/api/monitors",
        {"name": "db", "kind": "tcp", "host": "127.0.0.1", "port": 9, "enabled": False},
    )
    bus = client.app[BUS]
    for n in range(3):  # before the subscription: the snapshot is as of seq 3
        bus.publish("monitors", status(n), "monitor.status")
    await asyncio.sleep(0.05)
    ws = await client.ws_connect("/api/ws")
    frames = await subscribe(ws, "monitors")
    snapshot = [f for f in frames if f["type"] == "snapshot"]
    assert [f["data"]["monitorId"] for f in snapshot] == [created["id"]]
    assert snapshot[0]["event"] == "monitor.state" and snapshot[0]["seq"] == 3
    assert snapshot[0]["data"]["status"] == "paused"
    for n in range(3, 53):
        bus.publish("monitors", status(n), "monitor.status")
    events = [await frame(ws) for _ in range(50)]
    assert [e["seq"] for e in events] == list(range(4, 54))
    assert [e["data"]["n"] for e in events] == list(range(3, 53))
    assert all(e["type"] == "event" and e["event"] == "monitor.status" for e in events)
    assert all(0 <= time.time() - e["ts"] < WAIT for e in events)


async def test_a_backed_up_client_gets_the_latest_metrics_and_stays_open(
    client: Client,
) -> None:
    quick(client, queue_size=8)
    ws = await stalled_client(client, "servers.*.metrics")
    assert json.loads(await asyncio.wait_for(ws.recv(), WAIT))["type"] == "ack"
    bus = client.app[BUS]
    total = 300  # per server, 16 KB each: far more than the stalled socket's buffers hold
    for n in range(1, total + 1):
        for server in ("a", "b"):
            data = {"serverId": server, "n": n, "pad": "x" * 16_000}
            bus.publish(f"servers.{server}.metrics", data, "server.metrics")
        await asyncio.sleep(0)
    await asyncio.sleep(0.2)
    last = {"servers.a.metrics": 0, "servers.b.metrics": 0}
    received = 0
    async with asyncio.timeout(WAIT):
        while min(last.values()) < total:  # reading again drains the backlog
            f = json.loads(await ws.recv())
            assert f["seq"] > last[f["topic"]] and f["data"]["n"] == f["seq"]
            last[f["topic"]] = f["seq"]
            received += 1
    assert received < 2 * total  # queued samples were replaced by newer ones
    await ws.send(json.dumps({"op": "ping"}))  # metrics never close a slow socket
    assert json.loads(await asyncio.wait_for(ws.recv(), WAIT))["type"] == "ack"
    await ws.close()


async def test_coalescing_keeps_every_status_event_in_seq_order(client: Client) -> None:
    quick(client, queue_size=512)
    ws = await stalled_client(client, "monitors.m1")
    assert json.loads(await asyncio.wait_for(ws.recv(), WAIT))["type"] == "ack"
    bus = client.app[BUS]
    rounds = 150
    for n in range(rounds):
        for _ in range(3):
            bus.publish("monitors.m1", status(n, pad=16_000), "monitor.heartbeat")
        bus.publish("monitors.m1", status(n), "monitor.status")
        await asyncio.sleep(0)
    await asyncio.sleep(0.2)
    seqs, statuses = [], []
    async with asyncio.timeout(WAIT):
        while len(statuses) < rounds:
            f = json.loads(await ws.recv())
            seqs.append(f["seq"])
            if f["event"] == "monitor.status":
                statuses.append(f["data"]["n"])
    assert statuses == list(range(rounds))
    assert seqs == sorted(seqs) and len(seqs) < 4 * rounds  # heartbeats coalesced, in order
    await ws.close()


async def test_a_stalled_client_is_closed_and_delays_nobody(make_client: MakeClient) -> None:
    # 21 sockets of the one admin token: more than [server] max_websockets_per_principal allows.
    client = await make_client(server={"max_websockets_per_principal": 50})
    quick(client, queue_size=16, close_timeout=0.3)
    hub = client.app[HUB]
    slow_ws = await stalled_client(client, "monitors")
    async with asyncio.timeout(WAIT):
        while not hub.clients:
            await asyncio.sleep(0.01)
    slow = next(iter(hub.clients))
    fast = [await client.ws_connect("/api/ws") for _ in range(20)]
    for ws in fast:
        await subscribe(ws, "monitors")
    bus = client.app[BUS]
    total = 400  # 16 KB each: megabytes more than the stalled socket's buffers hold

    async def publish() -> None:
        for n in range(total):
            bus.publish("monitors", status(n, pad=16_000), "monitor.status")
            if n % 10 == 9:
                await asyncio.sleep(0.005)

    async def read(ws: aiohttp.ClientWebSocketResponse) -> tuple[list[int], float]:
        seqs, worst = [], 0.0
        while len(seqs) < total:
            f = await frame(ws)
            worst = max(worst, time.time() - f["ts"])
            seqs.append(f["seq"])
        return seqs, worst

    results = await asyncio.gather(publish(), *(read(ws) for ws in fast))
    for seqs, worst in results[1:]:
        assert seqs == list(range(1, total + 1))  # every event, in order, none dropped
        assert worst < 0.5, worst
    async with asyncio.timeout(WAIT):
        while slow in hub.clients:
            await asyncio.sleep(0.02)
    assert slow.close_code == 1013
    await slow_ws.close()
