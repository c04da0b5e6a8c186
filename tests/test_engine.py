"""The probe engine end to end: real targets on loopback, real webhook receiver, real SQLite."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import hmac
import json
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trustme
from aiohttp import web
from conftest import Client, post

from dragonopsd.appkeys import ENGINE_VIEW, MONITORS

pytestmark = pytest.mark.backends

MakeClient = Callable[..., Awaitable[Client]]
SECRET = "webhook-signing-secret-123"


class Target:
    """An HTTP service whose health the test flips."""

    def __init__(self) -> None:
        self.status = 200
        self.hits = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        return web.json_response(
            {"status": "ok" if self.status < 400 else "bad"}, status=self.status
        )


class Receiver:
    """A webhook receiver that checks the HMAC signature of every delivery."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.bad = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        want = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        if request.headers.get("X-DragonOps-Signature") != want:
            self.bad += 1
            return web.Response(status=401)
        self.events.append(json.loads(body))
        return web.Response(status=204)


async def serve(aiohttp_server: Any, path: str, handler: Any) -> str:
    app = web.Application()
    app.router.add_route("*", path, handler)
    server = await aiohttp_server(app)
    return str(server.make_url(path))


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def status_of(client: Client, monitor_id: str) -> str:
    board = await (await client.get("/api/monitoring")).json()
    return next(m["status"] for m in board["items"] if m["monitorId"] == monitor_id)


def http_monitor(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "api",
        "kind": "http",
        "url": url,
        "interval": 1,
        "timeout": 1,
        "conditions": ["[STATUS] == 200", "[BODY].status == ok"],
        **extra,
    }


async def test_down_and_up_with_incident_and_signed_notifications(
    client: Client, aiohttp_server: Any
) -> None:
    target, receiver = Target(), Receiver()
    url = await serve(aiohttp_server, "/health", target.handle)
    hook = await serve(aiohttp_server, "/hook", receiver.handle)
    await post(
        client,
        "/api/notifications",
        {"name": "ops", "kind": "webhook", "config": {"url": hook, "secret": SECRET}},
    )
    m = await post(client, "/api/monitors", http_monitor(url))
    await until(lambda: _is(client, m["id"], "up"))

    target.status = 503
    await until(lambda: _is(client, m["id"], "down"))

    async def one_open() -> bool:  # the incident is committed just after the status flips
        items = (await (await client.get("/api/incidents?status=open")).json())["items"]
        return len(items) == 1

    await until(one_open)
    open_incidents = await (await client.get("/api/incidents?status=open")).json()
    [incident] = open_incidents["items"]
    assert incident["monitorId"] == m["id"] and "503" in incident["cause"]
    await until(lambda: _has(receiver, "down"))

    target.status = 200
    await until(lambda: _is(client, m["id"], "up"))
    await until(lambda: _has(receiver, "up"))
    closed = await (await client.get(f"/api/incidents?monitorId={m['id']}")).json()
    assert closed["items"][0]["closedAt"] and closed["items"][0]["durationSeconds"] >= 0
    up = next(e for e in receiver.events if e["event"] == "up")
    assert up["downtimeSeconds"] is not None and up["monitorId"] == m["id"]
    assert receiver.bad == 0
    assert [e["event"] for e in receiver.events].count("down") == 1  # no repeats while down


async def _is(client: Client, monitor_id: str, status: str) -> bool:
    return await status_of(client, monitor_id) == status


async def _has(receiver: Receiver, event: str) -> bool:
    return any(e["event"] == event for e in receiver.events)


async def test_retries_hold_pending_before_down(client: Client, aiohttp_server: Any) -> None:
    target = Target()
    target.status = 500
    url = await serve(aiohttp_server, "/h", target.handle)
    m = await post(
        client, "/api/monitors", http_monitor(url, interval=30, retries=2, retryInterval=1)
    )
    report = await (await client.post(f"/api/monitors/{m['id']}/check")).json()
    assert report["status"] == "pending" and not report["ok"]
    assert report["conditions"][0]["success"] is False
    assert "[STATUS] (500) == 200" in report["conditions"][0]["detail"]
    # the two quick retries (1 s apart) turn it down long before the 30 s interval
    await until(lambda: _is(client, m["id"], "down"), timeout=6)


