"""Server sampling: the simulated source, the local reader, the sampler on the bus, environment
aggregates, the metrics history (raw and rollups), agent pushes, silence and access."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from conftest import Client, post

from dragonopsd.appkeys import AUTHENTICATOR, BUS, SAMPLER
from dragonopsd.config import Config
from dragonopsd.model.inventory import ClientCreate, EnvironmentCreate, ProjectCreate, ServerCreate
from dragonopsd.model.sample import Sample
from dragonopsd.sampling import simulated
from dragonopsd.sampling.local import LocalReader
from dragonopsd.store.db import Database
from dragonopsd.store.inventory import InventoryStore
from dragonopsd.store.samples import SampleQuery, SampleWriter

# Every test here that starts the app runs on SQLite and on PostgreSQL (conftest.py).
pytestmark = pytest.mark.backends

MakeClient = Callable[..., Awaitable[Client]]
SID = "6f1c2a8e-1111-4c3b-9d2e-0a1b2c3d4e5f"
FAST = {"interval": 0.2, "environment_update_interval": 0.3}


async def inventory(client: Client, sampling: str = "simulated") -> dict[str, Any]:
    """client -> project -> environment -> one server with the given sampling source."""
    c = await post(client, "/api/clients", {"name": "Acme"})
    p = await post(client, "/api/projects", {"clientId": c["id"], "name": "Portal"})
    e = await post(client, "/api/environments", {"projectId": p["id"], "name": "Production"})
    body = {"environmentId": e["id"], "name": "web-1", "sampling": sampling}
    return {"environment": e, "server": await post(client, "/api/servers", body)}


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 3.0) -> Any:
    """Poll check until it returns something truthy; fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        got = await check()
        if got:
            return got
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def agent_token(client: Client, server_id: str) -> dict[str, str]:
    body = {"name": "agent", "role": "agent", "serverId": server_id}
    created = await post(client, "/api/tokens", body)
    assert created["meta"]["serverId"] == server_id
    return {"Authorization": f"Bearer {created['token']}"}


def reading(**over: Any) -> dict[str, Any]:
    base = {"cpu": 12.5, "memory": 40.0, "load": 0.5, "disk": 55.0, "netIn": 1000, "netOut": 500}
    return base | over


# -- the simulated source -------------------------------------------------------------------


