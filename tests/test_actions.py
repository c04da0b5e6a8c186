"""Server actions through the real app: state machine, conflicts, idempotency, executors,
events, and what a restart of the daemon does to queued and running actions."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from signal import SIGKILL
from typing import Any

import msgspec
import pytest
from aiohttp import web
from conftest import Client, post, token_for
from daemon import Daemon
from ws_helpers import frame, subscribe

from dragonopsd.appkeys import BUS, DATABASE
from dragonopsd.config import ConfigError, from_mapping

# Every test here that starts the app runs on SQLite and on PostgreSQL (conftest.py).
pytestmark = pytest.mark.backends

MakeClient = Callable[..., Awaitable[Client]]
Tree = Callable[[], Awaitable[dict[str, Any]]]
ZERO = "00000000-0000-4000-8000-000000000000"
FAST = {"duration_seconds": 0.2}
TERMINAL = ("succeeded", "failed")


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 5.0) -> Any:
    """Poll check until it returns something truthy, within timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def settled(client: Client, action_id: str) -> dict[str, Any]:
    """GET the action until it is succeeded or failed."""

    async def check() -> dict[str, Any] | None:
        data: dict[str, Any] = await (await client.get(f"/api/actions/{action_id}")).json()
        return data if data["state"] in TERMINAL else None

    return await until(check)  # type: ignore[no-any-return]


async def status_of(client: Client, server_id: str) -> str:
    return str((await (await client.get(f"/api/servers/{server_id}")).json())["status"])


async def reaches(client: Client, server_id: str, status: str) -> None:
    async def check() -> bool:
        return await status_of(client, server_id) == status

    await until(check)


async def act(client: Client, server_id: str, action: str, status: int = 202, **kw: Any) -> Any:
    resp = await client.post(f"/api/servers/{server_id}/actions", json={"action": action}, **kw)
    body = await resp.json(content_type=None)
    assert resp.status == status, body
    return body


async def server(client: Client, env_id: str, name: str, status: str = "running") -> Any:
    return await post(
        client,
        "/api/servers",
        {"environmentId": env_id, "name": name, "status": status, "privateIp": "10.0.0.9"},
    )


async def test_restart_stop_start_move_the_server(make_client: MakeClient) -> None:
    client = await make_client(actions={"duration_seconds": 0.3})
    t = await _tree(client)
    sid = t["server"]["id"]
    for action, during, after in (
        ("restart", "restarting", "running"),
        ("stop", "stopping", "stopped"),
        ("start", "starting", "running"),
    ):
        resp = await client.post(f"/api/servers/{sid}/actions", json={"action": action})
        assert resp.status == 202
        queued = await resp.json()
        assert queued["state"] == "queued" and queued["action"] == action
        assert resp.headers["Location"] == f"/api/actions/{queued['id']}"
        await reaches(client, sid, during)
        done = await settled(client, queued["id"])
        assert done["state"] == "succeeded" and done["error"] is None
        assert done["startedAt"] and done["finishedAt"] and done["result"]
        assert await status_of(client, sid) == after
    page = await (await client.get(f"/api/actions?serverId={sid}&limit=2")).json()
    assert [a["action"] for a in page["items"]] == ["start", "stop"]  # newest first
    rest = await (await client.get(f"/api/actions?cursor={page['nextCursor']}&limit=2")).json()
    assert [a["action"] for a in rest["items"]] == ["restart"] and rest["nextCursor"] is None
    done_only = await (await client.get("/api/actions?state=queued,running")).json()
    assert done_only["items"] == []


async def _tree(client: Client) -> dict[str, Any]:
    c = await post(client, "/api/clients", {"name": "Acme"})
    p = await post(client, "/api/projects", {"clientId": c["id"], "name": "Portal"})
    e = await post(client, "/api/environments", {"projectId": p["id"], "name": "Prod"})
    s = await server(client, e["id"], "web-1")
    return {"environment": e, "server": s}