async def test_check_now_reports_every_condition(client: Client, aiohttp_server: Any) -> None:
    target = Target()
    url = await serve(aiohttp_server, "/h", target.handle)
    m = await post(client, "/api/monitors", http_monitor(url, interval=60))
    report = await (await client.post(f"/api/monitors/{m['id']}/check")).json()
    assert report["ok"] and report["status"] == "up" and report["latencyMs"] > 0
    assert [c["success"] for c in report["conditions"]] == [True, True]
    assert report["context"]["STATUS"] == 200 and "BODY" not in report["context"]


async def test_maintenance_window_means_no_incident(client: Client, aiohttp_server: Any) -> None:
    target = Target()
    target.status = 500
    url = await serve(aiohttp_server, "/h", target.handle)
    m = await post(client, "/api/monitors", http_monitor(url, interval=60))
    now = time.time()
    await post(
        client,
        "/api/maintenance",
        {
            "name": "deploy",
            "kind": "one-off",
            "startsAt": _iso(now - 60),
            "endsAt": _iso(now + 600),
            "scope": {"monitorIds": [m["id"]]},
        },
    )
    report = await (await client.post(f"/api/monitors/{m['id']}/check")).json()
    assert report["status"] == "maintenance"
    incidents = await (await client.get("/api/incidents")).json()
    assert incidents["items"] == []


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


async def test_stopped_server_suppresses_dependent_alerts(
    client: Client, aiohttp_server: Any, tree: Any
) -> None:
    t = await tree()
    receiver = Receiver()
    hook = await serve(aiohttp_server, "/hook", receiver.handle)
    await post(
        client,
        "/api/notifications",
        {"name": "ops", "kind": "webhook", "config": {"url": hook, "secret": SECRET}},
    )
    target = Target()
    target.status = 502
    url = await serve(aiohttp_server, "/h", target.handle)
    await client.patch(f"/api/servers/{t['server']['id']}", json={"status": "stopped"})
    m = await post(
        client, "/api/monitors", http_monitor(url, interval=60, serverId=t["server"]["id"])
    )
    await asyncio.sleep(0.2)  # the engine refreshes its view of the inventory
    report = await (await client.post(f"/api/monitors/{m['id']}/check")).json()
    assert report["status"] == "down"
    [incident] = (await (await client.get("/api/incidents")).json())["items"]
    assert incident["rootCause"] == f"server web-1 ({t['server']['id']}) is stopped"
    await asyncio.sleep(0.5)
    assert receiver.events == []  # the root cause is the server, not this monitor


async def test_push_monitor_up_down_and_silence(client: Client) -> None:
    m = await post(
        client,
        "/api/monitors",
        {"name": "backup", "kind": "push", "interval": 1, "grace": 0, "timeout": 1},
    )
    token = m["pushToken"]
    assert token and len(token) >= 24
    anon = {"Authorization": ""}
    resp = await client.get(f"/api/push/{token}?status=up&ping=12.5", headers=anon)
    assert resp.status == 200
    assert await status_of(client, m["id"]) == "up"
    resp = await client.post(f"/api/push/{token}?status=down&msg=disk%20full", headers=anon)
    assert resp.status == 200 and await status_of(client, m["id"]) == "down"
    await client.get(f"/api/push/{token}", headers=anon)
    assert await status_of(client, m["id"]) == "up"
    await until(lambda: _is(client, m["id"], "down"), timeout=5)  # nobody pushes any more
    board = await (await client.get("/api/monitoring")).json()
    assert (
        "no push received"
        in next(x for x in board["items"] if x["monitorId"] == m["id"])["message"]
    )
    assert (await client.get("/api/push/not-a-token", headers=anon)).status == 404
    assert (await client.get(f"/api/push/{token}?status=maybe", headers=anon)).status == 422
    assert (await client.get(f"/api/push/{token}?ping=fast", headers=anon)).status == 422


