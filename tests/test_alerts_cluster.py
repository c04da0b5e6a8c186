"""Resource alerts with two cores (two apps in this process on one database and one Redis
prefix): the server's owner evaluates its rules, whichever core the agent pushes to."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio
from conftest import Client, post
from notify_helpers import Receiver, receiver_fixture  # noqa: F401 - the `receiver` fixture
from redis_helpers import SHARED_URL

from dragonopsd.appkeys import CLUSTER
from dragonopsd.cluster.rendezvous import owner

# The rules and incidents live in the store: run on SQLite and on PostgreSQL.
pytestmark = pytest.mark.backends

QUIET = {"cpu": 5.0, "memory": 30.0, "load": 0.1, "disk": 40.0, "netIn": 1.0, "netOut": 1.0}
NODES = ("core-a", "core-b")


async def push(client: Client, sid: str, cpu: float) -> None:
    resp = await client.post(f"/api/servers/{sid}/samples", json={**QUIET, "cpu": cpu})
    assert resp.status == 202, await resp.text()


async def until(what: str, check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    """check()'s first truthy answer, polled; fails naming what never happened."""
    deadline = time.monotonic() + timeout
    while not (answer := await check()):
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.05)
    return answer


async def test_one_breach_pushed_to_both_cores_is_one_incident_and_one_notification(
    make_client: Callable[..., Awaitable[Client]], redis_prefix: str, receiver: Receiver
) -> None:
    cores = [
        await make_client(
            redis={"url": SHARED_URL, "prefix": redis_prefix},
            cluster={"node": node, "dead_after": 3},
        )
        for node in NODES
    ]

    async def both_live() -> bool:  # each core's own view, the one it decides ownership by
        return all(core.app[CLUSTER].membership.active() == NODES for core in cores)  # type: ignore[union-attr]

    await until("both cores see each other", both_live)
    first = cores[0]
    c = await post(first, "/api/clients", {"name": "Acme"})
    p = await post(first, "/api/projects", {"clientId": c["id"], "name": "Portal"})
    e = await post(first, "/api/environments", {"projectId": p["id"], "name": "Production"})
    s = await post(
        first, "/api/servers", {"environmentId": e["id"], "name": "web-1", "sampling": "agent"}
    )
    sid = s["id"]
    hook = {"name": "ops", "kind": "webhook", "config": {"url": receiver.url("/hook")}}
    await post(first, "/api/notifications", hook)
    await post(first, "/api/alert-rules", {"metric": "cpu", "threshold": 90, "serverId": sid})
    boss = cores[NODES.index(owner(sid, list(NODES)) or "")]
    other = cores[1 - cores.index(boss)]

    async def state_on_owner(state: str) -> bool:
        rules = (await (await boss.get(f"/api/servers/{sid}/alerts")).json())["rules"]
        return bool(rules) and rules[0]["state"] == state

    async def rules_known() -> bool:  # each core reloads its rule book on the rule event
        for core in cores:
            if not (await (await core.get(f"/api/servers/{sid}/alerts")).json())["rules"]:
                return False
        return True

    await until("both cores know the rule", rules_known)
    # Pushed to the core that does not own the server: its owner evaluates it.
    await push(other, sid, 97)
    await until(
        "the owner fires on a sample pushed to the other core", lambda: state_on_owner("firing")
    )
    await push(boss, sid, 98)  # the same breach, now pushed to the owner
    await push(other, sid, 99)
    await push(other, sid, 20)
    await until(
        "the owner resolves on a sample pushed to the other core", lambda: state_on_owner("ok")
    )

    incidents = (await (await other.get(f"/api/servers/{sid}/alerts")).json())["incidents"]
    assert len(incidents) == 1 and incidents[0]["closedAt"], incidents

    async def resolved_notified() -> bool:
        return any(d.json()["event"] == "up" for d in receiver.at("/hook"))

    await until("the resolved notification", resolved_notified)
    events = [d.json()["event"] for d in receiver.at("/hook")]
    assert events == ["down", "up"], events


async def test_an_agent_pushing_to_another_core_is_not_taken_for_silent(
    make_client: Callable[..., Awaitable[Client]], redis_prefix: str
) -> None:
    """The core holding the sampling lease decides when an agent has gone silent; an agent
    that pushes only to another core is heard there, and so by the holder too."""
    cores = [
        await make_client(
            redis={"url": SHARED_URL, "prefix": redis_prefix},
            cluster={"node": node, "dead_after": 3},
            sampling={"interval": 0.1},  # silent after 3 intervals: 0.3 s
        )
        for node in NODES
    ]
    link = redis.asyncio.Redis.from_url(SHARED_URL)
    try:
        holder = await until(
            "a sampling lease holder", lambda: link.get(f"{redis_prefix}:cluster:lease:sampling")
        )
    finally:
        await link.aclose()
    boss = cores[NODES.index(holder.decode())]
    other = cores[1 - cores.index(boss)]
    c = await post(boss, "/api/clients", {"name": "Acme"})
    p = await post(boss, "/api/projects", {"clientId": c["id"], "name": "Portal"})
    e = await post(boss, "/api/environments", {"projectId": p["id"], "name": "Production"})
    s = await post(
        boss, "/api/servers", {"environmentId": e["id"], "name": "web-1", "sampling": "agent"}
    )
    seen: set[str] = set()
    deadline = time.monotonic() + 2.0  # more than six silent periods
    while time.monotonic() < deadline:
        await push(other, s["id"], 10)
        server = await (await boss.get(f"/api/servers/{s['id']}")).json()
        seen.add(server["status"])
        await asyncio.sleep(0.05)
    assert seen == {"running"}, seen
