"""Push monitors on a schedule (Healthchecks' model), end to end on the real app and clock.

Schedules are per-second cron expressions (6 fields, seconds first) so a missed run shows up
within seconds: on-time pings keep a monitor up, a missed run is down grace after the time it
was expected, /start measures a run and maxRuntime bounds it, /fail and /{exitCode} report,
the body of a ping is kept (truncated at 10 KB), and bad schedules are 422 naming the field.
"""

from __future__ import annotations

import asyncio
import datetime
import math
import time
from typing import Any

import pytest
from conftest import Client, post, token_for
from test_engine import until

# The ping log lives in the store: run on SQLite and on PostgreSQL.
pytestmark = pytest.mark.backends

ANON = {"Authorization": ""}


async def push_monitor(client: Client, **fields: Any) -> tuple[str, str]:
    m = await post(client, "/api/monitors", {"name": "job", "kind": "push", **fields})
    return m["id"], m["pushToken"]


async def call(client: Client, token: str, tail: str = "", method: str = "GET", **kw: Any) -> Any:
    resp = await client.request(method, f"/api/push/{token}{tail}", headers=ANON, **kw)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def state(client: Client, monitor_id: str) -> dict[str, Any]:
    items = (await (await client.get("/api/monitoring")).json())["items"]
    found: dict[str, Any] = next(m for m in items if m["monitorId"] == monitor_id)
    return found


async def pings(client: Client, monitor_id: str, **query: Any) -> dict[str, Any]:
    resp = await client.get(f"/api/monitors/{monitor_id}/pings", params=query)
    assert resp.status == 200, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


def unix(iso: str) -> float:
    return datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def test_on_time_pings_keep_a_cron_monitor_up(client: Client) -> None:
    # Every 2 s with 2 s of grace: a job that pings every second is never late.
    ident, token = await push_monitor(client, cron="*/2 * * * * *", grace=2)
    await call(client, token)
    for _ in range(6):
        await asyncio.sleep(1.0)
        assert (await state(client, ident))["status"] == "up"
        await call(client, token)
    await asyncio.sleep(1.2)  # one history flush
    beats = (await (await client.get(f"/api/monitors/{ident}/heartbeats")).json())["items"]
    assert beats and {b["status"] for b in beats} == {"up"}


async def test_a_missed_run_is_down_grace_after_its_expected_time(client: Client) -> None:
    # Every 4 s with 1 s of grace. Late is judged from the schedule: the run expected at the
    # first multiple of 4 s after the last ping, plus grace, whenever that ping came.
    ident, token = await push_monitor(client, cron="*/4 * * * * *", grace="1s")
    await call(client, token)
    [ping] = (await pings(client, ident))["items"]
    expected = math.floor(unix(ping["at"]) / 4) * 4 + 4.0
    assert (await pings(client, ident))["outlook"]["lateAt"] == _iso(expected + 1)
    await asyncio.sleep(max(0.0, expected + 1 - 0.3 - time.time()))
    assert (await state(client, ident))["status"] == "up"  # not yet: grace still runs
    await until(lambda: _status_is(client, ident, "down"), timeout=expected + 3 - time.time())
    assert time.time() >= expected + 1
    down = await state(client, ident)
    assert down["message"].startswith(f"no ping for the run expected at {_iso(expected)}")
    assert "cron '*/4 * * * * *', UTC" in down["message"]
    found: list[Any] = []

    async def opened() -> bool:  # the incident is written just after the status flips
        found[:] = (await (await client.get(f"/api/incidents?monitorId={ident}")).json())["items"]
        return bool(found)

    await until(opened, timeout=5)
    [incident] = found
    assert incident["closedAt"] is None
    await call(client, token)  # the job is back
    assert (await state(client, ident))["status"] == "up"


async def test_start_then_ping_measures_the_run(client: Client) -> None:
    ident, token = await push_monitor(client, interval=600)
    await call(client, token, "/start")
    assert (await state(client, ident))["status"] == "pending"  # a start is no verdict
    await asyncio.sleep(1.2)
    await call(client, token, method="POST", data=b"3 files copied")
    up = await state(client, ident)
    assert up["status"] == "up" and 1150 <= up["latencyMs"] < 5000
    done, started = (await pings(client, ident))["items"]
    assert started["kind"] == "start" and started["durationSeconds"] is None
    assert done["kind"] == "success" and 1.15 <= done["durationSeconds"] < 5
    assert done["body"] == "3 files copied" and done["method"] == "POST"
    assert done["source"] == "127.0.0.1"