async def test_impossible_transitions_are_409(make_client: MakeClient) -> None:
    client = await make_client(actions=FAST)
    t = await _tree(client)
    env, running = t["environment"]["id"], t["server"]["id"]
    stopped = (await server(client, env, "db-1", "stopped"))["id"]
    new = (await server(client, env, "new-1", "provisioning"))["id"]
    problem = await act(client, running, "start", 409)
    assert f"server {running} is running; start needs it stopped" in problem["detail"]
    assert "is stopped" in (await act(client, stopped, "stop", 409))["detail"]
    assert "is stopped" in (await act(client, stopped, "restart", 409))["detail"]
    assert "is provisioning" in (await act(client, new, "restart", 409))["detail"]

    first = await act(client, running, "restart")
    for second in ("restart", "stop"):  # one pending action per server, whatever it is
        problem = await act(client, running, second, 409)
        assert f"already has a restart action ({first['id']})" in problem["detail"]
    assert (await settled(client, first["id"]))["state"] == "succeeded"
    await act(client, running, "stop")  # free again once the first one ended
    listed = await (await client.get(f"/api/actions?serverId={running}")).json()
    assert len(listed["items"]) == 2


async def test_failed_action_puts_the_server_back(make_client: MakeClient) -> None:
    client = await make_client(actions={"duration_seconds": 0.05, "failure_rate": 1.0})
    t = await _tree(client)
    sid = t["server"]["id"]
    maint = (await server(client, t["environment"]["id"], "m-1", "maintenance"))["id"]
    for ident, action, before in ((sid, "stop", "running"), (maint, "restart", "maintenance")):
        done = await settled(client, (await act(client, ident, action))["id"])
        assert done["state"] == "failed" and "simulated failure" in done["error"]
        assert done["previousStatus"] == before
        assert await status_of(client, ident) == before


async def test_idempotency_key_replays_and_conflicts(make_client: MakeClient) -> None:
    client = await make_client(actions=FAST)
    t = await _tree(client)
    sid = t["server"]["id"]
    other = (await server(client, t["environment"]["id"], "web-2"))["id"]
    key = {"Idempotency-Key": "6f1c-restart-web-1"}
    first = await act(client, sid, "restart", headers=key)
    resp = await client.post(f"/api/servers/{sid}/actions", json={"action": "restart"}, headers=key)
    assert resp.status == 202 and resp.headers["Idempotent-Replayed"] == "true"
    assert (await resp.json())["id"] == first["id"]
    assert (await settled(client, first["id"]))["state"] == "succeeded"
    again = await act(client, sid, "restart", headers=key)  # a late retry: no new restart
    assert again["id"] == first["id"] and again["state"] == "succeeded"

    for server_id, action in ((sid, "stop"), (other, "restart")):
        problem = await act(client, server_id, action, 422, headers=key)
        assert problem["errors"][0]["field"] == "Idempotency-Key"
        assert first["id"] in problem["detail"]
    for bad in ("x" * 256, ""):
        problem = await act(client, sid, "restart", 422, headers={"Idempotency-Key": bad})
        assert problem["errors"][0]["field"] == "Idempotency-Key"

    operator = await token_for(client.app, "operator")  # keys are per caller
    theirs = await act(
        client, other, "restart", headers={**key, "Authorization": f"Bearer {operator}"}
    )
    assert theirs["id"] != first["id"]
    await settled(client, theirs["id"])

    async with client.app[DATABASE].write() as conn:  # 25 hours later the key is forgotten
        await conn.execute(
            "UPDATE actions SET created_at = '2020-01-01T00:00:00.000Z' WHERE id = ?",
            (first["id"],),
        )
    fresh = await act(client, sid, "stop", headers=key)
    assert fresh["id"] != first["id"]
    listed = await (await client.get(f"/api/actions?serverId={sid}")).json()
    assert len(listed["items"]) == 2


async def test_events_on_the_actions_topic(make_client: MakeClient) -> None:
    client = await make_client(actions={"duration_seconds": 0.05, "failure_rate": 1.0})
    sid = (await _tree(client))["server"]["id"]
    sub = client.app[BUS].subscribe(["actions"])
    action = await act(client, sid, "restart")
    events = []
    while not events or events[-1]["state"] not in TERMINAL:
        event = await asyncio.wait_for(sub.queue.get(), 5)
        assert event.topic == "actions" and event.kind == "action.updated"
        events.append(msgspec.to_builtins(event.data))
    assert [e["state"] for e in events] == ["queued", "running", "failed"]
    assert {e["id"] for e in events} == {action["id"]}
    assert all(e["serverId"] == sid and e["action"] == "restart" and e["at"] for e in events)
    assert "error" not in events[0] and "simulated failure" in events[-1]["error"]