async def test_ssrf_targets_are_refused_at_check_time(client: Client) -> None:
    m = await post(
        client, "/api/monitors", http_monitor("http://169.254.169.254/latest/", interval=60)
    )
    report = await (await client.post(f"/api/monitors/{m['id']}/check")).json()
    assert not report["ok"] and "169.254.169.254" in report["error"]


async def test_history_and_uptime_after_checks(client: Client, aiohttp_server: Any) -> None:
    target = Target()
    url = await serve(aiohttp_server, "/h", target.handle)
    # disabled: only the four checks below run (a new enabled monitor is checked within 2 s)
    m = await post(client, "/api/monitors", http_monitor(url, interval=60, enabled=False))
    for status in (200, 200, 200, 500):
        target.status = status
        await client.post(f"/api/monitors/{m['id']}/check")
    await asyncio.sleep(1.3)  # one history flush
    hist = await (await client.get(f"/api/monitors/{m['id']}/history?step=1h")).json()
    assert sum(p["up"] + p["down"] + p["pending"] for p in hist["points"]) == 4
    up = await (await client.get(f"/api/monitors/{m['id']}/uptime?windows=24h,30d")).json()
    day = up["windows"][0]
    assert day["checks"] == 4 and abs(day["uptime"] - 0.75) < 1e-9 and day["p95Ms"] > 0
    assert set(up["incidents"]) == {"24h", "30d"}
    for bad in ("windows=forever", "windows=", "windows=500d"):
        assert (await client.get(f"/api/monitors/{m['id']}/uptime?{bad}")).status == 422
    stats = await (await client.get("/api/stats/dashboard")).json()
    assert stats["monitors"] == {"total": 1, "paused": 1}


async def test_monitor_validation_names_the_field(client: Client, tree: Any) -> None:
    cases = [
        ({"name": "x", "kind": "http"}, "$.url"),
        ({"name": "x", "kind": "tcp", "host": "h"}, "$.port"),
        ({"name": "x", "kind": "tcp", "host": "h", "port": 1, "url": "http://a"}, "$.url"),
        ({"name": "x", "kind": "http", "url": "ftp://a"}, "$.url"),
        ({"name": "x", "kind": "http", "url": "http://a", "interval": 0.5}, "$.interval"),
        (
            {
                "name": "x",
                "kind": "http",
                "url": "http://a",
                "conditions": ["[STATUS] == 200", "[STATUS] = 2"],
            },
            "$.conditions[1]",
        ),
        (
            {
                "name": "x",
                "kind": "http",
                "url": "http://a",
                "serverId": "00000000-0000-4000-8000-000000000000",
            },
            "$.serverId",
        ),
        ({"name": "x", "kind": "gopher"}, "$.kind"),
        ({"name": "x", "kind": "http", "url": "http://a", "colour": 1}, "$.colour"),
        (
            {"name": "x", "kind": "http", "url": "http://a", "headers": {"X": "a\r\nb"}},
            "$.headers[...]",
        ),  # msgspec names a mapping value this way
    ]
    for body, field in cases:
        resp = await client.post("/api/monitors", json=body)
        assert resp.status == 422, (body, await resp.text())
        problem = await resp.json(content_type="application/problem+json")
        assert problem["errors"][0]["field"] == field, (body, problem)
    assert (await (await client.get("/api/monitors")).json())["items"] == []


