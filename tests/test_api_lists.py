"""Lists page the same way everywhere, incidents can be read one at a time, and times in
queries may be relative to now so that saved links keep working."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from conftest import Client, post
from test_engine import Target, http_monitor, serve

# Every test here that starts the app runs on SQLite and on PostgreSQL (conftest.py).
pytestmark = pytest.mark.backends


async def test_monitors_page_with_limit_and_cursor(client: Client) -> None:
    for name in ("c", "a", "b"):
        await post(client, "/api/monitors", {"name": name, "kind": "push", "interval": 60})
    first = await (await client.get("/api/monitors?limit=1")).json()
    assert [m["name"] for m in first["items"]] == ["a"]
    names = ["a"]
    cursor = first["nextCursor"]
    while cursor:
        page = await (
            await client.get("/api/monitors", params={"limit": 1, "cursor": cursor})
        ).json()
        names += [m["name"] for m in page["items"]]
        cursor = page["nextCursor"]
    assert names == ["a", "b", "c"]
    everything = await (await client.get("/api/monitors")).json()
    assert [m["name"] for m in everything["items"]] == ["a", "b", "c"]
    assert everything["nextCursor"] is None
    filtered = await (await client.get("/api/monitors?limit=5&q=B")).json()
    assert [m["name"] for m in filtered["items"]] == ["b"]
    for bad in ("limit=0", "limit=x", "limit=501", "cursor=nope"):
        resp = await client.get(f"/api/monitors?{bad}")
        assert resp.status == 422, bad
        assert resp.content_type == "application/problem+json"
        body = await resp.json()
        assert body["errors"][0]["field"] == bad.split("=")[0], body


async def test_one_incident_by_id_and_since_relative(client: Client, aiohttp_server: Any) -> None:
    target = Target()
    target.status = 503
    url = await serve(aiohttp_server, "/h", target.handle)
    m = await post(client, "/api/monitors", http_monitor(url, interval=60))
    report = await (await client.post(f"/api/monitors/{m['id']}/check")).json()
    assert report["status"] == "down"
    [listed] = (await (await client.get("/api/incidents?since=-1h")).json())["items"]
    one = await client.get(f"/api/incidents/{listed['id']}")
    assert one.status == 200
    assert await one.json() == listed
    assert listed["monitorName"] == "api" and listed["closedAt"] is None
    missing = await client.get("/api/incidents/nope")
    assert missing.status == 404
    assert missing.content_type == "application/problem+json"
    # An incident that opened now is not in a window that ended a day ago.
    day_ago = datetime.fromtimestamp(time.time() - 86_400, UTC).isoformat()
    old = await (await client.get("/api/incidents", params={"status": "closed"})).json()
    assert old["items"] == []
    assert (await client.get("/api/incidents", params={"since": day_ago})).status == 200
    for bad in ("since=-3x", "since=9999-12-31T23:59:59.999999+00:00x", "since=1e400", "q=x"):
        resp = await client.get(f"/api/incidents?{bad}")
        assert resp.status == 422, bad


async def test_history_accepts_relative_times(client: Client, aiohttp_server: Any) -> None:
    async def ok(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    url = await serve(aiohttp_server, "/h", ok)
    m = await post(client, "/api/monitors", http_monitor(url, interval=60))
    await client.post(f"/api/monitors/{m['id']}/check")
    recent = await client.get(f"/api/monitors/{m['id']}/history?since=-1h&step=60s")
    assert recent.status == 200, await recent.text()
    points = (await recent.json())["points"]
    hour_ago = time.time() - 3600
    assert points and all(hour_ago - 60 <= p["at"] <= time.time() for p in points), points
    for bad in ("since=-1y", "until=1e300", "since=0001-01-01T00:00:00Z"):
        resp = await client.get(f"/api/monitors/{m['id']}/history?{bad}")
        assert resp.status == 422, (bad, await resp.text())
        assert (await resp.json())["errors"][0]["field"] == bad.split("=")[0]
