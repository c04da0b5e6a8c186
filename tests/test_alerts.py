"""Resource alerts: rules over the samples stream open and close incidents on servers, with
maintenance windows, the websocket, /metrics and notification routing; the rule API."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import Client, post, pushing_server, token_for
from notify_helpers import Receiver, receiver_fixture, until  # noqa: F401 - the `receiver` fixture
from processes import sqlite_lock_held
from ws_helpers import frame, subscribe

from dragonopsd.appkeys import ALERTS, NOTIFIER
from dragonopsd.reload import RELOADER

# The rules and incidents live in the store: run on SQLite and on PostgreSQL.
pytestmark = pytest.mark.backends

MakeClient = Callable[..., Awaitable[Client]]
Tree = Callable[[], Awaitable[dict[str, Any]]]
QUIET = {"cpu": 5.0, "memory": 30.0, "load": 0.1, "disk": 40.0, "netIn": 1.0, "netOut": 1.0}


async def push(client: Client, sid: str, **values: float) -> None:
    resp = await client.post(f"/api/servers/{sid}/samples", json={**QUIET, **values})
    assert resp.status == 202, await resp.text()


async def agent_server(client: Client, tree: Tree) -> dict[str, Any]:
    t = await tree()
    sid = t["server"]["id"]
    resp = await client.patch(f"/api/servers/{sid}", json={"sampling": "agent"})
    assert resp.status == 200, await resp.text()
    return t


async def alerts(client: Client, sid: str) -> dict[str, Any]:
    resp = await client.get(f"/api/servers/{sid}/alerts")
    assert resp.status == 200, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


async def wait_state(client: Client, sid: str, state: str, timeout: float = 6.0) -> dict[str, Any]:
    """The server's alerts once its first rule is in state (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        data = await alerts(client, sid)
        if data["rules"] and data["rules"][0]["state"] == state:
            return data
        assert time.monotonic() < deadline, data
        await asyncio.sleep(0.1)


async def gauge(client: Client, sid: str) -> list[str]:
    text = await (await client.get("/metrics")).text()
    return [
        line
        for line in text.splitlines()
        if line.startswith("dragonops_server_alert_firing{") and sid in line
    ]


async def test_threshold_fires_after_its_duration_and_closes_when_it_falls(
    client: Client, tree: Tree, receiver: Receiver
) -> None:
    t = await agent_server(client, tree)
    sid, env = t["server"]["id"], t["environment"]["id"]
    await post(
        client,
        "/api/notifications",
        {
            "name": "ops",
            "kind": "webhook",
            "config": {"url": receiver.url("/hook")},
            "scope": {"environmentIds": [env]},
        },
    )
    rule = await post(
        client,
        "/api/alert-rules",
        {"metric": "cpu", "threshold": 90, "for": 1, "environmentId": env},
    )
    assert rule["expression"] == "cpu > 90 for 1s" and rule["name"] == rule["expression"]
    ws = await client.ws_connect("/api/ws")
    await subscribe(ws, f"servers.{sid}.metrics")

    await push(client, sid, cpu=95)
    data = await alerts(client, sid)
    assert data["rules"][0]["state"] == "pending" and data["incidents"] == []
    assert await gauge(client, sid) == [
        f'dragonops_server_alert_firing{{rule="cpu > 90 for 1s",rule_id="{rule["id"]}",'
        f'server="web-1",server_id="{sid}"}} 0.0'
    ]
    await asyncio.sleep(1.1)
    await push(client, sid, cpu=97.5)
    data = await alerts(client, sid)
    assert data["rules"][0]["state"] == "firing"
    [incident] = data["incidents"]
    assert incident["closedAt"] is None and incident["ruleId"] == rule["id"]
    assert incident["cause"].startswith("cpu 97.5 above 90 for ")
    assert (await gauge(client, sid))[0].endswith(" 1.0")
    event = await next_alert(ws)
    assert event["event"] == "server.alert" and event["topic"] == f"servers.{sid}.metrics"
    assert event["data"]["state"] == "firing" and event["data"]["incidentId"] == incident["id"]

    await push(client, sid, cpu=40)
    data = await alerts(client, sid)
    assert data["rules"][0]["state"] == "ok"
    [closed] = data["incidents"]
    assert closed["id"] == incident["id"] and closed["closedAt"] and closed["resolution"] is None
    assert (await gauge(client, sid))[0].endswith(" 0.0")
    event = await next_alert(ws)
    assert event["data"]["state"] == "resolved" and event["data"]["durationSeconds"] >= 0
    await ws.close()

    deadline = time.monotonic() + 5
    while len(receiver.at("/hook")) < 2:
        assert time.monotonic() < deadline, receiver.seen
        await asyncio.sleep(0.05)
    down, up = (d.json() for d in receiver.at("/hook"))
    assert down["event"] == "down" and down["kind"] == "resource"
    assert down["monitorName"] == "web-1: cpu > 90 for 1s" and down["scope"]["serverId"] == sid
    assert up["event"] == "up" and up["incidentId"] == incident["id"]


