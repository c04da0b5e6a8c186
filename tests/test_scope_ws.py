"""A scoped viewer's websocket never receives another client's events (issue 18).

Two clients, Acme (in the viewer's scope) and Globex (out of it), each with a project,
environment, server and push monitor. A viewer token scoped to Acme and an unscoped one
subscribe to the wildcard and shared topics (and, the scoped one, to Globex's own topics by
id); then Globex's events happen first and Acme's after them, so once the scoped socket has
Acme's, Globex's would have arrived before them had they been sent.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import jwt as pyjwt
import pytest
from conftest import Client, post, token_for
from redis_helpers import SHARED_URL
from ws_helpers import WAIT, closed_with, quick, subscribe, until_ack

from dragonopsd.appkeys import INVENTORY_INDEX, SAMPLER
from dragonopsd.bus import RedisBus
from dragonopsd.config import RedisConfig
from dragonopsd.redislink.client import RedisLink

pytestmark = pytest.mark.backends

MakeClient = Callable[..., Awaitable[Client]]
SHARED = ["servers.*.metrics", "monitors", "incidents", "actions", "inventory"]


async def _client_tree(client: Client, name: str) -> dict[str, Any]:
    c = await post(client, "/api/clients", {"name": name})
    p = await post(client, "/api/projects", {"clientId": c["id"], "name": f"{name} portal"})
    e = await post(
        client,
        "/api/environments",
        {"projectId": p["id"], "name": "Production", "url": f"https://{name.lower()}.example"},
    )
    s = await post(client, "/api/servers", {"environmentId": e["id"], "name": "web-1"})
    m = await post(
        client,
        "/api/monitors",
        {"name": f"{name} cron", "kind": "push", "interval": 3600, "serverId": s["id"]},
    )
    return {"client": c, "project": p, "environment": e, "server": s, "monitor": m}


async def _acme_viewer(client: Client, acme: dict[str, Any]) -> Any:
    """A viewer token scoped to Acme's client (the created token, its secret in "token")."""
    scope = {"clients": [acme["client"]["id"]]}
    return await post(
        client, "/api/tokens", {"name": "acme-screen", "role": "viewer", "scope": scope}
    )


async def _socket(client: Client, token: str) -> aiohttp.ClientWebSocketResponse:
    return await client.ws_connect("/api/ws", headers={"Authorization": f"Bearer {token}"})


