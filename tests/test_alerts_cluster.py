"""Resource alerts with two cores (two apps in this process on one database and one Redis
prefix): the server's owner evaluates its rules, whichever core the agent pushes to, and when
two cores judge one server the database decides which of them opens and tells."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg
import msgspec
import pytest
import redis.asyncio
from conftest import Client, post, pushing_server
from notify_helpers import Receiver, receiver_fixture  # noqa: F401 - the `receiver` fixture
from pg import database
from redis_helpers import SHARED_URL

from dragonopsd.appkeys import ALERTS, CLUSTER, NOTIFIER
from dragonopsd.cluster.rendezvous import owner
from dragonopsd.monitoring.alert_notices import closing
from dragonopsd.store import migrations
from dragonopsd.store.alerts import AlertStore
from dragonopsd.store.postgres import apply_migrations

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
    sid = await pushing_server(first)
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
    sid = await pushing_server(boss)
    seen: set[str] = set()
    deadline = time.monotonic() + 2.0  # more than six silent periods
    while time.monotonic() < deadline:
        await push(other, sid, 10)
        server = await (await boss.get(f"/api/servers/{sid}")).json()
        seen.add(server["status"])
        await asyncio.sleep(0.05)
    assert seen == {"running"}, seen


async def two_cores(
    make_client: Callable[..., Awaitable[Client]], redis_prefix: str, receiver: Receiver
) -> tuple[list[Client], str, str]:
    """Two cores, an agent server, a webhook channel to receiver, both known to both cores:
    (the cores, the server id, the channel id)."""
    cores = [
        await make_client(
            redis={"url": SHARED_URL, "prefix": redis_prefix},
            cluster={"node": node, "dead_after": 3},
        )
        for node in NODES
    ]
    first = cores[0]
    sid = await pushing_server(first)
    hook = {"name": "ops", "kind": "webhook", "config": {"url": receiver.url("/hook")}}
    channel = await post(first, "/api/notifications", hook)

    async def channel_everywhere() -> bool:
        return all(channel["id"] in core.app[NOTIFIER].stats for core in cores)

    await until("both cores know the channel", channel_everywhere)
    return cores, sid, channel["id"]


async def rules_everywhere(cores: list[Client], sid: str, count: int) -> None:
    """Until every core has count rules in force on the server (the rule event reached it)."""

    async def known() -> bool:
        for core in cores:
            rules = (await (await core.get(f"/api/servers/{sid}/alerts")).json())["rules"]
            if len(rules) != count:
                return False
        return True

    await until(f"{count} rule(s) on every core", known)


async def delivered(cores: list[Client], receiver: Receiver, channel: str) -> list[str]:
    """The events the receiver got once every core wrote and sent all it decided."""
    for core in cores:
        await core.app[ALERTS].settled()

    async def drained() -> bool:
        notifiers = [core.app[NOTIFIER] for core in cores]
        sent = sum(n.stats[channel].sent for n in notifiers)
        idle = all(not any(n.backlog().values()) for n in notifiers)
        return idle and sent == len(receiver.at("/hook"))

    await until("the notifications delivered", drained)
    return [d.json()["event"] for d in receiver.at("/hook")]


async def test_a_breach_both_cores_judge_is_opened_and_notified_by_one_of_them(
    make_client: Callable[..., Awaitable[Client]], redis_prefix: str, receiver: Receiver
) -> None:
    """While the live cores change (a core's view lacks the other for up to a heartbeat) both
    may judge one server, each taking the same breach for new: the database decides. The core
    that opens the incident row notifies; the other carries on with that row silently, and
    the "resolved" comes from whichever closes the row."""
    cores, sid, channel = await two_cores(make_client, redis_prefix, receiver)
    first = cores[0]
    rule = await post(
        cores[1], "/api/alert-rules", {"metric": "cpu", "threshold": 90, "serverId": sid}
    )
    await rules_everywhere(cores, sid, 1)
    # The race, forced: each core's view claims the server (as when neither sees the other
    # yet), so each judges the samples it takes and those the other publishes.
    for core in cores:
        core.app[ALERTS].owns = lambda _server: True

    await push(cores[0], sid, 97)
    await push(cores[1], sid, 98)
    await until("a firing notification", lambda: asyncio.sleep(0, receiver.at("/hook")))
    await push(cores[0], sid, 99)  # the breach goes on: nothing new
    assert await delivered(cores, receiver, channel) == ["down"], receiver.seen
    for core in cores:
        rules = (await (await core.get(f"/api/servers/{sid}/alerts")).json())["rules"]
        assert [r["state"] for r in rules] == ["firing"], rules
    incidents = (await (await first.get(f"/api/servers/{sid}/alerts")).json())["incidents"]
    assert [(i["ruleId"], i["closedAt"]) for i in incidents] == [(rule["id"], None)], incidents

    # The breach ends on both cores: one of them closes the row and says so.
    await push(cores[1], sid, 20)
    await push(cores[0], sid, 10)
    await until(
        "the resolved notification", lambda: asyncio.sleep(0, len(receiver.at("/hook")) > 1)
    )
    assert await delivered(cores, receiver, channel) == ["down", "up"], receiver.seen
    down, up = (d.json() for d in receiver.at("/hook"))
    incidents = (await (await first.get(f"/api/servers/{sid}/alerts")).json())["incidents"]
    assert len(incidents) == 1 and incidents[0]["closedAt"], incidents
    assert down["incidentId"] == up["incidentId"] == incidents[0]["id"], (down, up)


async def test_a_rule_deleted_on_another_core_fires_nowhere_before_the_owner_reloads(
    make_client: Callable[..., Awaitable[Client]], redis_prefix: str, receiver: Receiver
) -> None:
    """A rule deleted on one core stays in the owner's book until the rule event reaches it
    and the book reloads; a breach landing in between must not be notified for that rule (the
    stored rule is gone: the database turns the opening down)."""
    cores, sid, channel = await two_cores(make_client, redis_prefix, receiver)
    boss = cores[NODES.index(owner(sid, list(NODES)) or "")]
    other = cores[1 - cores.index(boss)]
    hot = {"name": "cpu hot", "metric": "cpu", "threshold": 90, "serverId": sid}
    kept = await post(other, "/api/alert-rules", hot)
    gone = await post(other, "/api/alert-rules", {**hot, "name": "cpu hotter"})
    await rules_everywhere(cores, sid, 2)
    # The race, held open: the deletion is in the database (the API's own store call), its
    # announcement is not at the owner yet (it is never sent here).
    await other.app[ALERTS].rules.store.delete(gone["id"])

    await push(boss, sid, 97)
    await push(other, sid, 98)
    await until("a firing notification", lambda: asyncio.sleep(0, receiver.at("/hook")))
    assert await delivered(cores, receiver, channel) == ["down"], receiver.seen
    assert receiver.at("/hook")[0].json()["monitorName"] == "web-1: cpu hot"
    incidents = (await (await boss.get(f"/api/servers/{sid}/alerts")).json())["incidents"]
    assert [i["ruleId"] for i in incidents] == [kept["id"]], incidents

    await boss.app[ALERTS].rules.load()  # the announcement arrives: the book follows
    await push(other, sid, 10)
    await until(
        "the resolved notification", lambda: asyncio.sleep(0, len(receiver.at("/hook")) > 1)
    )
    assert await delivered(cores, receiver, channel) == ["down", "up"], receiver.seen
    assert {d.json()["monitorName"] for d in receiver.at("/hook")} == {"web-1: cpu hot"}


OLD_ROWS = """
INSERT INTO clients (id, name, status, created_at, updated_at)
    VALUES ('c', 'Acme', 'active', 't', 't');
INSERT INTO projects (id, client_id, name, status, created_at, updated_at)
    VALUES ('p', 'c', 'Portal', 'active', 't', 't');
INSERT INTO environments (id, project_id, name, status, created_at, updated_at)
    VALUES ('e', 'p', 'Production', 'active', 't', 't');
INSERT INTO servers (id, environment_id, name, type, status, created_at, updated_at)
    VALUES ('s', 'e', 'web-1', 'web', 'running', 't', 't');
INSERT INTO alert_incidents (id, server_id, rule_id, rule_name, metric, opened_at, closed_at,
        cause)
    VALUES ('first', 's', 'r', 'cpu hot', 'cpu', '2026-12-01T10:00:00.000Z', NULL, 'cpu 97'),
           ('twin', 's', 'r', 'cpu hot', 'cpu', '2026-12-01T10:00:00.000Z', NULL, 'cpu 97'),
           ('later', 's', 'r', 'cpu hot', 'cpu', '2026-12-01T10:00:01.000Z', NULL, 'cpu 98'),
           ('past', 's', 'r', 'cpu hot', 'cpu', '2026-11-01T10:00:00.000Z',
                '2026-11-01T11:00:00.000Z', 'cpu 99'),
           ('other', 's', 'q', 'disk full', 'disk', '2026-12-01T10:00:02.000Z', NULL, 'disk 95');
"""


async def test_the_upgrade_keeps_one_open_incident_per_rule_and_server(
    tmp_path: Path, storage_url: str
) -> None:
    """Open duplicates the race left before 0018 close (the earliest stays open); from then
    on the database refuses a second open incident of a rule on a server."""
    before = 17
    if storage_url:
        raw = await asyncpg.connect(storage_url)
        try:
            await apply_migrations(raw, migrations.available("postgres")[:before])
            await raw.execute(OLD_ROWS)
        finally:
            await raw.close()
    else:
        conn = await aiosqlite.connect(tmp_path / "dragonops.db", isolation_level=None)
        try:
            await migrations.migrate(conn, migrations.available()[:before])
            await conn.executescript(OLD_ROWS)
        finally:
            await conn.close()
    db = database(storage_url, tmp_path / "dragonops.db")
    await db.open()
    try:
        store = AlertStore(db)
        rows = {i.id: i for i in await store.incidents("s", 10)}
        assert {i.id for i in await store.open_incidents()} == {"first", "other"}
        for dup in ("twin", "later"):
            assert rows[dup].closed_at == rows[dup].opened_at, rows[dup]
            assert rows[dup].duration_seconds == 0 and "duplicate" in (rows[dup].resolution or "")
        assert rows["past"].closed_at == "2026-11-01T11:00:00.000Z"
        assert rows["past"].resolution is None

        again = msgspec.structs.replace(rows["first"], id="again", opened_at="2026-12-02")
        assert await store.open(again, stored_rule=False) == (rows["first"], False)
        assert await store.close(rows["twin"]) is False  # closed already: nobody tells again
        closed = closing(rows["first"], "2026-12-02T00:00:00.000Z", None)
        assert await store.close(closed) is True
        assert await store.open(again, stored_rule=True) == (None, False)  # no rule r stored
        assert await store.open(again, stored_rule=False) == (again, True)
    finally:
        await db.close()