async def next_alert(ws: Any) -> dict[str, Any]:
    """The next server.alert frame (sample frames of the same topic are skipped)."""
    while True:
        f = await frame(ws)
        if f.get("event") == "server.alert":
            return f


async def test_an_agent_that_stops_sending_opens_no_samples(client: Client, tree: Tree) -> None:
    t = await agent_server(client, tree)
    sid = t["server"]["id"]
    rule = await post(
        client, "/api/alert-rules", {"metric": "no-samples", "for": "1s", "serverId": sid}
    )
    assert rule["expression"] == "no-samples for 1s" and rule["threshold"] is None
    await push(client, sid)
    data = await wait_state(client, sid, "firing")
    [incident] = data["incidents"]
    assert incident["metric"] == "no-samples" and incident["cause"].startswith("no samples for")
    await push(client, sid)
    data = await alerts(client, sid)
    assert data["rules"][0]["state"] == "ok"
    assert (
        data["incidents"][0]["closedAt"] and data["incidents"][0]["resolution"] == "samples again"
    )


async def test_a_maintenance_window_holds_both_back(client: Client, tree: Tree) -> None:
    t = await agent_server(client, tree)
    sid, project = t["server"]["id"], t["project"]["id"]
    now = datetime.now(UTC)
    window = await post(
        client,
        "/api/maintenance",
        {
            "name": "patching",
            "kind": "one-off",
            "startsAt": (now - timedelta(minutes=1)).isoformat(),
            "endsAt": (now + timedelta(hours=1)).isoformat(),
            "scope": {"projectIds": [project]},
        },
    )
    await post(client, "/api/alert-rules", {"metric": "memory", "threshold": 80, "serverId": sid})
    await post(client, "/api/alert-rules", {"metric": "no-samples", "for": 1, "serverId": sid})
    await push(client, sid, memory=99)
    data = await alerts(client, sid)
    states = {r["rule"]["metric"]: r["state"] for r in data["rules"]}
    assert states["memory"] == "maintenance"
    await asyncio.sleep(2.2)  # silent for longer than no-samples' 1s, ticked at least once
    data = await alerts(client, sid)
    states = {r["rule"]["metric"]: r["state"] for r in data["rules"]}
    assert states == {"memory": "maintenance", "no-samples": "maintenance"}
    assert data["incidents"] == [] and "1.0" not in "".join(await gauge(client, sid))

    # the window goes: the breach that lasted through it fires with the next sample
    assert (await client.delete(f"/api/maintenance/{window['id']}")).status == 204
    await push(client, sid, memory=99)
    data = await alerts(client, sid)
    states = {r["rule"]["metric"]: r["state"] for r in data["rules"]}
    assert states["memory"] == "firing"


async def test_a_simulated_server_fires_on_its_own_samples(make_client: MakeClient) -> None:
    client = await make_client(sampling={"interval": 0.2})
    t = await _tree(client)
    sid = t["server"]["id"]
    latest = None
    for _ in range(50):
        latest = (await (await client.get(f"/api/servers/{sid}/metrics")).json())["latest"]
        if latest:
            break
        await asyncio.sleep(0.1)
    assert latest is not None
    # disk drifts over hours: 10 points below the reading it stays above for the test
    threshold = max(0.0, round(latest["disk"] - 10, 1))
    rule = await post(
        client,
        "/api/alert-rules",
        {"metric": "disk", "threshold": threshold, "for": 1, "serverId": sid},
    )
    data = await wait_state(client, sid, "firing")
    assert data["incidents"][0]["closedAt"] is None
    resp = await client.patch(f"/api/alert-rules/{rule['id']}", json={"threshold": 99})
    assert resp.status == 200 and (await resp.json())["expression"] == "disk > 99 for 1s"
    data = await wait_state(client, sid, "ok")
    assert data["incidents"][0]["closedAt"] is not None