def test_simulated_is_deterministic_across_processes() -> None:
    times = [1_764_000_000.0 + k * 37.5 for k in range(40)]
    code = (
        "import sys, msgspec; from dragonopsd.sampling.simulated import sample; "
        f"sys.stdout.buffer.write(msgspec.json.encode([sample({SID!r}, t) for t in {times!r}]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30, check=True)
    mine = [simulated.sample(SID, t) for t in times]
    assert msgspec.json.decode(out.stdout, type=list[Sample]) == mine
    assert simulated.sample("another-server", times[0]) != mine[0]


def test_simulated_stays_in_range_varies_and_spikes() -> None:
    day = [simulated.sample(SID, 1_764_000_000.0 + k * 60) for k in range(1440)]
    for s in day:
        assert 0 <= s.cpu <= 100 and 0 <= s.memory <= 100 and 0 <= s.disk <= 100
        assert s.load >= 0 and s.net_in >= 0 and s.net_out >= 0
    assert len({s.cpu for s in day}) > 1000 and len({s.net_in for s in day}) > 1000
    # smooth: a minute apart, outside spikes, CPU moves by a few points, not across the range
    steps = sorted(abs(b.cpu - a.cpu) for a, b in itertools.pairwise(day))
    assert steps[len(steps) // 2] < 5
    assert max(s.cpu for s in day) >= 85  # a day holds some spikes
    assert max(s.cpu for s in day) - min(s.cpu for s in day) > 20  # and a daily rhythm


async def test_local_reader_gives_sane_values() -> None:
    reader = LocalReader()
    first = await reader.sample("host")
    await asyncio.sleep(0.05)
    second = await reader.sample("host")
    for s in (first, second):
        assert s.server_id == "host" and abs(s.at - time.time()) < 5
        assert 0 <= s.cpu <= 100 and 0 < s.memory < 100 and 0 < s.disk <= 100
        assert s.load >= 0 and s.net_in >= 0 and s.net_out >= 0
    assert first.net_in == 0 and first.net_out == 0  # no rate before a second reading


# -- the sampler ------------------------------------------------------------------------------


async def test_sampler_publishes_samples_and_updates_environment(make_client: MakeClient) -> None:
    client = await make_client(sampling=FAST)
    sub = client.app[BUS].subscribe(["servers.*"])
    made = await inventory(client)
    server, env = made["server"], made["environment"]
    assert server["sampling"] == "simulated"
    event = await asyncio.wait_for(sub.queue.get(), 3)
    while event.data.server_id != server["id"]:
        event = await asyncio.wait_for(sub.queue.get(), 3)
    assert event.topic == f"servers.{server['id']}.metrics" and event.kind == "server.metrics"
    wire = msgspec.json.decode(msgspec.json.encode(event.data))
    assert set(wire) == {"serverId", "cpu", "memory", "load", "disk", "netIn", "netOut", "at"}
    assert client.app[SAMPLER].latest(server["id"]) is not None
    assert [s.server_id for s in client.app[SAMPLER].all_latest()] == [server["id"]]

    async def resources() -> dict[str, Any] | None:
        got = await (await client.get(f"/api/environments/{env['id']}")).json()
        return got["resources"] if got["resources"].get("servers") == 1 else None

    figures = await until(resources)
    assert 0 <= figures["cpu"] <= 100 and figures["netIn"] >= 0 and figures["updatedAt"]
    # a stopped server stops sampling, and its environment's figures are withdrawn
    resp = await client.patch(f"/api/servers/{server['id']}", json={"status": "stopped"})
    assert resp.status == 200

    async def emptied() -> bool:
        got = await (await client.get(f"/api/environments/{env['id']}")).json()
        return got["resources"].get("servers") == 0 and "cpu" not in got["resources"]

    await until(emptied)


async def test_local_server_is_sampled_from_this_host(make_client: MakeClient) -> None:
    client = await make_client(sampling=FAST)
    server = (await inventory(client, "local"))["server"]
    sample = await until(lambda: _latest(client, server["id"]))
    assert 0 <= sample.cpu <= 100 and 0 < sample.memory < 100


async def _latest(client: Client, server_id: str) -> Sample | None:
    return client.app[SAMPLER].latest(server_id)


async def test_metrics_history_after_a_flush(make_client: MakeClient) -> None:
    client = await make_client(sampling=FAST)
    server = (await inventory(client))["server"]
    await until(lambda: _latest(client, server["id"]))
    await client.app[SAMPLER].writer.flush()
    since = time.time() - 60
    resp = await client.get(f"/api/servers/{server['id']}/metrics?step=1&since={since}")
    body = await resp.json()
    assert resp.status == 200 and body["serverId"] == server["id"] and body["step"] == 1
    counted = [p for p in body["points"] if p["count"]]
    assert counted and all(0 <= p["cpu"] <= p["cpuMax"] <= 100 for p in counted)
    assert body["latest"]["serverId"] == server["id"]
    for query, field in (("step=0", "step"), ("since=x", "since"), ("bogus=1", "bogus")):
        bad = await client.get(f"/api/servers/{server['id']}/metrics?{query}")
        assert bad.status == 422 and field in (await bad.json())["detail"], query
    missing = await client.get("/api/servers/00000000-0000-4000-8000-000000000000/metrics")
    assert missing.status == 404


async def test_rollups_keep_means_and_maxes(tmp_path: Path) -> None:
    """Raw rows roll into minute and hourly buckets; late samples are re-rolled."""
    cfg = Config()
    db = Database(tmp_path / "samples.db")
    await db.open()
    try:
        store = InventoryStore(db)  # history is kept for servers that exist
        c = await store.create("clients", ClientCreate(name="c"))
        p = await store.create("projects", ProjectCreate(client_id=uuid.UUID(c.id), name="p"))
        e = await store.create(
            "environments", EnvironmentCreate(project_id=uuid.UUID(p.id), name="e")
        )
        body = ServerCreate(environment_id=uuid.UUID(e.id), name="s")
        await store.create("servers", body, ident=SID)
        writer = SampleWriter(db, cfg.sampling, cfg.history)
        query = SampleQuery(db)
        hour = (int(time.time()) // 3600 - 3) * 3600  # three hours ago, long closed

        def at(t: float, cpu: float) -> Sample:
            return Sample(
                server_id=SID, cpu=cpu, memory=50, load=1, disk=20, net_in=100, net_out=10, at=t
            )

        for k in range(120):  # every 30 s for an hour: cpu 30 and 10 in turn, 90 at the end
            writer.submit(at(hour + k * 30, 90.0 if k == 119 else 10.0 if k % 2 else 30.0))
        await writer.flush()
        raw = await query.series(SID, hour, hour + 3600, 3600)
        rolled, _ = await writer.maintain_once(now=hour + 3 * 3600 + 300)
        assert rolled == 1  # the empty hours after it are skipped, not rolled
        hourly = await query.series(SID, hour, hour + 3600, 3600)
        assert raw == hourly and hourly[0].count == 120 and hourly[0].cpu_max == 90
        assert hourly[0].cpu == pytest.approx((60 * 30 + 59 * 10 + 90) / 120, abs=0.01)
        minutes = await query.series(SID, hour, hour + 3600, 60)
        assert [p.count for p in minutes] == [2] * 60 and minutes[-1].cpu_max == 90
        # a late sample for the rolled hour lands in the rollups at the next pass
        writer.submit(at(hour + 1, 100.0))
        await writer.flush()
        await writer.maintain_once(now=hour + 3 * 3600 + 360)
        assert (await query.series(SID, hour, hour + 3600, 3600))[0].cpu_max == 100
        # past retention the raw rows go, and the rollups still answer
        later = hour + 2 * 86_400
        _, deleted = await writer.maintain_once(now=later)
        assert deleted >= 121
        assert (await query.series(SID, hour, hour + 3600, 60))[0].count == 3
        # a deleted server's history goes with it
        await store.delete("servers", SID)
        await writer.maintain_once(now=later)
        assert (await query.series(SID, hour, hour + 3600, 3600))[0].count == 0
    finally:
        await db.close()


# -- agent pushes -----------------------------------------------------------------------------


async def test_agent_push_silence_and_recovery(make_client: MakeClient) -> None:
    client = await make_client(sampling=FAST)
    server = (await inventory(client, "agent"))["server"]
    sid = server["id"]
    headers = await agent_token(client, sid)
    url = f"/api/servers/{sid}/samples"

    async def status() -> str:
        return str((await (await client.get(f"/api/servers/{sid}")).json())["status"])

    await until(lambda: _is(status, "unreachable"))  # never heard from: 3 x 0.2 s
    resp = await client.post(url, json=reading(), headers=headers)
    assert resp.status == 202 and (await resp.json()) == {"accepted": 1}
    assert await status() == "running"
    batch = [reading(cpu=50, at=time.time() - 2), reading(cpu=60, at=time.time() - 1)]
    resp = await client.post(f"{url}?interval=1", json=batch, headers=headers)
    assert resp.status == 202 and (await resp.json()) == {"accepted": 2}
    latest = client.app[SAMPLER].latest(sid)
    assert latest is not None and latest.cpu == 12.5  # the backlog is history, not the latest
    await asyncio.sleep(0.8)  # past 3 x 0.2 s, but the agent said it pushes every second
    assert await status() == "running"


async def _is(status: Callable[[], Awaitable[str]], want: str) -> bool:
    return await status() == want


async def test_agent_tokens_push_for_their_own_server_only(make_client: MakeClient) -> None:
    client = await make_client(sampling=FAST)
    mine = (await inventory(client, "agent"))["server"]
    other = (await inventory(client, "agent"))["server"]
    simulated_one = (await inventory(client))["server"]
    headers = await agent_token(client, mine["id"])
    assert (await client.get("/api/clients", headers=headers)).status == 403
    assert (await client.get(f"/api/servers/{mine['id']}/metrics", headers=headers)).status == 403
    theirs = await client.post(
        f"/api/servers/{other['id']}/samples", json=reading(), headers=headers
    )
    assert theirs.status == 403
    viewer = await post(client, "/api/tokens", {"name": "v", "role": "viewer"})
    as_viewer = {"Authorization": f"Bearer {viewer['token']}"}
    resp = await client.post(
        f"/api/servers/{mine['id']}/samples", json=reading(), headers=as_viewer
    )
    assert resp.status == 403
    # admins may push too, but only to agent servers: the others sample themselves
    assert (await client.post(f"/api/servers/{other['id']}/samples", json=reading())).status == 202
    resp = await client.post(f"/api/servers/{simulated_one['id']}/samples", json=reading())
    assert resp.status == 409


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (reading(cpu=101), "$.cpu"),
        (reading(memory=-1), "$.memory"),
        ({"cpu": 1}, "$.memory"),
        (reading(extra=1), "$.extra"),
        ([reading(), reading(netIn="fast")], "$[1].netIn"),
        (reading(at=time.time() + 3600), "$.at"),
        ([reading(), reading(at=1.0)], "$[1].at"),
        ([reading()] * 101, "$"),
        ([], "$"),
    ],
)
async def test_bad_sample_bodies_are_422_naming_the_field(
    make_client: MakeClient, body: Any, field: str
) -> None:
    client = await make_client(sampling=FAST)
    server = (await inventory(client, "agent"))["server"]
    resp = await client.post(f"/api/servers/{server['id']}/samples", json=body)
    problem = await resp.json(content_type="application/problem+json")
    assert resp.status == 422 and problem["errors"][0]["field"] == field, problem
    assert client.app[SAMPLER].latest(server["id"]) is None  # nothing was taken


async def test_agent_token_creation_is_validated(make_client: MakeClient) -> None:
    client = await make_client()
    server = (await inventory(client, "agent"))["server"]
    for body, field in (
        ({"name": "a", "role": "agent"}, "$.serverId"),
        ({"name": "a", "role": "agent", "serverId": SID}, "$.serverId"),
        ({"name": "v", "role": "viewer", "serverId": server["id"]}, "$.serverId"),
    ):
        resp = await client.post("/api/tokens", json=body)
        problem = await resp.json(content_type="application/problem+json")
        assert resp.status == 422 and problem["errors"][0]["field"] == field, problem
    tokens = await client.app[AUTHENTICATOR].tokens.store.all()
    assert all(t.role != "agent" for t in tokens)
