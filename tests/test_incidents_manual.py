"""Incidents people write: manual incidents with updates, acknowledgements, their events on the
websocket, and repeat notifications that an acknowledgement stops (a real webhook receiver)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from conftest import Client, post
from notify_helpers import (
    Receiver,
    receiver_fixture,  # noqa: F401 - the `receiver` fixture
)
from ws_helpers import frame, subscribe

pytestmark = pytest.mark.backends

MakeClient = Callable[..., Awaitable[Client]]


async def _push_monitor(client: Client, name: str = "backup", **extra: Any) -> Any:
    return await post(client, "/api/monitors", {"name": name, "kind": "push", **extra})


async def test_a_manual_incident_lives_through_its_updates(client: Client, tree: Any) -> None:
    t = await tree()
    m = await _push_monitor(client, environmentId=t["environment"]["id"])
    body = {
        "title": "Checkout is slow",
        "severity": "major",
        "targets": [
            {"kind": "environment", "id": t["environment"]["id"]},
            {"kind": "monitor", "id": m["id"]},
        ],
        "message": "We are looking into it",
    }
    created = await post(client, "/api/incidents", body)
    assert created["kind"] == "manual" and created["state"] == "investigating"
    assert created["severity"] == "major" and created["closedAt"] is None
    assert created["openedBy"] and len(created["targets"]) == 2
    assert [u["message"] for u in created["updates"]] == ["We are looking into it"]
    ident = created["id"]

    url = f"/api/incidents/{ident}/updates"
    found = await post(client, url, {"state": "identified", "message": "A slow query"})
    assert found["state"] == "identified" and found["closedAt"] is None
    done = await post(client, url, {"state": "resolved", "message": "Index added"})
    assert done["state"] == "resolved" and done["closedAt"] and done["durationSeconds"] >= 0
    assert [u["state"] for u in done["updates"]] == ["investigating", "identified", "resolved"]
    # Resolved: nothing to acknowledge.
    resp = await client.post(f"/api/incidents/{ident}/acknowledge")
    assert resp.status == 409
    # A later update in another state re-opens it.
    again = await post(client, url, {"state": "investigating", "message": "It is back"})
    assert again["closedAt"] is None and again["state"] == "investigating"
    ack = await post(client, f"/api/incidents/{ident}/acknowledge", {}, status=200)
    assert ack["acknowledgedBy"] and ack["acknowledgedAt"]
    second = await post(client, f"/api/incidents/{ident}/acknowledge", {}, status=200)
    assert second["acknowledgedAt"] == ack["acknowledgedAt"]  # the first one stands

    listed = await (await client.get("/api/incidents?kind=manual")).json()
    assert [i["id"] for i in listed["items"]] == [ident]
    mine = await (await client.get(f"/api/incidents?monitorId={m['id']}")).json()
    assert [i["id"] for i in mine["items"]] == [ident]
    one = await (await client.get(f"/api/incidents/{ident}")).json()
    assert one["title"] == "Checkout is slow" and len(one["updates"]) == 4
    # A re-open forgets the acknowledgement: whoever took it on may not be on it any more.
    await post(client, url, {"state": "resolved", "message": "Fixed"})
    reopened = await post(client, url, {"state": "monitoring", "message": "Watching"})
    assert reopened["acknowledgedBy"] is None


C = {"kind": "client", "id": "CLIENT"}  # the tree's client, filled in by the test
BASE = {"title": "t", "severity": "minor", "targets": [C]}
BAD = [
    ({**BASE, "title": ""}, "$.title"),
    ({**BASE, "severity": "huge"}, "$.severity"),
    ({**BASE, "targets": []}, "$.targets"),
    ({**BASE, "targets": [{"kind": "rack", "id": "x"}]}, "$.targets[0].kind"),
    ({**BASE, "state": "resolved"}, "$.state"),
    ({**BASE, "targets": [C, C]}, "$.targets"),
    ({**BASE, "targets": [C, {"kind": "server", "id": "nope"}]}, "$.targets[1].id"),
    ({**BASE, "extra": 1}, "$.extra"),
]


@pytest.mark.parametrize(("body", "field"), BAD)
async def test_bad_incidents_are_422_naming_the_field_and_change_nothing(
    client: Client, tree: Any, body: dict[str, Any], field: str
) -> None:
    t = await tree()
    body = copy.deepcopy(body)  # the parameters are shared by both backends' runs
    for target in body.get("targets", []):
        if target["id"] == "CLIENT":
            target["id"] = t["client"]["id"]
    resp = await client.post("/api/incidents", json=body)
    problem = await resp.json()
    assert resp.status == 422, problem
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert field in [e["field"] for e in problem["errors"]] or field in problem["detail"], problem
    assert (await (await client.get("/api/incidents")).json())["items"] == []


async def test_bad_updates_are_refused(client: Client, tree: Any) -> None:
    t = await tree()
    target = [{"kind": "project", "id": t["project"]["id"]}]
    inc = await post(
        client, "/api/incidents", {"title": "x", "severity": "minor", "targets": target}
    )
    url = f"/api/incidents/{inc['id']}/updates"
    resp = await client.post(url, json={"state": "fixed", "message": "m"})
    assert resp.status == 422 and "$.state" in (await resp.text())
    resp = await client.post(url, json={"state": "identified", "message": ""})
    assert resp.status == 422 and "$.message" in (await resp.text())
    resp = await client.post(
        "/api/incidents/nope/updates", json={"state": "resolved", "message": "m"}
    )
    assert resp.status == 404
    resp = await client.post("/api/incidents/nope/acknowledge")
    assert resp.status == 404
    one = await (await client.get(f"/api/incidents/{inc['id']}")).json()
    assert one["updates"] == [] and one["state"] == "investigating"


async def test_incident_work_travels_on_the_websocket(client: Client, tree: Any) -> None:
    t = await tree()
    async with client.ws_connect("/api/ws") as ws:
        await subscribe(ws, "incidents")
        target = [{"kind": "server", "id": t["server"]["id"]}]
        body = {"title": "Disk", "severity": "critical", "targets": target}
        inc = await post(client, "/api/incidents", body)
        opened = await frame(ws)
        url = f"/api/incidents/{inc['id']}"
        await post(client, f"{url}/updates", {"state": "identified", "message": "Full"})
        updated = await frame(ws)
        await post(client, f"{url}/acknowledge", {}, status=200)
        acked = await frame(ws)
        await post(client, f"{url}/updates", {"state": "resolved", "message": "Cleaned"})
        closed = await frame(ws)
    assert opened["event"] == "incident.opened" and opened["data"]["title"] == "Disk"
    assert updated["event"] == "incident.updated" and updated["data"]["message"] == "Full"
    assert acked["event"] == "incident.acknowledged" and acked["data"]["by"]
    assert closed["event"] == "incident.closed" and closed["data"]["state"] == "resolved"
    assert {f["data"]["incidentId"] for f in (opened, updated, acked, closed)} == {inc["id"]}
    # A new subscriber's snapshot holds the open manual incidents, updates and all.
    still = await post(client, "/api/incidents", {**body, "message": "Still full"})
    async with client.ws_connect("/api/ws") as ws:
        frames = await subscribe(ws, "incidents")
    snap = [f["data"] for f in frames if f["type"] == "snapshot"]
    assert [(i["id"], i["updates"][0]["message"]) for i in snap] == [(still["id"], "Still full")]


async def _events(receiver: Receiver, kind: str) -> list[Any]:
    return [d.json() for d in receiver.seen if d.json()["event"] == kind]


async def _wait(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_repeats_stop_at_the_acknowledgement_and_come_back_on_reopen(
    make_client: MakeClient, receiver: Receiver
) -> None:
    client = await make_client(incidents={"repeat_interval": 0.3})
    t = await tree_for(client)
    await post(
        client,
        "/api/notifications",
        {"name": "ops", "kind": "webhook", "config": {"url": receiver.url("/hook")}},
    )
    target = [{"kind": "environment", "id": t["environment"]["id"]}]
    inc = await post(
        client,
        "/api/incidents",
        {"title": "DB", "severity": "major", "targets": target, "message": "Down"},
    )
    url = f"/api/incidents/{inc['id']}"

    async def reminders(at_least: int) -> bool:
        return len(await _events(receiver, "reminder")) >= at_least

    await _wait(lambda: reminders(2))
    assert (await _events(receiver, "incident"))[0]["title"] == "DB"
    await post(client, f"{url}/acknowledge", {}, status=200)

    async def acked() -> bool:
        return bool(await _events(receiver, "acknowledged"))

    await _wait(acked)
    [ack] = await _events(receiver, "acknowledged")
    assert ack["acknowledgedBy"] and ack["incidentId"] == inc["id"]
    before = len(await _events(receiver, "reminder"))
    await asyncio.sleep(1.2)  # four intervals: no repeat may come after the acknowledgement
    assert len(await _events(receiver, "reminder")) == before

    # Resolved, then re-opened: people hear of it again, and the repeats resume.
    await post(client, f"{url}/updates", {"state": "resolved", "message": "ok"})
    await post(client, f"{url}/updates", {"state": "investigating", "message": "again"})

    async def resolved_and_reopened() -> bool:
        news = [e["status"] for e in await _events(receiver, "incident")]
        return bool(await _events(receiver, "resolved")) and news[-1:] == ["investigating"]

    await _wait(resolved_and_reopened)
    await _wait(lambda: reminders(before + 1))


async def tree_for(client: Client) -> dict[str, Any]:
    """The tree fixture's chain, made through another client."""
    c = await post(client, "/api/clients", {"name": "Acme"})
    p = await post(client, "/api/projects", {"clientId": c["id"], "name": "Portal"})
    e = await post(client, "/api/environments", {"projectId": p["id"], "name": "Production"})
    return {"client": c, "project": p, "environment": e}