async def _tree(client: Client) -> dict[str, Any]:
    c = await post(client, "/api/clients", {"name": "Acme"})
    p = await post(client, "/api/projects", {"clientId": c["id"], "name": "Portal"})
    e = await post(client, "/api/environments", {"projectId": p["id"], "name": "Production"})
    s = await post(client, "/api/servers", {"environmentId": e["id"], "name": "sim-1"})
    return {"client": c, "project": p, "environment": e, "server": s}


async def test_the_most_specific_level_wins_per_metric(client: Client, tree: Tree) -> None:
    t = await agent_server(client, tree)
    sid, env, cid = t["server"]["id"], t["environment"]["id"], t["client"]["id"]
    await post(client, "/api/alert-rules", {"metric": "cpu", "threshold": 50, "clientId": cid})
    await post(client, "/api/alert-rules", {"metric": "disk", "threshold": 90, "clientId": cid})
    env_rule = await post(
        client, "/api/alert-rules", {"metric": "cpu", "threshold": 80, "environmentId": env}
    )
    data = await alerts(client, sid)
    assert sorted(r["rule"]["expression"] for r in data["rules"]) == [
        "cpu > 80 for 0s",
        "disk > 90 for 0s",
    ]
    # a disabled rule on the server mutes the environment's cpu rule for this server only
    await post(
        client,
        "/api/alert-rules",
        {"metric": "cpu", "threshold": 1, "serverId": sid, "enabled": False, "name": "quiet"},
    )
    data = await alerts(client, sid)
    assert [r["rule"]["expression"] for r in data["rules"]] == ["disk > 90 for 0s"]
    await push(client, sid, cpu=99)
    assert (await alerts(client, sid))["incidents"] == []
    # deleting the environment's rule leaves it out of the list
    assert (await client.delete(f"/api/alert-rules/{env_rule['id']}")).status == 204
    assert (await client.get(f"/api/alert-rules/{env_rule['id']}")).status == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"metric": "swap", "threshold": 1}, "$.metric"),
        ({"metric": "cpu", "threshold": 150}, "$.threshold"),
        ({"metric": "cpu", "threshold": -1}, "$.threshold"),
        ({"metric": "load", "threshold": 1e9}, "$.threshold"),
        ({"metric": "cpu"}, "$.threshold"),
        ({"metric": "no-samples", "threshold": 5, "for": 60}, "$.threshold"),
        ({"metric": "no-samples"}, "$.for"),
        ({"metric": "cpu", "threshold": 90, "for": "5 minutes"}, "$.for"),
        ({"metric": "cpu", "threshold": 90, "for": -5}, "$.for"),
        ({"metric": "cpu", "threshold": 90, "for": "30d"}, "$.for"),
        ({"metric": "cpu", "threshold": 90, "serverId": "not-a-uuid"}, "$.serverId"),
        (
            {"metric": "cpu", "threshold": 90, "serverId": "00000000-0000-4000-8000-000000000000"},
            "$.serverId",
        ),
        (
            {"metric": "cpu", "threshold": 90, "clientId": "00000000-0000-4000-8000-000000000000"},
            "$.clientId",
        ),
        ({"metric": "cpu", "threshold": 90, "colour": "red"}, "$.colour"),
    ],
)
async def test_bad_rules_are_422_naming_the_field(
    client: Client, body: dict[str, Any], field: str
) -> None:
    resp = await client.post("/api/alert-rules", json=body)
    problem = await resp.json(content_type=None)
    assert resp.status == 422, problem
    assert resp.content_type == "application/problem+json"
    assert [e["field"] for e in problem["errors"]] == [field], problem
    assert (await (await client.get("/api/alert-rules")).json())["items"] == []


