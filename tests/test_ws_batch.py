"""Batch frames: a client that subscribes with ``"batch": true`` gets what one hub pass (a
sampling tick) holds for it in one frame, each event keeping its own topic and seq; a stalled
batching client delays nobody and catches up in batch frames."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from conftest import Client
from ws_helpers import WAIT, frame, quick, stalled_client, until_ack

from dragonopsd.appkeys import BUS, HUB, INVENTORY, INVENTORY_INDEX, SAMPLER
from dragonopsd.demo import seed
from dragonopsd.live.topics import BATCH_BYTES

MakeClient = Callable[..., Awaitable[Client]]


async def subscribe(
    ws: aiohttp.ClientWebSocketResponse, *topics: str, batch: bool | None = True
) -> list[dict[str, Any]]:
    op: dict[str, Any] = {"op": "subscribe", "topics": list(topics)}
    if batch is not None:
        op["batch"] = batch
    await ws.send_json(op)
    return await until_ack(ws, "subscribe")


def status(n: int, pad: int = 0) -> dict[str, Any]:
    return {"monitorId": "m1", "status": "down" if n % 2 else "up", "n": n, "pad": "x" * pad}


async def test_one_frame_per_sampling_tick_with_every_servers_event(
    make_client: MakeClient,
) -> None:
    client = await make_client(sampling={"interval": 3600})  # ticks come from this test
    await seed(client.app[INVENTORY])  # the demo's 12 servers
    await client.app[INVENTORY_INDEX].refresh()
    sampler = client.app[SAMPLER]
    await sampler.tick()
    batching = await client.ws_connect("/api/ws")
    single = await client.ws_connect("/api/ws")
    snapshot = [f for f in await subscribe(batching, "servers.*.metrics") if f["type"] != "ack"]
    await subscribe(single, "servers.*.metrics", batch=None)
    last = {f["topic"]: f["seq"] for f in snapshot}
    assert len(last) == 12 and all(f["type"] == "snapshot" for f in snapshot)
    mine = sorted(last)[0]  # a socket on one server's topic gets batches of that one only
    one = await client.ws_connect("/api/ws")
    await subscribe(one, mine)
    for _ in range(3):
        before = time.time()
        await sampler.tick()
        f = await frame(batching)
        assert f["type"] == "batch" and set(f) == {"type", "events"}
        events = f["events"]
        assert sorted(e["topic"] for e in events) == sorted(last)
        for e in events:
            assert e["type"] == "event" and e["event"] == "server.metrics"
            assert e["seq"] == last[e["topic"]] + 1, (e["topic"], e["seq"], last)
            assert e["topic"] == f"servers.{e['data']['serverId']}.metrics"
            assert e["ts"] >= before
            last[e["topic"]] = e["seq"]
        assert [(e["topic"], e["seq"]) for e in (await frame(one))["events"]] == [
            (mine, last[mine])
        ]
        # A socket that did not ask keeps getting one frame per event, the same seqs.
        plain = [await frame(single) for _ in range(12)]
        assert [(e["topic"], e["seq"]) for e in plain] == [(e["topic"], e["seq"]) for e in events]
        assert all(e["type"] == "event" for e in plain)
    await batching.send_json({"op": "ping"})  # nothing else came: one frame per tick
    assert (await frame(batching))["data"] == {"op": "ping"}
    # "batch": false switches the socket back; an empty subscribe just sets the mode.
    await subscribe(batching, batch=False)
    await sampler.tick()
    back = [await frame(batching) for _ in range(12)]
    assert all(f["type"] == "event" and f["seq"] == last[f["topic"]] + 1 for f in back)
    for ws in (batching, single, one):
        await ws.close()


async def test_batch_must_be_a_boolean(client: Client) -> None:
    ws = await client.ws_connect("/api/ws")
    await ws.send_json({"op": "subscribe", "topics": ["monitors"], "batch": "yes"})
    f = await frame(ws)
    message = f["data"]["message"]
    assert f["type"] == "error" and "batch" in message and "bool" in message, message
    await ws.send_json({"op": "ping"})  # the socket stays open, and subscribed to nothing
    assert (await frame(ws))["data"] == {"op": "ping"}
    assert not next(iter(client.app[HUB].clients)).topics
    await ws.close()


async def test_a_stalled_batching_client_catches_up_in_batches(client: Client) -> None:
    quick(client, queue_size=512)
    ws = await stalled_client(client, "monitors.m1", batch=True)
    assert json.loads(await asyncio.wait_for(ws.recv(), WAIT))["type"] == "ack"
    bus = client.app[BUS]
    rounds = 150
    for n in range(rounds):
        for _ in range(3):
            bus.publish("monitors.m1", status(n, pad=16_000), "monitor.heartbeat")
        bus.publish("monitors.m1", status(n), "monitor.status")
        await asyncio.sleep(0)
    await asyncio.sleep(0.2)
    seqs, statuses, frames = [], [], 0
    async with asyncio.timeout(WAIT):
        while len(statuses) < rounds:  # reading again drains the backlog, in batch frames
            text = await ws.recv()
            f = json.loads(text)
            assert f["type"] == "batch" and f["events"], f["type"]
            assert len(text) <= BATCH_BYTES + 17_000  # bounded: at most one event past the cap
            frames += 1
            for e in f["events"]:
                seqs.append(e["seq"])
                if e["event"] == "monitor.status":
                    statuses.append(e["data"]["n"])
    assert statuses == list(range(rounds))  # every status event, in order
    assert seqs == sorted(seqs) and len(seqs) < 4 * rounds  # heartbeats coalesced, in order
    assert frames < len(seqs) / 2
    await ws.close()


async def test_a_stalled_batching_client_delays_no_batching_other(
    make_client: MakeClient,
) -> None:
    client = await make_client(server={"max_websockets_per_principal": 50})
    quick(client, queue_size=16, close_timeout=0.3)
    hub = client.app[HUB]
    slow_ws = await stalled_client(client, "monitors", batch=True)
    async with asyncio.timeout(WAIT):
        while not hub.clients:
            await asyncio.sleep(0.01)
    slow = next(iter(hub.clients))
    fast = [await client.ws_connect("/api/ws") for _ in range(20)]
    for ws in fast:
        await subscribe(ws, "monitors")
    bus = client.app[BUS]
    total = 400  # 16 KB each, ten per pass: megabytes more than the stalled socket holds

    async def publish() -> None:
        for n in range(total):
            bus.publish("monitors", status(n, pad=16_000), "monitor.status")
            if n % 10 == 9:
                await asyncio.sleep(0.005)

    async def read(ws: aiohttp.ClientWebSocketResponse) -> tuple[list[int], float]:
        seqs, worst = [], 0.0
        while len(seqs) < total:
            f = await frame(ws)
            assert f["type"] == "batch"
            for e in f["events"]:
                worst = max(worst, time.time() - e["ts"])
                seqs.append(e["seq"])
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
