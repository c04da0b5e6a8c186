"""What the daemon keeps per monitor stays out of the cyclic collector's walks.

Every full collection walks each object the collector tracks; with 25,000 monitors, a last
report per monitor (with its lists) and a route tuple per monitor topic were ~100,000 such
objects and ~85 ms loop pauses every few seconds, which delayed checks (tests/bench/
checkcost.py: start drift p99 67 ms, 20 ms once they were untracked). These tests pin that
down without timing anything: they ask the collector what it tracks.
"""

from __future__ import annotations

import gc
from typing import Any

from aiohttp import web
from conftest import Client, post

from dragonopsd.appkeys import MONITORS
from dragonopsd.bus import LocalBus


async def test_a_monitors_last_report_is_not_tracked_by_the_collector(
    client: Client, aiohttp_server: Any
) -> None:
    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", ok)
    server = await aiohttp_server(app)
    body = {
        "name": "Shop",
        "kind": "http",
        "url": str(server.make_url("/")),
        "conditions": ["[STATUS] == 200", "[BODY] == ok"],
    }
    monitor = await post(client, "/api/monitors", body)
    resp = await client.post(f"/api/monitors/{monitor['id']}/check")
    assert resp.status == 200, await resp.text()
    report = await resp.json()
    assert report["status"] == "up" and len(report["conditions"]) == 2, report

    rt = client.app[MONITORS].engine.runtime(monitor["id"])
    assert rt is not None and rt.last is not None
    gc.collect()  # a tuple of plain values is untracked when a collection first meets it
    assert not gc.is_tracked(rt.last)
    assert len(rt.last.conditions) == 2 and not gc.is_tracked(rt.last.conditions)
    assert not gc.is_tracked(rt.last.failed_locations)


async def test_topics_reaching_the_same_subscriptions_add_no_tracked_objects() -> None:
    bus = LocalBus()
    sub = bus.subscribe(["monitors.*"], maxsize=10)
    bus.publish("monitors.warm-up", {})
    gc.collect()
    before = len(gc.get_objects())
    for n in range(2000):
        bus.publish(f"monitors.{n}", None)
    gc.collect()
    grown = len(gc.get_objects()) - before
    assert grown < 100, f"{grown} more tracked objects for 2,000 topics"
    # The events still reach the subscription (its queue keeps the first ten).
    assert sub.queue.qsize() == 10