async def test_rule_crud_roles_and_audit(client: Client, tree: Tree) -> None:
    t = await tree()
    env, project = t["environment"]["id"], t["project"]["id"]
    rule = await post(
        client,
        "/api/alert-rules",
        {"metric": "load", "threshold": 4, "for": "5m", "environmentId": env, "name": "busy"},
    )
    assert rule["for"] == 300 and rule["expression"] == "load > 4 for 5m"
    assert rule["managedBy"] == "api" and rule["environmentId"] == env
    resp = await client.patch(
        f"/api/alert-rules/{rule['id']}", json={"environmentId": None, "projectId": project}
    )
    changed = await resp.json()
    assert (
        resp.status == 200 and changed["projectId"] == project and changed["environmentId"] is None
    )
    resp = await client.patch(f"/api/alert-rules/{rule['id']}", json={"projectId": env})
    assert resp.status == 422 and (await resp.json())["errors"][0]["field"] == "$.projectId"
    resp = await client.patch(
        f"/api/alert-rules/{rule['id']}", json={"clientId": t["client"]["id"]}
    )
    assert resp.status == 422 and (await resp.json())["errors"][0]["field"] == "$.clientId"

    viewer = {"Authorization": f"Bearer {await token_for(client.app, 'viewer')}"}
    operator = {"Authorization": f"Bearer {await token_for(client.app, 'operator')}"}
    listed = await (await client.get("/api/alert-rules", headers=viewer)).json()
    assert [r["id"] for r in listed["items"]] == [rule["id"]]
    body = {"metric": "cpu", "threshold": 90}
    assert (await client.post("/api/alert-rules", json=body, headers=viewer)).status == 403
    made = await client.post("/api/alert-rules", json=body, headers=operator)
    assert made.status == 201
    other = (await made.json())["id"]
    assert made.headers["Location"] == f"/api/alert-rules/{other}"
    assert (await client.delete(f"/api/alert-rules/{other}", headers=operator)).status == 204

    entries = (await (await client.get("/api/audit?entity=alert-rules")).json())["items"]
    assert [(e["method"], e["status"]) for e in entries][:2] == [("DELETE", 204), ("POST", 201)]


async def test_config_rules_apply_and_are_read_only(make_client: MakeClient) -> None:
    client = await make_client(
        alert_rules=[{"name": "hot", "metric": "cpu", "threshold": 85, "for": "2m"}]
    )
    [rule] = (await (await client.get("/api/alert-rules")).json())["items"]
    assert rule["managedBy"] == "config" and rule["expression"] == "cpu > 85 for 2m"
    resp = await client.patch(f"/api/alert-rules/{rule['id']}", json={"threshold": 95})
    assert resp.status == 409
    assert (await client.delete(f"/api/alert-rules/{rule['id']}")).status == 409
    t = await _tree(client)
    data = await alerts(client, t["server"]["id"])
    assert [r["rule"]["name"] for r in data["rules"]] == ["hot"]


async def test_a_reload_takes_new_alert_rules_all_or_nothing(
    make_client: MakeClient, make_config: Callable[..., Any]
) -> None:
    client = await make_client(alert_rules=[{"name": "hot", "metric": "cpu", "threshold": 85}])
    reloader = client.app[RELOADER]
    bad = make_config(
        alert_rules=[
            {"name": "warm", "metric": "cpu", "threshold": 70},
            {"name": "typo", "metric": "cpu", "treshold": 70},
        ]
    )
    report = await reloader.apply(bad)
    assert any(p.startswith("alert_rules[1]") and "treshold" in p for p in report.problems)
    names = [r["name"] for r in (await (await client.get("/api/alert-rules")).json())["items"]]
    assert names == ["hot"]
    good = make_config(alert_rules=[{"name": "warm", "metric": "memory", "threshold": 70}])
    assert (await reloader.apply(good)).problems == []
    [rule] = (await (await client.get("/api/alert-rules")).json())["items"]
    assert rule["name"] == "warm" and rule["expression"] == "memory > 70 for 0s"