async def test_a_run_longer_than_max_runtime_goes_down(client: Client) -> None:
    ident, token = await push_monitor(client, interval=600, maxRuntime="1s")
    await call(client, token)
    await call(client, token, "/start")
    log = await pings(client, ident)
    assert log["outlook"]["runningSince"] == log["items"][0]["at"]
    assert unix(log["outlook"]["maxRuntimeAt"]) == unix(log["items"][0]["at"]) + 1
    assert (await state(client, ident))["status"] == "up"
    await until(lambda: _status_is(client, ident, "down"), timeout=4)
    assert "longer than maxRuntime (1 s)" in (await state(client, ident))["message"]
    await asyncio.sleep(1.5)
    assert (await state(client, ident))["status"] == "down"  # said once, not repeated
    await call(client, token, "/0")  # the run did finish, late
    assert (await state(client, ident))["status"] == "up"
    [done, *_] = (await pings(client, ident))["items"]
    assert done["exitCode"] == 0 and done["durationSeconds"] >= 1


async def test_fail_and_exit_codes(client: Client) -> None:
    ident, token = await push_monitor(client, interval=600)
    await call(client, token, "/fail")
    assert (await state(client, ident))["status"] == "down"
    await call(client, token, "/0", method="POST")
    assert (await state(client, ident))["status"] == "up"
    await call(client, token, "/1")
    down = await state(client, ident)
    assert down["status"] == "down" and down["message"] == "exit code 1"
    await call(client, token, "/0")
    assert (await state(client, ident))["status"] == "up"
    await call(client, token, "/fail?msg=disk%20full", method="POST")
    assert (await state(client, ident))["message"] == "disk full"
    kinds = [(p["kind"], p["exitCode"]) for p in (await pings(client, ident))["items"]]
    assert kinds == [("fail", None), ("success", 0), ("fail", 1), ("success", 0), ("fail", None)]
    for bad in ("/256", "/-1", "/abc", "/1.5"):
        resp = await client.get(f"/api/push/{token}{bad}", headers=ANON)
        assert resp.status == 422, bad
        assert (await resp.json())["errors"][0]["field"] == "exitCode"
    assert (await client.get("/api/push/not-a-token/start", headers=ANON)).status == 404
    assert (await client.get("/api/push/not-a-token/3", headers=ANON)).status == 404


async def test_the_body_is_kept_up_to_10_kb(client: Client) -> None:
    ident, token = await push_monitor(client, interval=600)
    await call(client, token, method="POST", data="réussi: 12 fichiers".encode())
    big = b"x" * 10_239 + "é".encode() + b"y" * 5000  # the limit cuts the "é" in two
    await call(client, token, "/1", method="POST", data=big)
    huge = b"z" * (2 * 1024 * 1024)  # past [server] max_body_bytes: still a ping, never a 413
    await call(client, token, "/0", method="POST", data=huge)
    items = (await pings(client, ident))["items"]
    assert items[2]["body"] == "réussi: 12 fichiers" and items[2]["truncated"] is False
    assert items[1]["body"] == "x" * 10_239 and items[1]["truncated"] is True
    assert items[0]["body"] == "z" * 10_240 and items[0]["truncated"] is True
    # A viewer sees that a body came, not what it says (a job's output is an operator's).
    viewer = await token_for(client.app, "viewer")
    resp = await client.get(
        f"/api/monitors/{ident}/pings", headers={"Authorization": f"Bearer {viewer}"}
    )
    assert {p["body"] for p in (await resp.json())["items"]} == {"****"}


async def test_the_ping_log_keeps_the_newest_50(client: Client) -> None:
    ident, token = await push_monitor(client, interval=600)
    for i in range(55):
        await call(client, token, f"?msg={i}")
    items = (await pings(client, ident, limit=500))["items"]
    assert [p["message"] for p in items] == [str(i) for i in range(54, 4, -1)]
    other, _ = await push_monitor(client, interval=600)
    assert (await pings(client, other))["items"] == []
    http = await post(client, "/api/monitors", {"name": "h", "kind": "tcp", "host": "h", "port": 1})
    assert (await client.get(f"/api/monitors/{http['id']}/pings")).status == 409


async def test_a_schedule_in_a_time_zone(client: Client) -> None:
    ident, _ = await push_monitor(client, cron="0 3 * * *", timezone="Asia/Tokyo", grace="1h30m")
    m = await (await client.get(f"/api/monitors/{ident}")).json()
    assert m["interval"] is None and m["grace"] == 5400 and m["timezone"] == "Asia/Tokyo"
    outlook = (await pings(client, ident))["outlook"]
    assert outlook["nextExpectedAt"].endswith("T18:00:00.000Z")  # 03:00 in Tokyo
    assert unix(outlook["lateAt"]) - unix(outlook["nextExpectedAt"]) == 5400
    # Back to an interval: cron goes and interval comes in one merge patch.
    resp = await client.patch(
        f"/api/monitors/{ident}", json={"cron": None, "timezone": None, "interval": 300}
    )
    assert resp.status == 200 and (await resp.json())["interval"] == 300