async def test_websocket_snapshot_then_live_events(make_client: MakeClient) -> None:
    client = await make_client(actions={"duration_seconds": 0.3})
    sid = (await _tree(client))["server"]["id"]
    action = await act(client, sid, "restart")
    ws = await client.ws_connect("/api/ws")
    frames = await subscribe(ws, "actions")
    snapshot = [f for f in frames if f["type"] == "snapshot"]
    assert [f["data"]["id"] for f in snapshot] == [action["id"]]
    assert snapshot[0]["data"]["state"] in ("queued", "running")
    while (f := await frame(ws))["data"]["state"] != "succeeded":
        assert f["type"] == "event" and f["topic"] == "actions"
    await ws.close()


async def test_webhook_executor(make_client: MakeClient, aiohttp_server: Any) -> None:
    calls: list[tuple[dict[str, str], bytes]] = []
    answer = {"mode": "ok"}
    release = asyncio.Event()

    async def orchestrator(request: web.Request) -> web.Response:
        calls.append((dict(request.headers), await request.read()))
        if answer["mode"] == "slow":
            await asyncio.wait_for(release.wait(), 10)
        if answer["mode"] == "fail":
            return web.Response(status=500, text="boom")
        return web.Response(text="accepted job 42")

    receiver = web.Application()
    receiver.router.add_post("/hook", orchestrator)
    srv = await aiohttp_server(receiver)
    client = await make_client(
        actions={
            "executor": "webhook",
            "webhook_url": str(srv.make_url("/hook")),
            "webhook_timeout": 0.3,
            "webhook_secret": "s3cret",
        }
    )
    t = await _tree(client)
    sid = t["server"]["id"]

    done = await settled(client, (await act(client, sid, "stop"))["id"])
    assert done["state"] == "succeeded" and done["result"] == "accepted job 42"
    assert await status_of(client, sid) == "stopped"
    headers, body = calls[-1]
    assert json.loads(body) == {
        "id": done["id"],
        "serverId": sid,
        "serverName": "web-1",
        "privateIp": "10.0.0.9",
        "action": "stop",
    }
    assert headers["X-DragonOps-Action"] == done["id"]
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["X-DragonOps-Signature"] == f"sha256={expected}"

    answer["mode"] = "fail"
    done = await settled(client, (await act(client, sid, "start"))["id"])
    assert done["state"] == "failed" and done["error"] == "webhook answered HTTP 500"
    assert done["result"] == "boom" and await status_of(client, sid) == "stopped"

    answer["mode"] = "slow"
    done = await settled(client, (await act(client, sid, "start"))["id"])
    release.set()
    assert done["state"] == "failed" and "timed out after 0.3 s" in done["error"]
    assert await status_of(client, sid) == "stopped" and len(calls) == 3


def test_webhook_executor_needs_a_url() -> None:
    with pytest.raises(ConfigError, match="webhook_url"):
        from_mapping({"actions": {"executor": "webhook"}}, env={})
    with pytest.raises(ConfigError, match=r"actions\.failure_rate"):
        from_mapping({"actions": {"failure_rate": 1.5}}, env={})


@pytest.mark.sqlite_file
async def test_graceful_stop_puts_a_running_action_back(
    make_client: MakeClient, tmp_path: Path
) -> None:
    client = await make_client(actions={"duration_seconds": 30, "workers": 1})
    t = await _tree(client)
    first, second = t["server"]["id"], (await server(client, t["environment"]["id"], "w2"))["id"]
    restart = await act(client, first, "restart")
    stop = await act(client, second, "stop")  # waits: the one worker is busy
    await reaches(client, first, "restarting")
    await client.close()  # SIGTERM-like: the app's cleanup runs
    with sqlite3.connect(tmp_path / "dragonops.db") as db:
        rows = db.execute(
            "SELECT a.state, a.started_at, s.status FROM actions a "
            "JOIN servers s ON s.id = a.server_id ORDER BY a.created_at"
        ).fetchall()
    assert rows == [("queued", None, "running"), ("queued", None, "running")]

    again = await make_client(actions={"duration_seconds": 0.05, "workers": 1})
    assert (await settled(again, restart["id"]))["state"] == "succeeded"
    assert (await settled(again, stop["id"]))["state"] == "succeeded"
    assert await status_of(again, first) == "running"
    assert await status_of(again, second) == "stopped"