def test_check_config_names_a_bad_alert_rule(tmp_path: Path) -> None:
    path = tmp_path / "d.toml"
    path.write_text('[[alert_rules]]\nmetric = "cpu"\nthreshold = 101\n')
    out = subprocess.run(
        [sys.executable, "-m", "dragonopsd", "check-config", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "alert_rules[0].threshold: cpu is a percentage" in out.stderr


async def test_an_open_incident_survives_a_restart(
    make_client: MakeClient, tree: Tree, client: Client
) -> None:
    t = await agent_server(client, tree)
    sid = t["server"]["id"]
    await post(client, "/api/alert-rules", {"metric": "disk", "threshold": 90, "serverId": sid})
    await push(client, sid, disk=95)
    [incident] = (await alerts(client, sid))["incidents"]
    await client.close()

    again = await make_client()
    data = await alerts(again, sid)
    assert data["rules"][0]["state"] == "firing"
    assert data["rules"][0]["incident"]["id"] == incident["id"]
    await push(again, sid, disk=50)
    [closed] = (await alerts(again, sid))["incidents"]
    assert closed["id"] == incident["id"] and closed["closedAt"] is not None


async def test_a_down_host_check_keeps_the_incident_but_not_the_notification(
    client: Client, tree: Tree, receiver: Receiver
) -> None:
    t = await agent_server(client, tree)
    sid = t["server"]["id"]
    await post(
        client,
        "/api/notifications",
        {"name": "ops", "kind": "webhook", "config": {"url": receiver.url("/hook")}},
    )
    # metadata addresses are refused before any packet: the host check fails at once
    ping = await post(
        client,
        "/api/monitors",
        {
            "name": "ping web-1",
            "kind": "icmp",
            "host": "169.254.169.254",
            "serverId": sid,
            "interval": 3600,
        },
    )
    report = await (await client.post(f"/api/monitors/{ping['id']}/check")).json()
    assert report["status"] == "down", report
    await post(client, "/api/alert-rules", {"metric": "cpu", "threshold": 50, "serverId": sid})
    await push(client, sid, cpu=99)
    [incident] = (await alerts(client, sid))["incidents"]
    assert incident["rootCause"] == f"host check ping web-1 ({ping['id']}) is down"
    await push(client, sid, cpu=10)
    await asyncio.sleep(0.5)
    # the host check's own DOWN may go out; neither the firing nor its end does
    assert [d.json()["kind"] for d in receiver.at("/hook") if d.json()["kind"] == "resource"] == []


@pytest.mark.sqlite_file  # the refusal here is SQLite's lock, held by another process
async def test_a_closing_the_database_refused_does_not_silence_the_next_firing(
    make_client: MakeClient, tmp_path: Path, receiver: Receiver
) -> None:
    """A closing whose write fails (the database locked by another process) is told as decided,
    and its row stays open in the database. The next breach of that rule on that server is a
    new incident and says "down" again: it must not meet the stale row (one open incident per
    rule and server) and carry on with it silently."""
    client = await make_client(storage={"busy_timeout_ms": 300})
    sid = await pushing_server(client)
    hook = {"name": "ops", "kind": "webhook", "config": {"url": receiver.url("/hook")}}
    await post(client, "/api/notifications", hook)
    await post(client, "/api/alert-rules", {"metric": "cpu", "threshold": 90, "serverId": sid})

    async def told(count: int) -> list[str]:
        """The events delivered once count of them came (or a few seconds went by)."""
        await client.app[ALERTS].settled()
        with contextlib.suppress(AssertionError):
            await until(lambda: len(receiver.at("/hook")) >= count)
        return [d.json()["event"] for d in receiver.at("/hook")]

    await push(client, sid, cpu=97)
    assert await told(1) == ["down"]
    with sqlite_lock_held(tmp_path / "dragonops.db"):
        await push(client, sid, cpu=10)
        await client.app[ALERTS].settled()  # the closing's write failed meanwhile
    assert await told(2) == ["down", "up"]
    await push(client, sid, cpu=98)  # a new breach
    await push(client, sid, cpu=10)
    assert await told(4) == ["down", "up", "down", "up"]
    incidents = (await alerts(client, sid))["incidents"]
    assert len(incidents) == 2 and all(i["closedAt"] for i in incidents), incidents


async def test_an_incident_held_back_by_a_root_cause_stays_quiet_after_a_restart(
    make_client: MakeClient, tree: Tree, client: Client, receiver: Receiver
) -> None:
    """An incident opened while the server's host check was down notified nobody; the daemon
    restarted before it closed must not send its "up" either (nobody heard a "down")."""
    t = await agent_server(client, tree)
    sid = t["server"]["id"]
    hook = {"name": "ops", "kind": "webhook", "config": {"url": receiver.url("/hook")}}
    await post(client, "/api/notifications", hook)
    ping = await post(
        client,
        "/api/monitors",
        {"name": "ping web-1", "kind": "icmp", "host": "169.254.169.254", "serverId": sid},
    )
    assert (await (await client.post(f"/api/monitors/{ping['id']}/check")).json())["status"] == (
        "down"
    )
    await post(client, "/api/alert-rules", {"metric": "cpu", "threshold": 50, "serverId": sid})
    await push(client, sid, cpu=99)
    [incident] = (await alerts(client, sid))["incidents"]
    assert incident["rootCause"] is not None
    await client.close()

    again = await make_client()
    await push(again, sid, cpu=10)
    [closed] = (await alerts(again, sid))["incidents"]
    assert closed["id"] == incident["id"] and closed["closedAt"] is not None
    await again.app[ALERTS].settled()
    notifier = again.app[NOTIFIER]
    await until(lambda: not any(notifier.backlog().values()))
    assert [d.json()["event"] for d in receiver.at("/hook") if d.json()["kind"] == "resource"] == []
