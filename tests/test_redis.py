"""Redis as cache, bus, state mirror and action queue, against a real Redis server.

Each test uses its own key prefix (redis_helpers.redis_prefix) and removes its keys after.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis.asyncio as aredis
from aiohttp import web
from conftest import Client, post
from daemon import Daemon
from redis_helpers import SHARED_URL, PrivateRedis
from ws_helpers import frame, subscribe

from dragonopsd.actions.queue import RedisQueue
from dragonopsd.appkeys import ACTIONS, MONITORS, REDIS
from dragonopsd.bus import RedisBus
from dragonopsd.config import RedisConfig
from dragonopsd.redislink.client import RedisLink

MakeClient = Callable[..., Awaitable[Client]]
PASSWORD = "redis-pass-9c1e5"


async def until(check: Callable[[], Awaitable[bool]], wait: float = 5.0) -> None:
    """Poll an async condition (bounded)."""
    async with asyncio.timeout(wait):
        while not await check():
            await asyncio.sleep(0.05)


async def test_dashboard_stats_are_cached_in_redis_and_dropped_on_writes(
    make_client: MakeClient, redis_prefix: str
) -> None:
    client = await make_client(redis={"url": SHARED_URL, "prefix": redis_prefix})
    r = aredis.Redis.from_url(SHARED_URL)
    key = f"{redis_prefix}:cache:stats:dashboard"
    try:
        first = await (await client.get("/api/stats/dashboard")).json()
        cached = await r.get(key)
        assert cached is not None and json.loads(cached)["clients"] == first["clients"]
        assert 0 < await r.pttl(key) <= 60_000
        await post(client, "/api/clients", {"name": "Acme"})
        assert await r.get(key) is None  # the write invalidated it
        second = await (await client.get("/api/stats/dashboard")).json()
        assert second["clients"] == first["clients"] + 1
        ready = await (await client.get("/readyz")).json()
        assert ready["checks"]["redis"] == "ok"
        scrape = await (await client.get("/metrics")).text()
        assert "dragonops_redis_up 1.0" in scrape
    finally:
        await r.aclose()


async def test_same_api_without_redis(client: Client) -> None:
    """No [redis] url: the in-memory cache answers the same stats, /readyz has no redis."""
    first = await (await client.get("/api/stats/dashboard")).json()
    await post(client, "/api/clients", {"name": "Acme"})
    second = await (await client.get("/api/stats/dashboard")).json()
    assert second["clients"] == first["clients"] + 1
    ready = await (await client.get("/readyz")).json()
    assert "redis" not in ready["checks"] and client.app[REDIS] is None


async def test_events_cross_processes_through_redis(
    make_client: MakeClient, redis_prefix: str
) -> None:
    """An event published by another process (its own link and bus) reaches a websocket
    client of this one; this one's own events reach the other, once, with their payload."""
    client = await make_client(redis={"url": SHARED_URL, "prefix": redis_prefix})
    other_link = RedisLink(RedisConfig(url=SHARED_URL, prefix=redis_prefix), name="other")
    other = RedisBus(other_link)
    tasks = [asyncio.create_task(t()) for t in (other.run_publisher, other.run_reader)]
    try:
        await other_link.ping()
        heard = other.subscribe(["inventory"])
        async with client.ws_connect("/api/ws") as ws:
            await subscribe(ws, "monitors.m-remote")
            await until(lambda: _subscribed(client.app[REDIS], redis_prefix))
            await until(lambda: _subscribed(other_link, redis_prefix, at_least=2))
            other.publish("monitors.m-remote", {"monitorId": "m-remote", "ok": True},
                          "monitor.heartbeat")  # fmt: skip
            f = await frame(ws)
            assert (f["type"], f["topic"], f["data"]) == (
                "event", "monitors.m-remote", {"monitorId": "m-remote", "ok": True}
            )  # fmt: skip
            made = await post(client, "/api/clients", {"name": "Acme"})
            async with asyncio.timeout(5):
                event = await heard.queue.get()
            assert event.kind == "inventory.changed"
            assert json.loads(bytes(event.data))["id"] == made["id"]
            await asyncio.sleep(0.3)
            assert heard.queue.empty()  # delivered once
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await other_link.close()


async def _subscribed(link: RedisLink | None, prefix: str, at_least: int = 1) -> bool:
    assert link is not None
    counts: Any = await link.client.pubsub_numsub(f"{prefix}:events")
    return int(counts[0][1]) >= at_least