async def _frames_until(
    ws: aiohttp.ClientWebSocketResponse, done: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    """Frames (batches unpacked) until done(frames) holds; fails after a few seconds."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(WAIT * 3):
        while not done(seen):
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.TEXT, (msg.type, msg.data)
            f = json.loads(msg.data)
            seen.extend(f["events"] if f["type"] == "batch" else [f])
    return seen


def _mentions(frames: list[dict[str, Any]], ident: str) -> bool:
    """Whether a snapshot or event frame names ident (acks name the topics asked for)."""
    return any(ident in json.dumps(f) for f in frames if f["type"] != "ack")


def _deletion(frame: dict[str, Any]) -> bool:
    return frame.get("event") == "inventory.changed" and frame["data"]["op"] == "deleted"


def _acked(frames: list[dict[str, Any]]) -> bool:
    return any(f["type"] == "ack" for f in frames)


async def _push(client: Client, monitor: dict[str, Any]) -> None:
    resp = await client.get(f"/api/push/{monitor['pushToken']}", headers={"Authorization": ""})
    assert resp.status == 200, await resp.text()


async def test_a_scoped_viewer_gets_its_clients_events_and_never_anothers(
    make_client: MakeClient,
) -> None:
    client = await make_client(sampling={"interval": 3600})  # ticks come from this test
    acme = await _client_tree(client, "Acme")
    globex = await _client_tree(client, "Globex")
    await client.app[INVENTORY_INDEX].refresh()
    sampler = client.app[SAMPLER]
    await sampler.tick()  # a latest sample of each server for the snapshots
    await _push(client, acme["monitor"])
    await _push(client, globex["monitor"])
    scoped = await _acme_viewer(client, acme)
    mine = await _socket(client, scoped["token"])
    everyone = await _socket(client, await token_for(client.app, "viewer"))
    # Globex's topics by id answer as a nonexistent server's and monitor's: an ack, no state.
    by_id = [
        f"servers.{globex['server']['id']}.metrics",
        f"monitors.{globex['monitor']['id']}",
        f"monitors.{acme['monitor']['id']}",
    ]
    # In batch frames, as the dashboard asks: a tick's samples come in one frame.
    await mine.send_json({"op": "subscribe", "topics": [*SHARED, *by_id], "batch": True})
    snapshot = await until_ack(mine, "subscribe")
    assert snapshot[-1]["data"] == {"op": "subscribe", "topics": [*SHARED, *by_id]}
    assert _mentions(snapshot, acme["server"]["id"]) and _mentions(snapshot, acme["monitor"]["id"])
    assert not any(_mentions(snapshot, globex[k]["id"]) for k in ("server", "monitor"))
    full = await subscribe(everyone, *SHARED, f"monitors.{globex['monitor']['id']}")
    assert _mentions(full, globex["server"]["id"]) and _mentions(full, globex["monitor"]["id"])

    # Globex first, then Acme: a sample of each, a heartbeat, an inventory write, an action.
    await sampler.tick()
    for side in (globex, acme):
        await _push(client, side["monitor"])
        patched = await client.patch(f"/api/servers/{side['server']['id']}", json={"name": "w1"})
        assert patched.status == 200, await patched.text()
        await post(
            client, f"/api/servers/{side['server']['id']}/actions", {"action": "restart"}, 202
        )
    late = {}
    for side in (globex, acme):  # created now: placed although the index has not re-read yet
        late[side["client"]["name"]] = await post(
            client,
            "/api/servers",
            {"environmentId": side["environment"]["id"], "name": "web-2"},
        )
    acme_new = late["Acme"]["id"]

    def acme_done(frames: list[dict[str, Any]]) -> bool:
        return _mentions(frames, acme_new) and any(
            f.get("event") == "monitor.heartbeat" for f in frames
        )

    got = await _frames_until(mine, acme_done)
    kinds = {f.get("event") for f in got}
    assert {"server.metrics", "monitor.heartbeat", "action.updated", "inventory.changed"} <= kinds
    assert _mentions(got, acme["server"]["id"]) and _mentions(got, acme["monitor"]["id"])
    for ident in (
        globex["client"]["id"],
        globex["server"]["id"],
        globex["monitor"]["id"],
        late["Globex"]["id"],
    ):
        assert not _mentions(got, ident), ident
    # Nothing of Globex's is waiting behind, either: a ping comes back next.
    await mine.send_json({"op": "ping"})
    rest = await _frames_until(mine, _acked)
    assert not _mentions(rest, globex["server"]["id"]) and not _mentions(rest, late["Globex"]["id"])
    # A deletion is judged once the entity has left the inventory: its subscriber still hears.
    for side in ("Globex", "Acme"):
        assert (await client.delete(f"/api/servers/{late[side]['id']}")).status == 204
    gone = await _frames_until(mine, lambda fs: any(_deletion(f) for f in fs))
    assert [f["data"]["id"] for f in gone if _deletion(f)] == [acme_new]
    assert not _mentions(gone, late["Globex"]["id"])

    # The unscoped viewer got both clients' events.
    seen = await _frames_until(everyone, lambda fs: _mentions(fs, acme_new))
    for ident in (globex["server"]["id"], globex["monitor"]["id"], late["Globex"]["id"]):
        assert _mentions(seen, ident), ident
    for ws in (mine, everyone):
        await ws.close()


async def test_a_scoped_stream_of_another_clients_server_is_a_nonexistent_ones(
    make_client: MakeClient,
) -> None:
    client = await make_client(sampling={"interval": 3600})
    acme = await _client_tree(client, "Acme")
    globex = await _client_tree(client, "Globex")
    await client.app[INVENTORY_INDEX].refresh()
    sampler = client.app[SAMPLER]
    await sampler.tick()
    scoped = await _acme_viewer(client, acme)
    headers = {"Authorization": f"Bearer {scoped['token']}"}
    missing = "00000000-0000-4000-8000-000000000000"
    answers = []
    for sid in (globex["server"]["id"], missing, acme["server"]["id"]):
        ws = await client.ws_connect(f"/api/servers/{sid}/stream", headers=headers)
        frames = await _frames_until(ws, _acked)  # the stream's own subscription
        await sampler.tick()  # then a sample of every server, and a ping behind it
        await ws.send_json({"op": "ping"})
        frames += await _frames_until(ws, _acked)
        answers.append([(f["type"], f.get("event")) for f in frames])
        await ws.close()
    foreign, nothing, own = answers
    assert foreign == nothing == [("ack", None), ("ack", None)]
    assert own == [
        ("snapshot", "server.metrics"),
        ("ack", None),
        ("event", "server.metrics"),
        ("ack", None),
    ]


JWT_SECRET = "a-test-jwt-secret-of-32-bytes-or-more"


async def test_a_profiles_socket_closes_when_an_admin_changes_its_scope(
    make_client: MakeClient,
) -> None:
    client = await make_client(auth={"jwt_secret": JWT_SECRET})
    quick(client, check_interval=0.2)
    acme = await _client_tree(client, "Acme")
    globex = await _client_tree(client, "Globex")
    claims = {"sub": "user-ada", "email": "ada@example.com", "aud": "authenticated"}
    ada = pyjwt.encode(claims | {"exp": int(time.time()) + 3600}, JWT_SECRET, algorithm="HS256")
    assert (await client.get("/api/stats/engine", headers=_bearer(ada))).status == 200
    scope = {"scope": {"clients": [acme["client"]["id"]]}}
    assert (await client.patch("/api/profiles/user-ada", json=scope)).status == 200
    ws = await client.ws_connect("/api/ws", headers=_bearer(ada))
    await subscribe(ws, "inventory")
    await post(client, "/api/servers", {"environmentId": acme["environment"]["id"], "name": "a"})
    seen = await _frames_until(ws, lambda fs: any(f["type"] == "event" for f in fs))
    assert seen[0]["data"]["entity"] == "server"
    # Widened to Globex (or narrowed): the open socket's scope is the old one, so it closes.
    scope = {"scope": {"clients": [globex["client"]["id"]]}}
    assert (await client.patch("/api/profiles/user-ada", json=scope)).status == 200
    assert await closed_with(ws, 2.0) == 4401
    again = await client.ws_connect("/api/ws", headers=_bearer(ada))
    await subscribe(again, "inventory")
    await post(client, "/api/servers", {"environmentId": acme["environment"]["id"], "name": "b"})
    made = await post(
        client, "/api/servers", {"environmentId": globex["environment"]["id"], "name": "g"}
    )
    seen = await _frames_until(again, lambda fs: any(f["type"] == "event" for f in fs))
    assert [f["data"]["id"] for f in seen if f["type"] == "event"] == [made["id"]]
    await again.close()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_another_cores_events_are_filtered_too(
    make_client: MakeClient, redis_prefix: str
) -> None:
    """Events from another process of the deployment arrive as raw JSON over Redis: a scoped
    socket gets them placed by their camelCase payload just the same."""
    client = await make_client(redis={"url": SHARED_URL, "prefix": redis_prefix})
    acme = await _client_tree(client, "Acme")
    globex = await _client_tree(client, "Globex")
    scoped = await _acme_viewer(client, acme)
    link = RedisLink(RedisConfig(url=SHARED_URL, prefix=redis_prefix), name="other")
    other = RedisBus(link)
    tasks = [asyncio.create_task(t()) for t in (other.run_publisher, other.run_reader)]
    try:
        await link.ping()
        mine = await _socket(client, scoped["token"])
        await subscribe(mine, "actions", "monitors", "incidents")
        async with asyncio.timeout(WAIT):
            while int((await link.client.pubsub_numsub(f"{redis_prefix}:events"))[0][1]) < 2:
                await asyncio.sleep(0.05)
        for side in (globex, acme):  # Globex first: absence is meaningful once Acme's came
            server, monitor = side["server"]["id"], side["monitor"]["id"]
            other.publish("actions", {"id": f"a-{server}", "serverId": server}, "action.updated")
            other.publish("monitors", {"monitorId": monitor, "status": "down"}, "monitor.status")
            other.publish("incidents", {"monitorId": monitor, "type": "x"}, "incident.opened")
        got = await _frames_until(mine, lambda fs: len(fs) == 3)
        assert not _mentions(got, globex["server"]["id"])
        assert not _mentions(got, globex["monitor"]["id"])
        assert [f["event"] for f in got] == ["action.updated", "monitor.status", "incident.opened"]
        await mine.close()
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await link.close()


async def test_a_manual_incidents_news_reach_a_scoped_socket_when_all_its_targets_are_in_scope(
    make_client: MakeClient,
) -> None:
    """Opened, updated and acknowledged live, placed by the incident's targets: Acme's alone
    reach the Acme viewer; Globex's, and one on both clients, never do (as over HTTP)."""
    client = await make_client()
    acme = await _client_tree(client, "Acme")
    globex = await _client_tree(client, "Globex")
    scoped = await _acme_viewer(client, acme)
    mine = await _socket(client, scoped["token"])
    await subscribe(mine, "incidents")

    def on(*sides: dict[str, Any]) -> list[dict[str, str]]:
        return [{"kind": "server", "id": side["server"]["id"]} for side in sides]

    made = {}
    for name, targets in (("globex", on(globex)), ("both", on(acme, globex)), ("acme", on(acme))):
        body = {"title": f"{name} outage", "severity": "major", "targets": targets}
        made[name] = (await post(client, "/api/incidents", body))["id"]
    for name in ("globex", "both", "acme"):  # Acme's last: absence of the others means something
        url = f"/api/incidents/{made[name]}"
        await post(client, f"{url}/updates", {"state": "identified", "message": f"{name} found"})
        assert (await client.post(f"{url}/acknowledge")).status == 200
    want = ["incident.opened", "incident.updated", "incident.acknowledged"]
    got = await _frames_until(mine, lambda fs: [f.get("event") for f in fs] == want)
    assert {f["data"]["incidentId"] for f in got} == {made["acme"]}
    assert got[1]["data"]["message"] == "acme found"
    assert not _mentions(got, globex["server"]["id"])
    await mine.close()