async def test_bad_schedules_are_422_naming_the_field(client: Client) -> None:
    push = {"name": "job", "kind": "push"}
    cases = [
        ({"cron": "61 * * * *"}, "$.cron"),
        ({"cron": "* * *"}, "$.cron"),
        ({"cron": "0 0 30 2 *"}, "$.cron"),  # never fires
        ({"cron": "H * * * *"}, "$.cron"),  # hashed: changes on every parse
        ({"cron": "*/5 * * * *", "interval": 60}, "$.interval"),
        ({"cron": "*/5 * * * *", "timezone": "Mars/Olympus_Mons"}, "$.timezone"),
        ({"timezone": "Europe/Berlin"}, "$.timezone"),  # a zone without a schedule
        ({"grace": "5 minutes"}, "$.grace"),
        ({"grace": -1}, "$.grace"),
        ({"grace": "31d"}, "$.grace"),
        ({"maxRuntime": "0s"}, "$.maxRuntime"),
        ({"maxRuntime": True}, "$.maxRuntime"),
    ]
    for extra, field in cases:
        resp = await client.post("/api/monitors", json={**push, **extra})
        body = await resp.json()
        assert resp.status == 422, (extra, body)
        assert body["errors"][0]["field"] == field, (extra, body)
    tcp = {"name": "t", "kind": "tcp", "host": "h", "port": 1, "cron": "* * * * *"}
    resp = await client.post("/api/monitors", json=tcp)
    assert resp.status == 422 and (await resp.json())["errors"][0]["field"] == "$.cron"
    # An interval monitor given a cron must drop its interval in the same patch.
    ident, _ = await push_monitor(client, interval=600)
    resp = await client.patch(f"/api/monitors/{ident}", json={"cron": "0 3 * * *"})
    assert resp.status == 422 and (await resp.json())["errors"][0]["field"] == "$.interval"
    resp = await client.patch(
        f"/api/monitors/{ident}", json={"cron": "0 3 * * *", "interval": None, "grace": "5m"}
    )
    m = await resp.json()
    assert resp.status == 200 and m["cron"] == "0 3 * * *" and m["grace"] == 300, m
    assert m["interval"] is None


async def _status_is(client: Client, ident: str, status: str) -> bool:
    return (await state(client, ident))["status"] == status


def _iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


async def test_openapi_documents_the_signals_and_the_ping_log(client: Client) -> None:
    spec = await (await client.get("/api/openapi.json")).json()
    for tail in ("", "/start", "/fail", "/{exitCode}"):
        path = spec["paths"][f"/api/push/{{token}}{tail}"]
        assert set(path) >= {"get", "post"}
        # Public by design (the token is the credential): no security requirement.
        assert all(op.get("security") == [] or "security" not in op for op in path.values())
    code = next(
        p
        for p in spec["paths"]["/api/push/{token}/{exitCode}"]["get"]["parameters"]
        if p["name"] == "exitCode"
    )
    assert code["schema"] == {"type": "integer", "minimum": 0, "maximum": 255}
    assert "bearerAuth" in str(spec["paths"]["/api/monitors/{id}/pings"]["get"]["security"])
    props = spec["components"]["schemas"]["MonitorSpec"]["properties"]
    for name in ("cron", "timezone", "grace", "maxRuntime"):
        assert "Only for kind push." in props[name]["description"]
    assert "Not with cron." in props["interval"]["description"]
    assert set(spec["components"]["schemas"]["Ping"]["properties"]) >= {"body", "truncated"}


async def test_a_reported_failure_with_retries_goes_down_after_them(client: Client) -> None:
    ident, token = await push_monitor(client, interval=600, retries=1, retryInterval=1)
    await call(client, token)
    await call(client, token, "/3")
    assert (await state(client, ident))["status"] == "pending"  # the one retry first
    await until(lambda: _status_is(client, ident, "down"), timeout=4)
    assert (await state(client, ident))["message"] == "exit code 3"


async def test_the_ping_log_survives_a_restart(make_client: Any) -> None:
    first = await make_client()
    ident, token = await push_monitor(first, cron="0 3 * * *", maxRuntime=3600)
    await call(first, token, "/start")
    await call(first, token, method="POST", data=b"done")
    await first.close()
    client = await make_client()
    [done, started] = (await pings(client, ident))["items"]
    assert (done["kind"], done["body"], started["kind"]) == ("success", "done", "start")
    assert (await pings(client, ident))["outlook"]["nextExpectedAt"].endswith("T03:00:00.000Z")
