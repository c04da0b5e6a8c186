"""What the engine keeps straight across flips, pauses and restarts: incidents under flap
damping, pausing a down monitor, the last check after a restart, and the dashboard's health."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from conftest import Client, post
from test_engine import SECRET, Receiver, serve, until

from dragonopsd.monitoring.optional import OptionalSteps

# Every test here that starts the app runs on SQLite and on PostgreSQL (conftest.py).
pytestmark = pytest.mark.backends

MakeClient = Callable[..., Awaitable[Client]]
ANON = {"Authorization": ""}


async def push_monitor(client: Client, name: str = "job") -> tuple[str, str]:
    """A push monitor nobody's silence can turn down during a test: (id, token)."""
    m = await post(client, "/api/monitors", {"name": name, "kind": "push", "interval": 600})
    return m["id"], m["pushToken"]


async def push(client: Client, token: str, status: str) -> None:
    resp = await client.get(f"/api/push/{token}?status={status}", headers=ANON)
    assert resp.status == 200, await resp.text()


async def incidents(client: Client, monitor_id: str) -> list[dict[str, Any]]:
    resp = await client.get(f"/api/incidents?monitorId={monitor_id}&limit=500")
    items: list[dict[str, Any]] = (await resp.json())["items"]
    return items


async def board(client: Client, monitor_id: str) -> dict[str, Any]:
    items = (await (await client.get("/api/monitoring")).json())["items"]
    found: dict[str, Any] = next(m for m in items if m["monitorId"] == monitor_id)
    return found


async def test_a_flapping_monitor_holds_one_incident_open(
    client: Client, aiohttp_server: Any
) -> None:
    receiver = Receiver()
    hook = await serve(aiohttp_server, "/hook", receiver.handle)
    await post(
        client,
        "/api/notifications",
        {"name": "ops", "kind": "webhook", "config": {"url": hook, "secret": SECRET}},
    )
    ident, token = await push_monitor(client)
    for n in range(400):
        await push(client, token, "down" if n % 2 else "up")
    found = await incidents(client, ident)
    # The flips before flap damping sees a flap (6 changes in 10 checks by default) may each
    # open one; from then on the one incident stays open, whatever the status says.
    assert len(found) <= 3, len(found)
    [held] = [i for i in found if i["closedAt"] is None]
    await push(client, token, "up")
    assert (await board(client, ident))["incidentId"] == held["id"]  # up, but still flapping

    ups = 1
    while (await board(client, ident))["incidentId"] is not None:
        assert ups < 10, "still open after a flap window of steady checks"
        await push(client, token, "up")
        ups += 1
    [closed] = [i for i in await incidents(client, ident) if i["id"] == held["id"]]
    assert closed["closedAt"] >= closed["openedAt"]
    assert closed["resolution"] == "up again after flapping"

    async def answered() -> bool:  # every DOWN sent has had its UP
        events = [e["event"] for e in receiver.events]
        return events.count("up") == events.count("down") > 0

    await until(answered)
    await push(client, token, "down")  # steady again: the next failure is a new incident
    assert len([i for i in await incidents(client, ident) if i["closedAt"] is None]) == 1


async def test_pausing_a_down_monitor_resolves_its_incident(client: Client) -> None:
    ident, token = await push_monitor(client)
    await push(client, token, "down")
    [incident] = await incidents(client, ident)
    assert incident["closedAt"] is None

    resp = await client.patch(f"/api/monitors/{ident}", json={"enabled": False})
    assert resp.status == 200, await resp.text()
    [paused] = await incidents(client, ident)
    assert paused["closedAt"] is not None and paused["closedAt"] >= paused["openedAt"]
    assert paused["resolution"] == "monitor paused"
    assert (await client.get("/api/incidents?status=open")).status == 200
    assert (await (await client.get("/api/incidents?status=open")).json())["items"] == []
    state = await board(client, ident)
    assert state["status"] == "paused" and state["incidentId"] is None

    # Resumed while still failing: a new incident, not a silent down with none open.
    resp = await client.patch(f"/api/monitors/{ident}", json={"enabled": True})
    assert resp.status == 200 and (await resp.json())["status"] == "pending"
    await push(client, token, "down")
    again = await incidents(client, ident)
    assert len(again) == 2 and again[0]["closedAt"] is None and again[0]["id"] != incident["id"]


async def test_the_last_check_survives_a_restart(make_client: MakeClient) -> None:
    first = await make_client()
    down, down_token = await push_monitor(first, "down")
    up, up_token = await push_monitor(first, "up")
    await push(first, down_token, "down")
    await push(first, up_token, "up")
    before = {m: await board(first, m) for m in (down, up)}
    assert all(s["lastCheckAt"] for s in before.values())
    await first.close()  # drains the history writer, as SIGTERM does

    client = await make_client()
    for m in (down, up):
        after = await board(client, m)
        assert after["lastCheckAt"] == before[m]["lastCheckAt"], after
        assert after["status"] == before[m]["status"]
    assert (await board(client, down))["message"] == "push reported down"
    listed = {m["id"]: m for m in (await (await client.get("/api/monitors")).json())["items"]}
    assert listed[down]["status"] == "down" and listed[up]["status"] == "up"


async def test_health_counts_only_monitors_with_a_verdict(client: Client) -> None:
    _, first_token = await push_monitor(client, "a")
    _, second_token = await push_monitor(client, "b")
    stats = await (await client.get("/api/stats/dashboard")).json()
    assert stats["monitors"] == {"total": 2, "pending": 2}
    assert stats["health"] == 100.0  # nothing has failed: not 0 %

    await push(client, first_token, "up")
    stats = await (await client.get("/api/stats/dashboard")).json()
    assert stats["health"] == 100.0  # one up, one still pending

    await push(client, second_token, "down")
    stats = await (await client.get("/api/stats/dashboard")).json()
    assert stats["monitors"] == {"total": 2, "up": 1, "down": 1} and stats["health"] == 50.0
    schema = (await (await client.get("/api/openapi.json")).json())["components"]["schemas"]
    assert "pending" in schema["DashboardStats"]["properties"]["health"]["description"].lower()


def test_an_optional_step_that_fails_is_logged_and_falls_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    steps = OptionalSteps(logging.getLogger("dragonopsd.test"))

    def broken() -> str:
        raise OverflowError("date value out of range")

    with caplog.at_level(logging.WARNING, "dragonopsd.test"):
        assert steps.run("maintenance lookup", broken, "fallback") == "fallback"
        for _ in range(100):  # a fault on every check is not logged on every check
            assert steps.run("maintenance lookup", broken, None) is None
        assert steps.run("topology", lambda: "scope", "fallback") == "scope"
    [record] = caplog.records
    assert "maintenance lookup failed" in record.getMessage() and record.exc_info


async def test_an_async_optional_step_that_fails_does_not_raise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    steps = OptionalSteps(logging.getLogger("dragonopsd.test"))
    ran: list[str] = []

    async def hook() -> None:
        ran.append("hook")
        await asyncio.sleep(0)
        raise RuntimeError("cache away")

    with caplog.at_level(logging.WARNING, "dragonopsd.test"):
        await steps.run_async("change hook", hook)
    assert ran == ["hook"] and "change hook failed" in caplog.text