async def test_deleting_a_server_mid_action_leaves_the_workers_running(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client(actions={"duration_seconds": 0.3, "workers": 1})
    t = await _tree(client)
    doomed, kept = t["server"]["id"], (await server(client, t["environment"]["id"], "w2"))["id"]
    gone = await act(client, doomed, "restart")
    await reaches(client, doomed, "restarting")
    assert (await client.delete(f"/api/servers/{doomed}")).status == 204
    assert (await client.get(f"/api/actions/{gone['id']}")).status == 404
    assert (await settled(client, (await act(client, kept, "stop"))["id"]))["state"] == "succeeded"
    assert not [r for r in caplog.records if r.name == "dragonopsd.actions"]


async def test_bad_requests(client: Client, tree: Tree) -> None:
    sid = (await tree())["server"]["id"]
    assert (await act(client, ZERO, "restart", 404))["detail"] == f"server {ZERO} does not exist"
    await act(client, "nope", "restart", 404)
    assert (await client.get(f"/api/actions/{ZERO}")).status == 404
    assert (await client.get("/api/actions/nope")).status == 404
    for body, field in (
        ({}, "$.action"),
        ({"action": "reboot"}, "$.action"),
        ({"action": "restart", "force": True}, "$.force"),
    ):
        resp = await client.post(f"/api/servers/{sid}/actions", json=body)
        assert resp.status == 422
        assert (await resp.json(content_type=None))["errors"][0]["field"] == field
    for query, field in (
        ("serverId=x", "serverId"),
        ("state=done", "state"),
        ("limit=0", "limit"),
        ("cursor=%21%21", "cursor"),
        ("sort=name", "sort"),
    ):
        resp = await client.get(f"/api/actions?{query}")
        assert resp.status == 422, query
        assert (await resp.json(content_type=None))["errors"][0]["field"] == field
    assert (await (await client.get("/api/actions")).json())["items"] == []


async def test_viewers_follow_but_cannot_act(client: Client, tree: Tree) -> None:
    sid = (await tree())["server"]["id"]
    viewer = {"Authorization": f"Bearer {await token_for(client.app, 'viewer')}"}
    problem = await act(client, sid, "restart", 403, headers=viewer)
    assert "needs operator" in problem["detail"]
    action = await act(client, sid, "restart")
    resp = await client.get(f"/api/actions/{action['id']}", headers=viewer)
    assert resp.status == 200
    assert (await client.get("/api/actions", headers=viewer)).status == 200


def _http(d: Daemon, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {d.token}"}
    req = urllib.request.Request(d.url + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _poll(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)
    return value


def test_kill_9_fails_running_actions_and_resumes_queued_ones(tmp_path: Path) -> None:
    """A crash leaves one action running and one queued; the next start settles both."""
    state = tmp_path / "state"
    slow = {"DRAGONOPS_ACTIONS__DURATION_SECONDS": "30", "DRAGONOPS_ACTIONS__WORKERS": "1"}
    with Daemon(state, env=slow) as d:
        d.wait_listening()
        c = _http(d, "POST", "/api/clients", {"name": "Acme"})
        p = _http(d, "POST", "/api/projects", {"clientId": c["id"], "name": "Portal"})
        e = _http(d, "POST", "/api/environments", {"projectId": p["id"], "name": "Prod"})
        s1, s2 = (
            _http(d, "POST", "/api/servers", {"environmentId": e["id"], "name": n})["id"]
            for n in ("web-1", "web-2")
        )
        running = _http(d, "POST", f"/api/servers/{s1}/actions", {"action": "stop"})
        queued = _http(d, "POST", f"/api/servers/{s2}/actions", {"action": "stop"})
        _poll(lambda: _http(d, "GET", f"/api/servers/{s1}")["status"] == "stopping")
        d.signal(SIGKILL)
        d.wait_exit()

    with Daemon(state, env={"DRAGONOPS_ACTIONS__DURATION_SECONDS": "0.05"}) as d:
        d.wait_listening()
        failed = _http(d, "GET", f"/api/actions/{running['id']}")
        assert failed["state"] == "failed"
        assert failed["error"] == "interrupted by a daemon restart"
        assert _http(d, "GET", f"/api/servers/{s1}")["status"] == "running"  # as before
        resumed = _poll(
            lambda: (
                (a := _http(d, "GET", f"/api/actions/{queued['id']}"))["state"] == "succeeded" and a
            )
        )
        assert resumed["startedAt"] and _http(d, "GET", f"/api/servers/{s2}")["status"] == "stopped"
        d.stop()
