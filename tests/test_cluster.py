"""Several cores: rendezvous hashing, leases, and real `dragonopsd serve` processes sharing
the monitors of one SQLite file (WAL) and one Redis prefix, against a counting HTTP target."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import msgspec
import pytest
from cluster_helpers import (
    DEAD_AFTER,
    INTERVAL,
    Hits,
    alive,
    call,
    no_doubles,
    start_core,
    wait_for,
)
from conftest import Client
from daemon import Daemon
from pg import BACKENDS, fresh_database
from redis_helpers import SHARED_URL, PrivateRedis

from dragonopsd.appkeys import CLUSTER
from dragonopsd.appkeys import MONITORS as MONITOR_SERVICE
from dragonopsd.cluster.lease import Lease
from dragonopsd.cluster.membership import Membership
from dragonopsd.cluster.rendezvous import owner, shares
from dragonopsd.config import RedisConfig
from dragonopsd.model.monitor import MonitorSpec
from dragonopsd.redislink.client import RedisLink

MONITORS = 24
SLACK = 2.0  # s: heartbeat period, scheduling jitter, probe time on a busy 2-CPU machine


# -- rendezvous hashing (pure) ---------------------------------------------------------------


def test_losing_a_core_moves_only_its_monitors() -> None:
    keys = [f"monitor-{i}" for i in range(2000)]
    nodes = ["a:1", "b:1", "c:1"]
    before = {k: owner(k, nodes) for k in keys}
    after = {k: owner(k, ["a:1", "c:1"]) for k in keys}
    moved = {k for k in keys if before[k] != after[k]}
    assert moved == {k for k in keys if before[k] == "b:1"}
    counts = shares(keys, nodes)
    assert sum(counts.values()) == len(keys)
    assert all(500 < n < 850 for n in counts.values()), counts  # roughly a third each


def test_a_joining_core_takes_only_what_it_now_owns() -> None:
    keys = [f"monitor-{i}" for i in range(2000)]
    before = {k: owner(k, ["a:1", "b:1"]) for k in keys}
    after = {k: owner(k, ["a:1", "b:1", "new:1"]) for k in keys}
    assert {k for k in keys if before[k] != after[k]} == {k for k in keys if after[k] == "new:1"}
    assert owner("x", []) is None


# -- leases (real Redis) ---------------------------------------------------------------------


async def test_a_lease_has_one_holder_and_passes_on_when_it_lapses(redis_prefix: str) -> None:
    link = RedisLink(RedisConfig(url=SHARED_URL, prefix=redis_prefix))
    await link.ping()
    try:
        first = Lease(link, "job", "core-a", 1.0, alone=lambda: False)
        second = Lease(link, "job", "core-b", 1.0, alone=lambda: False)
        assert await first.hold()
        assert not await second.hold()
        assert await first.hold()  # renewed by its holder
        assert not await second.hold()
        # The holder dies (stops renewing): the key expires and the next core takes it.
        deadline = time.monotonic() + 5
        while not await second.hold():
            assert time.monotonic() < deadline, "the lapsed lease was never taken over"
            await asyncio.sleep(0.2)
        assert not await first.hold()  # the old holder cannot renew what is no longer its own
        await second.release()
        assert await first.hold()
        await first.release()
    finally:
        await link.close()


# -- one core in process (real SQLite and Redis) ------------------------------------------


async def test_a_lone_core_owns_everything_and_reconciles_with_the_store(
    make_client: Any, redis_prefix: str
) -> None:
    """One core with Redis: it owns every monitor, /api/cluster lists it, and a monitor
    written to the store without an event reaching this core (a lost bus event) is picked
    up by the reconcile."""
    client: Client = await make_client(
        redis={"url": SHARED_URL, "prefix": redis_prefix}, cluster={"node": "solo"}
    )
    spec = {"name": "a", "kind": "tcp", "host": "127.0.0.1", "port": 9, "interval": 60}
    resp = await client.post("/api/monitors", json=spec)
    assert resp.status == 201, await resp.text()
    resp = await client.get("/api/cluster")
    body = await resp.json()
    assert body["self"] == "solo"
    assert [(m["node"], m["status"], m["ownedMonitors"]) for m in body["items"]] == [
        ("solo", "alive", 1)
    ]
    engine = client.app[MONITOR_SERVICE].engine
    assert engine.peers is not None
    assert client.app[CLUSTER] is not None
    written = await engine.store.create(
        msgspec.convert(spec | {"name": "b", "port": 10}, MonitorSpec)
    )
    assert engine.runtime(written.monitor.id) is None  # nobody told the engine
    assert await engine.peers.reconcile() == 1
    assert engine.runtime(written.monitor.id) is not None
    assert written.seq in engine.owned
    assert await engine.peers.reconcile() == 0
    resp = await client.get("/readyz")
    assert (await resp.json())["checks"]["cluster"].startswith("ok (1 live core(s)")


async def test_without_redis_the_cluster_is_this_process(make_client: Any) -> None:
    client: Client = await make_client()
    body = await (await client.get("/api/cluster")).json()
    assert [(m["status"], m["ownedMonitors"]) for m in body["items"]] == [("alive", 0)]
    assert body["self"] == body["items"][0]["node"]
    assert "cluster" not in (await (await client.get("/readyz")).json())["checks"]


# -- real processes --------------------------------------------------------------------------


def test_cores_share_monitors_and_take_over_a_killed_one(
    tmp_path: Path, redis_prefix: str, target: tuple[str, Hits]
) -> None:
    base, hits = target
    first = start_core(tmp_path, "core-a", SHARED_URL, redis_prefix, None)
    token = first.token
    key = first.state_dir / "secrets.key"
    cores = [first]
    try:
        cores.append(start_core(tmp_path, "core-b", SHARED_URL, redis_prefix, key))
        cores.append(start_core(tmp_path, "core-c", SHARED_URL, redis_prefix, key))
        paths = [f"/m/{i}" for i in range(MONITORS)]
        for i, path in enumerate(paths):  # written on one core, scheduled by its owner
            status, body = call(
                cores[i % 3],
                token,
                "POST",
                "/api/monitors",
                {"name": f"m{i}", "kind": "http", "url": base + path, "interval": INTERVAL},
            )
            assert status == 201, body
        wait_for(
            "three cores sharing every monitor",
            lambda: (
                (o := alive(first, token)) and len(o) == 3 and sum(o.values()) == MONITORS and o
            ),
            30,
        )
        owned = alive(first, token)
        assert all(n > 0 for n in owned.values()), owned
        for d in cores:  # every core sees the same cores
            assert alive(d, token) == owned

        def scrape() -> str:
            with urllib.request.urlopen(first.url + "/metrics", timeout=10) as resp:
                return str(resp.read().decode())

        # /api/cluster reads Redis now; a core acts on (and exports) the view of its last
        # heartbeat, at most dead_after / 5 older: wait for the two to agree.
        want = (
            "dragonops_cluster_cores 3.0",
            f"dragonops_cluster_owned_monitors {float(owned['core-a'])}",
        )

        def agreed() -> str:
            m = scrape()
            ok = all(w in m for w in want) and m.count("dragonops_monitor_up{") == owned["core-a"]
            return m if ok else ""

        metrics = wait_for("the core's own view in /metrics", agreed, 15)
        assert metrics.count("dragonops_monitor_up{") == owned["core-a"]

        # A push call taken by a core that does not own the monitor reaches its owner.
        status, push = call(
            first, token, "POST", "/api/monitors", {"name": "job", "kind": "push", "interval": 60}
        )
        assert status == 201, push
        names = ["core-a", "core-b", "core-c"]
        by_name = dict(zip(names, cores, strict=True))
        holder = by_name[str(owner(push["id"], names))]
        other = next(d for n, d in by_name.items() if d is not holder)
        wait_for(
            "the push monitor on every core",
            lambda: all(
                call(d, token, "GET", f"/api/monitors/{push['id']}")[0] == 200 for d in cores
            ),
            10,
        )
        # GET above reads the store; a push needs the monitor in that core's engine, which the
        # bus event brings a moment later (404 until then).
        pushed = f"/api/push/{push['pushToken']}?status=up"
        wait_for(
            "a push accepted by a core that does not own the monitor",
            lambda: call(other, token, "GET", pushed)[0] == 200,
            10,
        )
        wait_for(
            "the owner recording the push",
            lambda: call(holder, token, "GET", f"/api/monitors/{push['id']}")[1]["status"] == "up",
            10,
        )
        wait_for(  # and the other cores show the status their peer decided
            "every core showing it up",
            lambda: all(
                call(d, token, "GET", f"/api/monitors/{push['id']}")[1]["status"] == "up"
                for d in cores
            ),
            10,
        )

        # Steady state: every monitor once per interval, never twice.
        time.sleep(INTERVAL + SLACK)
        start = time.time()
        time.sleep(4 * INTERVAL)
        window = hits.between(start, time.time())
        assert set(window) == set(paths), sorted(set(paths) - set(window))
        assert not no_doubles(window)
        for path, times in window.items():
            assert 3 <= len(times) <= 5, (path, times)

        # A monitor goes down: one incident. Its owner is then killed (kill -9): the other
        # cores check its monitors within dead_after + interval, and the new owner of the
        # down one carries on with the stored incident instead of opening a second.
        body = {"name": "down", "kind": "http", "url": base + "/down/0", "interval": INTERVAL}
        status, down = call(first, token, "POST", "/api/monitors", body)
        assert status == 201, down
        incidents = f"/api/incidents?monitorId={down['id']}"
        wait_for("the incident", lambda: call(first, token, "GET", incidents)[1]["items"], 15)
        victim_name = str(owner(down["id"], names))
        victim = by_name[victim_name]
        survivors = [d for d in cores if d is not victim]
        # Each singleton runs on exactly one core, under its lease.
        singletons = ("history-maintenance", "sample-maintenance", "sampling")
        for job in singletons:
            held = [d for d in cores if f"lease {job} taken" in d.log]
            assert len(held) == 1, (job, [d.state_dir.name for d in held])
        orphaned = [job for job in singletons if f"lease {job} taken" in victim.log]
        victim.kill()
        killed = time.time()
        time.sleep(DEAD_AFTER + INTERVAL + SLACK)
        after = hits.between(killed, time.time())
        every = [*paths, "/down/0"]
        assert set(every) <= set(after), sorted(set(every) - set(after))
        assert wait_for(
            "the killed core gone",
            lambda: set(alive(survivors[0], token)) == set(names) - {victim_name},
            10,
        )
        left = alive(survivors[1], token)
        assert sum(left.values()) == MONITORS + 2, left  # the push and the down one too
        start = time.time()
        time.sleep(3 * INTERVAL)
        window = hits.between(start, time.time())
        assert set(every) <= set(window)
        assert not no_doubles(window)
        status, found = call(survivors[0], token, "GET", incidents)
        assert [i["closedAt"] for i in found["items"]] == [None], found  # one, still open
        for job in orphaned:  # the dead holder's leases lapsed and were taken over
            assert any(f"lease {job} taken" in d.log for d in survivors), job

        # The killed core restarts under its name: it rejoins and takes its share back.
        config = tmp_path / f"{victim_name}.toml"
        back = Daemon(victim.state_dir, "--config", str(config), port=victim.port)
        cores.append(back)
        back.wait_listening(60)
        wait_for(
            "the restarted core rejoining",
            lambda: (o := alive(back, token)) and len(o) == 3 and sum(o.values()) == MONITORS + 2,
            30,
        )
        time.sleep(INTERVAL + SLACK)
        start = time.time()
        time.sleep(3 * INTERVAL)
        window = hits.between(start, time.time())
        assert set(every) <= set(window)
        assert not no_doubles(window)
        status, found = call(back, token, "GET", incidents)
        assert [i["closedAt"] for i in found["items"]] == [None], found
    finally:
        for d in cores:
            d.kill()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_core_cut_off_from_redis_stops_scheduling_and_comes_back(
    tmp_path: Path, target: tuple[str, Hits], backend: str
) -> None:
    with ExitStack() as stack:
        url = stack.enter_context(fresh_database()) if backend == "postgres" else ""
        cut_off_and_back(tmp_path, target, url)


def cut_off_and_back(tmp_path: Path, target: tuple[str, Hits], storage_url: str) -> None:
    """Two cores on one store lose Redis: neither schedules; Redis returns: both resume."""
    base, hits = target
    server = PrivateRedis(tmp_path)
    server.start()
    prefix = "cut"
    first = start_core(tmp_path, "core-a", server.url, prefix, None, storage_url=storage_url)
    cores = [first]
    token = first.token
    try:
        key = first.state_dir / "secrets.key"
        cores.append(
            start_core(tmp_path, "core-b", server.url, prefix, key, storage_url=storage_url)
        )
        for i in range(6):
            body = {"name": f"m{i}", "kind": "http", "url": f"{base}/c/{i}", "interval": INTERVAL}
            status, created = call(first, token, "POST", "/api/monitors", body)
            assert status == 201, created
        wait_for("two cores", lambda: len(alive(first, token)) == 2, 30)
        wait_for("checks", lambda: len(hits.between(0, time.time())) == 6, 10)

        server.stop()  # both cores lose Redis: after dead_after neither may schedule
        stopped = time.time()
        for d in cores:
            d.wait_log("stops scheduling", timeout=DEAD_AFTER + 10)
        quiet_from = stopped + DEAD_AFTER + SLACK + INTERVAL  # checks started before may finish
        time.sleep(max(0.0, quiet_from - time.time()) + 2 * INTERVAL)
        assert not any(hits.between(quiet_from, time.time()).values())
        status, ready = call(first, token, "GET", "/readyz")
        assert ready["checks"]["cluster"].startswith("isolated"), ready

        server.start()  # same port: the cores rejoin and probe again
        back = time.time()
        for d in cores:
            d.wait_log("rejoins", timeout=20)
        time.sleep(INTERVAL + SLACK + 2)
        resumed = hits.between(back, time.time())
        assert len([p for p, ts in resumed.items() if ts]) == 6, resumed
        status, ready = call(first, token, "GET", "/readyz")
        assert ready["checks"]["cluster"].startswith("ok"), ready
    finally:
        for d in cores:
            d.kill()
        server.stop()


def test_a_joining_core_leaves_the_running_actions_of_live_cores_alone(
    tmp_path: Path, redis_prefix: str
) -> None:
    """A core settles "interrupted" actions at start only when it is alone: an action still
    running on a live core must not be marked failed by a core that joins."""
    first = start_core(tmp_path, "core-a", SHARED_URL, redis_prefix, None, "duration_seconds = 60")
    cores = [first]
    token = first.token
    try:
        ids: dict[str, str] = {}
        parent: dict[str, str] = {}
        for path, body in (
            ("/api/clients", {"name": "Acme"}),
            ("/api/projects", {"name": "Portal"}),
            ("/api/environments", {"name": "Prod"}),
            ("/api/servers", {"name": "web-1", "type": "web", "privateIp": "10.0.0.5"}),
        ):
            status, made = call(first, token, "POST", path, body | parent)
            assert status == 201, made
            ids[path] = made["id"]
            key = {"/api/clients": "clientId", "/api/projects": "projectId"}.get(path)
            parent = {key or "environmentId": made["id"]}
        server = ids["/api/servers"]
        status, action = call(
            first, token, "POST", f"/api/servers/{server}/actions", {"action": "restart"}
        )
        assert status == 202, action
        wait_for(
            "the action running",
            lambda: (
                call(first, token, "GET", f"/api/actions/{action['id']}")[1]["state"] == "running"
            ),
            10,
        )
        cores.append(
            start_core(
                tmp_path,
                "core-b",
                SHARED_URL,
                redis_prefix,
                first.state_dir / "secrets.key",
                "duration_seconds = 60",
            )
        )
        cores[1].wait_log("running actions are left to them", timeout=30)
        status, now = call(cores[1], token, "GET", f"/api/actions/{action['id']}")
        assert now["state"] == "running", now
    finally:
        for d in cores:
            d.kill()


async def test_two_processes_under_one_name_are_told(redis_prefix: str) -> None:
    """A second process heartbeating under a core's name (a copied config) is reported: both
    would own that name's share. A restart (the first heartbeat of a new process) is not."""
    cfg = RedisConfig(url=SHARED_URL, prefix=redis_prefix)
    links = [RedisLink(cfg), RedisLink(cfg)]
    for link in links:
        await link.ping()
    try:
        one, two = (
            Membership(link, node="same", address="", version="1", dead_after=3.0) for link in links
        )
        await one.beat()
        await two.beat()  # its first: could be a restart of "same"
        assert one.name_clashes == two.name_clashes == 0
        await one.beat()  # "two" wrote under its name since its last heartbeat
        await two.beat()
        assert one.name_clashes == 1 and two.name_clashes == 1
        assert one.live == ("same",)
    finally:
        for link in links:
            await link.close()