async def test_latest_monitor_state_is_mirrored_into_a_redis_hash(
    make_client: MakeClient, redis_prefix: str, aiohttp_server: Any
) -> None:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", ok)
    target = await aiohttp_server(app)
    client = await make_client(redis={"url": SHARED_URL, "prefix": redis_prefix})
    mon = await post(client, "/api/monitors", {"name": "web", "kind": "http",
                     "url": str(target.make_url("/")), "interval": 5, "timeout": 2})  # fmt: skip
    r = aredis.Redis.from_url(SHARED_URL)
    try:
        await client.post(f"/api/monitors/{mon['id']}/check")

        async def mirrored() -> bool:
            return await r.hget(f"{redis_prefix}:state:monitors", mon["id"]) is not None

        await until(mirrored, 5)
        state = json.loads(await r.hget(f"{redis_prefix}:state:monitors", mon["id"]))
        assert state["monitorId"] == mon["id"] and state["ok"] is True
        assert 0 < await r.ttl(f"{redis_prefix}:state:monitors") <= 300
        assert (await client.delete(f"/api/monitors/{mon['id']}")).status == 204

        async def pruned() -> bool:
            return not await mirrored()

        await until(pruned, 15)  # a deleted monitor's state goes too
    finally:
        await r.aclose()


async def test_actions_go_through_a_redis_stream_and_are_acknowledged(
    make_client: MakeClient, redis_prefix: str, tree: Any
) -> None:
    client = await make_client(
        redis={"url": SHARED_URL, "prefix": redis_prefix},
        actions={"duration_seconds": 0.1},
    )
    r = aredis.Redis.from_url(SHARED_URL)
    stream = f"{redis_prefix}:actions"
    try:
        c = await post(client, "/api/clients", {"name": "Acme"})
        p = await post(client, "/api/projects", {"clientId": c["id"], "name": "Portal"})
        e = await post(client, "/api/environments", {"projectId": p["id"], "name": "Prod"})
        s = await post(client, "/api/servers", {"environmentId": e["id"], "name": "web-1"})
        action = await post(client, f"/api/servers/{s['id']}/actions", {"action": "restart"},
                            status=202)  # fmt: skip
        entries = await r.xrange(stream)
        assert [f[b"id"].decode() for _, f in entries] == [action["id"]]

        async def settled() -> bool:
            got = await (await client.get(f"/api/actions/{action['id']}")).json()
            return bool(got["state"] == "succeeded")

        await until(settled, 5)
        pending = await r.xpending(stream, "executors")
        assert pending["pending"] == 0
        assert client.app[ACTIONS] is not None
    finally:
        await r.aclose()


async def test_redis_away_degrades_and_recovers(
    make_client: MakeClient, private_redis: PrivateRedis, redis_prefix: str
) -> None:
    """Redis stops: the API keeps serving, /readyz says degraded (503 only when required),
    and cache reads fall back to memory; Redis returns: the link recovers by itself."""
    client = await make_client(redis={"url": private_redis.url, "prefix": redis_prefix})
    strict = await make_client(
        redis={"url": private_redis.url, "prefix": redis_prefix, "required": True}
    )
    link = client.app[REDIS]
    assert link is not None and link.up
    private_redis.stop()
    await post(client, "/api/clients", {"name": "Acme"})  # writes never wait for Redis
    await until(lambda: _away(client), 5)
    ready = await client.get("/readyz")
    assert ready.status == 200 and (await ready.json())["checks"]["redis"] == "degraded"
    await until(lambda: _away(strict), 5)
    assert (await strict.get("/readyz")).status == 503
    stats = await (await client.get("/api/stats/dashboard")).json()
    assert stats["clients"] == 1
    errors = link.errors
    assert errors > 0
    scrape = await (await client.get("/metrics")).text()
    assert "dragonops_redis_up 0.0" in scrape
    assert f"dragonops_redis_errors_total {float(link.errors)}" in scrape
    private_redis.start()  # same port
    await until(lambda: _back(client), 10)
    assert (await client.get("/readyz")).status == 200
    assert (await (await client.get("/api/stats/dashboard")).json())["clients"] == 1