class Flip:
    """An HTTP service whose health the test flips."""

    def __init__(self) -> None:
        self.status = 200

    async def handle(self, request: web.Request) -> web.Response:
        return web.Response(status=self.status, text="ok")


async def test_a_monitors_incident_repeats_until_acknowledged_and_a_new_one_notifies(
    make_client: MakeClient, receiver: Receiver, aiohttp_server: Any
) -> None:
    client = await make_client(incidents={"repeat_interval": 0.3})
    flip = Flip()
    app = web.Application()
    app.router.add_get("/health", flip.handle)
    server = await aiohttp_server(app)
    await post(
        client,
        "/api/notifications",
        {"name": "ops", "kind": "webhook", "config": {"url": receiver.url("/hook")}},
    )
    monitor = {"name": "api", "kind": "http", "url": str(server.make_url("/health"))}
    m = await post(client, "/api/monitors", {**monitor, "interval": 1, "timeout": 1})
    flip.status = 503

    async def count(kind: str, at_least: int = 1) -> bool:
        return len(await _events(receiver, kind)) >= at_least

    await _wait(lambda: count("reminder", 2))
    [down] = await _events(receiver, "down")
    ident = down["incidentId"]
    await post(
        client, f"/api/incidents/{ident}/updates", {"state": "identified", "message": "503s"}
    )
    acked = await post(client, f"/api/incidents/{ident}/acknowledge", {}, status=200)
    assert acked["kind"] == "monitor" and acked["monitorId"] == m["id"]
    assert [u["message"] for u in acked["updates"]] == ["503s"]
    await _wait(lambda: count("acknowledged"))
    [ack] = await _events(receiver, "acknowledged")
    assert ack["monitorId"] == m["id"] and ack["acknowledgedBy"]
    before = len(await _events(receiver, "reminder"))
    await asyncio.sleep(1.2)  # four intervals
    assert len(await _events(receiver, "reminder")) == before

    flip.status = 200
    await _wait(lambda: count("up"))
    flip.status = 503  # a new incident: a DOWN, and repeats again (nobody acknowledged it)
    await _wait(lambda: count("down", 2))
    await _wait(lambda: count("reminder", before + 1))
    newest = (await _events(receiver, "reminder"))[-1]
    assert newest["incidentId"] != ident