async def test_patch_is_a_merge_and_revalidates(client: Client) -> None:
    m = await post(
        client,
        "/api/monitors",
        {"name": "x", "kind": "tcp", "host": "127.0.0.1", "port": 9, "interval": 60},
    )
    resp = await client.patch(f"/api/monitors/{m['id']}", json={"interval": 30, "tags": ["db"]})
    body = await resp.json()
    assert resp.status == 200 and body["interval"] == 30 and body["port"] == 9
    bad = await client.patch(f"/api/monitors/{m['id']}", json={"kind": "http"})
    assert bad.status == 422  # an http monitor needs a url and has no port
    assert (await client.patch(f"/api/monitors/{m['id']}", json={"tags": None})).status == 200
    assert (await (await client.get(f"/api/monitors/{m['id']}")).json())["tags"] == []
    assert (await client.delete(f"/api/monitors/{m['id']}")).status == 204
    assert (await client.get(f"/api/monitors/{m['id']}")).status == 404


async def test_default_timeout_fits_the_interval(client: Client) -> None:
    """A timeout nobody sent is never the reason a monitor is refused: it is min(10 s,
    0.8 x interval), on create and when a PATCH changes only the interval. Only a timeout
    the user gave may exceed the interval, and that is a 422 naming it."""
    tcp = {"kind": "tcp", "host": "127.0.0.1", "port": 9, "enabled": False}
    m = await post(client, "/api/monitors", {"name": "fast", "interval": 5, **tcp})
    assert m["timeout"] == 4.0
    slow = await post(client, "/api/monitors", {"name": "slow", "interval": 60, **tcp})
    assert slow["timeout"] == 10.0
    resp = await client.patch(f"/api/monitors/{slow['id']}", json={"interval": 2})
    body = await resp.json()
    assert resp.status == 200 and body["timeout"] == 1.6, body
    resp = await client.patch(f"/api/monitors/{slow['id']}", json={"interval": 120})
    assert (await resp.json())["timeout"] == 10.0  # still the default: it follows the interval

    resp = await client.post(
        "/api/monitors", json={"name": "bad", "interval": 5, "timeout": 6, **tcp}
    )
    problem = await resp.json(content_type="application/problem+json")
    assert resp.status == 422 and problem["errors"][0]["field"] == "$.timeout", problem
    explicit = await post(
        client, "/api/monitors", {"name": "given", "interval": 30, "timeout": 20, **tcp}
    )
    resp = await client.patch(f"/api/monitors/{explicit['id']}", json={"interval": 10})
    problem = await resp.json(content_type="application/problem+json")
    assert resp.status == 422 and problem["errors"][0]["field"] == "$.timeout", problem
    assert "exceed" in problem["detail"]
    resp = await client.patch(
        f"/api/monitors/{explicit['id']}", json={"interval": 10, "timeout": None}
    )
    assert resp.status == 200 and (await resp.json())["timeout"] == 8.0


async def test_if_match_guards_monitor_writes(client: Client) -> None:
    """The ETag GET gives is the one PATCH/DELETE check: a write based on a stale read gets
    412 and changes nothing (two operators editing the same monitor lose no update)."""
    m = await post(
        client,
        "/api/monitors",
        {"name": "db", "kind": "tcp", "host": "127.0.0.1", "port": 9, "interval": 60},
    )
    url = f"/api/monitors/{m['id']}"
    etag = (await client.get(url)).headers["ETag"]
    unchanged = await client.get(url, headers={"If-None-Match": etag})
    assert unchanged.status == 304 and await unchanged.read() == b""
    ok = await client.patch(url, json={"interval": 30}, headers={"If-Match": etag})
    assert ok.status == 200
    fresh = ok.headers["ETag"]
    assert fresh != etag and (await client.get(url)).headers["ETag"] == fresh
    assert (await client.get(url, headers={"If-None-Match": etag})).status == 200  # changed
    stale = await client.patch(url, json={"interval": 120}, headers={"If-Match": etag})
    assert stale.status == 412
    assert stale.headers["Content-Type"].startswith("application/problem+json")
    assert (await (await client.get(url)).json())["interval"] == 30
    assert (await client.delete(url, headers={"If-Match": etag})).status == 412
    assert (await client.get(url)).status == 200
    assert (await client.patch(url, json={"tags": ["a"]}, headers={"If-Match": "*"})).status == 200
    fresh = (await client.get(url)).headers["ETag"]
    assert (await client.delete(url, headers={"If-Match": fresh})).status == 204
    assert (await client.get(url)).status == 404