def test_redis_outages_are_logged_once_each_without_the_password(tmp_path: Path) -> None:
    """A real daemon and a Redis of its own, stopped and started: the first failure of each
    outage is one WARNING naming the URL (password masked), however many retries follow;
    each recovery is one INFO. Unreachable from the start counts as an outage too."""
    server = PrivateRedis(tmp_path, password=PASSWORD)
    server.start()
    server.stop()  # away before the daemon starts
    env = {"DRAGONOPS_REDIS__URL": server.url}
    masked = f"redis://***@127.0.0.1:{server.port}/0"
    try:
        with Daemon(tmp_path / "state", env=env) as d:
            d.wait_listening()
            away = d.wait_log(r"WARNING dragonopsd\.redis: .*unreachable.*")
            assert masked in away[0], away[0]
            server.start()
            back = d.wait_log(r"INFO dragonopsd\.redis: .*answering.*", timeout=15)
            assert masked in back[0], back[0]
            server.stop()
            d.wait_log(r"WARNING dragonopsd\.redis: .*unreachable.*", start=back.end())
            errors = _redis_errors(d)
            while _redis_errors(d) < errors + 3:  # the daemon keeps retrying, silently
                time.sleep(0.2)
            server.start()
            d.wait_log(r"INFO dragonopsd\.redis: .*answering.*", timeout=15, start=back.end())
            assert d.stop() == 0
        lines = [line for line in d.log.splitlines() if " dragonopsd.redis: " in line]
        warnings = [line for line in lines if " WARNING " in line]
        infos = [line for line in lines if " INFO " in line and "answering" in line]
        assert len(warnings) == 2 and len(infos) == 2, "\n".join(lines)
        assert PASSWORD not in d.log
    finally:
        server.stop()


def _redis_errors(d: Daemon) -> float:
    with urllib.request.urlopen(f"{d.url}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    match = re.search(r"^dragonops_redis_errors_total (\S+)$", text, re.M)
    assert match, text
    return float(match[1])


async def _away(client: Client) -> bool:
    body = await (await client.get("/readyz")).json()
    return bool(body["checks"]["redis"] == "degraded")


async def _back(client: Client) -> bool:
    body = await (await client.get("/readyz")).json()
    return bool(body["checks"]["redis"] == "ok")


async def test_action_ids_left_by_a_dead_consumer_are_claimed(redis_prefix: str) -> None:
    """At-least-once: an id delivered to a consumer that died before acknowledging it is
    delivered again to another consumer after claim_idle (XAUTOCLAIM), then acknowledged."""
    cfg = RedisConfig(url=SHARED_URL, prefix=redis_prefix, claim_idle=1.0)
    dead_link, live_link = RedisLink(cfg, name="dead"), RedisLink(cfg, name="live")
    dead, live = RedisQueue(dead_link), RedisQueue(live_link)
    try:
        assert await dead_link.ping() and await live_link.ping()
        await dead.put("action-1")
        async with asyncio.timeout(5):
            assert await dead.get() == "action-1"
        await dead.close()  # dies holding it: never done()
        async with asyncio.timeout(10):
            assert await live.get() == "action-1"
        await live.done("action-1")
        pending = await live_link.client.xpending(f"{redis_prefix}:actions", "executors")
        assert pending["pending"] == 0
    finally:
        await live.close()
        await dead_link.close()
        await live_link.close()


async def test_malformed_results_are_skipped_and_acknowledged(
    make_client: MakeClient, redis_prefix: str
) -> None:
    """Garbage on the results stream (not JSON, wrong shape, unknown monitor) is counted and
    acknowledged; a good result after it is still consumed."""
    client = await make_client(redis={"url": SHARED_URL, "prefix": redis_prefix})
    mon = await post(client, "/api/monitors", {"name": "far", "kind": "tcp", "host": "127.0.0.1",
                     "port": 9, "locations": ["eu"], "interval": 60})  # fmt: skip
    r = aredis.Redis.from_url(SHARED_URL)
    remote = client.app[MONITORS].engine.remote
    stream = f"{redis_prefix}:results:{remote.reply_to}"  # this core's own results stream
    good = {"monitor_id": mon["id"], "round": 1, "location": "eu", "worker": "w", "at": 1.0e9}
    try:
        await r.xadd(stream, {b"result": b"not json at all"})
        await r.xadd(stream, {b"result": b'{"monitor_id": 5}'})
        await r.xadd(stream, {b"result": json.dumps({**good, "monitor_id": "gone"}).encode()})
        await r.xadd(stream, {b"result": json.dumps(good).encode()})

        async def consumed() -> bool:
            groups = await r.xinfo_groups(stream)
            return bool(groups) and groups[0]["pending"] == 0 and groups[0]["lag"] == 0

        await until(consumed, 10)
        assert (remote.malformed, remote.received) == (2, 2)
        assert client.app[REDIS] is not None and client.app[REDIS].up
    finally:
        await r.aclose()