async def test_config_managed_monitors(make_client: MakeClient, tmp_path: Any) -> None:
    homepage = {
        "name": "homepage",
        "kind": "http",
        "url": "http://127.0.0.1:9/",
        "interval": 60,
        "retry_interval": 30,
    }
    # One broken table: reported, and nothing is synced (not even the good one).
    client = await make_client(monitors=[homepage, {"name": "broken", "kind": "tcp"}])
    assert (await (await client.get("/api/monitors")).json())["items"] == []
    sync = client.app[MONITORS].sync_config
    assert await sync([homepage, {"name": "broken", "kind": "tcp"}]) == [
        "monitors[1].host: required for kind tcp"
    ]
    assert await sync([homepage]) == []
    items = (await (await client.get("/api/monitors")).json())["items"]
    assert [(m["name"], m["managedBy"], m["retryInterval"]) for m in items] == [
        ("homepage", "config", 30)
    ]
    resp = await client.patch(f"/api/monitors/{items[0]['id']}", json={"interval": 5})
    assert resp.status == 409
    assert "managed by" in (await resp.json(content_type="application/problem+json"))["detail"]
    assert (await client.delete(f"/api/monitors/{items[0]['id']}")).status == 409


async def test_config_sync_is_all_or_nothing(client: Client) -> None:
    """A table naming a server that does not exist stops the whole sync: no monitor is
    created, changed or deleted, and the problem names the table."""
    sync = client.app[MONITORS].sync_config
    a = {"name": "a", "kind": "http", "url": "http://127.0.0.1:9/"}
    b = {"name": "b", "kind": "http", "url": "http://127.0.0.1:9/b"}
    assert await sync([a, b]) == []
    before = (await (await client.get("/api/monitors")).json())["items"]
    ghost = "00000000-0000-4000-8000-000000000000"
    problems = await sync(
        [
            {**a, "interval": 120},  # a change
            {"name": "c", "kind": "http", "url": "http://127.0.0.1:9/c"},  # a new one
            {"name": "d", "kind": "http", "url": "http://127.0.0.1:9/d", "server_id": ghost},
        ]  # and b gone
    )
    assert problems == [f"monitors[2].server_id: server {ghost} does not exist"]
    after = (await (await client.get("/api/monitors")).json())["items"]
    assert after == before
    assert sorted(client.app[ENGINE_VIEW].ids()) == sorted(m["id"] for m in before)


async def test_certificate_expiring_soon_is_notified_once(
    client: Client, aiohttp_server: Any
) -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=3)
    ca.issue_cert("127.0.0.1", not_after=soon).configure_cert(server_ctx)
    target = Target()
    app = web.Application()
    app.router.add_get("/h", target.handle)
    server = await aiohttp_server(app, ssl=server_ctx)
    receiver = Receiver()
    hook = await serve(aiohttp_server, "/hook", receiver.handle)
    await post(
        client,
        "/api/notifications",
        {"name": "ops", "kind": "webhook", "config": {"url": hook, "secret": SECRET}},
    )
    # the daemon does not trust this test CA: verification off, expiry still read
    m = await post(
        client,
        "/api/monitors",
        http_monitor(
            f"https://127.0.0.1:{server.port}/h",
            interval=60,
            verifyTls=False,
            conditions=["[STATUS] == 200", "[CERTIFICATE_EXPIRATION] > 48h"],
        ),
    )
    for _ in range(2):
        report = await (await client.post(f"/api/monitors/{m['id']}/check")).json()
        assert report["ok"], report
    await until(lambda: _has(receiver, "certificate"))
    await asyncio.sleep(0.3)
    certs = [e for e in receiver.events if e["event"] == "certificate"]
    assert len(certs) == 1 and certs[0]["certExpiresAt"][:10] == soon.date().isoformat()
