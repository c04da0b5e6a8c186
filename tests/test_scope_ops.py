"""Scoped callers and the operations routes: maintenance windows, alert rules, and the
global configuration they may not touch (channels, secrets).

Two clients, Acme (in the tokens' scope) and Globex (out), each with a project, environment,
server and an HTTP monitor on it. A scoped viewer and operator see and change only what names
Acme alone; everything naming Globex answers as if it did not exist and stays unchanged.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import post
from scope_world import (
    NOWHERE,
    World,
    all_pages,
    same_as_missing,
    world_fixture,  # noqa: F401  -- the fixture "world", which pytest finds by its name
)

pytestmark = pytest.mark.backends


# ---------------------------------------------------------------------------- maintenance


def _window(name: str, **scope: Any) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "one-off",
        "startsAt": "2031-01-01T00:00:00Z",
        "endsAt": "2031-01-01T02:00:00Z",
        "scope": scope,
    }


async def test_a_scoped_caller_sees_and_changes_only_windows_in_its_scope(world: World) -> None:
    w = world
    admin = w.client
    acme_server, globex_server = w.ids("acme", "server"), w.ids("globex", "server")
    windows = {
        "a-server": _window("a-server", serverIds=[acme_server]),
        "a-monitor": _window("a-monitor", monitorIds=[w.ids("acme", "monitor")]),
        "g-server": _window("g-server", serverIds=[globex_server]),
        "g-monitor": _window("g-monitor", monitorIds=[w.ids("globex", "monitor")]),
        "both": _window("both", serverIds=[acme_server, globex_server]),
        "everything": _window("everything", all=True),
    }
    made = {n: (await post(admin, "/api/maintenance", b))["id"] for n, b in windows.items()}
    mine = {made["a-server"], made["a-monitor"]}

    status, page = await w.call(w.viewer, "GET", "/api/maintenance")
    assert status == 200 and {i["id"] for i in page["items"]} == mine
    assert sorted(await all_pages(w, w.viewer, "/api/maintenance")) == sorted(mine)
    status, page = await w.call(w.plain_viewer, "GET", "/api/maintenance")
    assert {i["id"] for i in page["items"]} == set(made.values())
    status, _ = await w.call(w.viewer, "GET", "/api/maintenance/preview?cron=0+2+*+*+sun")
    assert status == 200

    theirs = [made[n] for n in ("g-server", "g-monitor", "both", "everything")]
    for path in ("", "/occurrences"):
        missing = await w.call(w.viewer, "GET", f"/api/maintenance/{NOWHERE}{path}")
        assert missing[0] == 404
        for ident in theirs:
            got = await w.call(w.viewer, "GET", f"/api/maintenance/{ident}{path}")
            same_as_missing(got, missing, ident, NOWHERE)
        status, _ = await w.call(w.viewer, "GET", f"/api/maintenance/{made['a-server']}{path}")
        assert status == 200

    before = await (await admin.get("/api/maintenance")).json()
    op = w.operator
    missing = await w.call(op, "POST", "/api/maintenance", _window("x", serverIds=[NOWHERE]))
    assert missing[0] == 422 and missing[1]["errors"][0]["field"] == "$.scope.serverIds[0]"
    got = await w.call(op, "POST", "/api/maintenance", _window("x", serverIds=[globex_server]))
    same_as_missing(got, missing, globex_server, NOWHERE)
    status, problem = await w.call(
        op,
        "POST",
        "/api/maintenance",
        _window("x", serverIds=[acme_server], monitorIds=[w.ids("globex", "monitor")]),
    )
    assert status == 422 and problem["errors"][0]["field"] == "$.scope.monitorIds[0]"
    status, problem = await w.call(op, "POST", "/api/maintenance", _window("x", all=True))
    assert status == 403 and "scoped" in problem["detail"]
    ident = made["a-server"]
    status, problem = await w.call(
        op, "PATCH", f"/api/maintenance/{ident}", {"scope": {"serverIds": [globex_server]}}
    )
    assert status == 422
    missing_patch = await w.call(op, "PATCH", f"/api/maintenance/{NOWHERE}", {"name": "mine"})
    missing_delete = await w.call(op, "DELETE", f"/api/maintenance/{NOWHERE}")
    for ident in theirs:
        got = await w.call(op, "PATCH", f"/api/maintenance/{ident}", {"name": "mine"})
        same_as_missing(got, missing_patch, ident, NOWHERE)
        got = await w.call(op, "DELETE", f"/api/maintenance/{ident}")
        same_as_missing(got, missing_delete, ident, NOWHERE)
    assert await (await admin.get("/api/maintenance")).json() == before

    status, created = await w.call(
        op, "POST", "/api/maintenance", _window("acme night", serverIds=[acme_server])
    )
    assert status == 201, created
    status, changed = await w.call(
        op, "PATCH", f"/api/maintenance/{made['a-monitor']}", {"name": "renamed"}
    )
    assert status == 200 and changed["name"] == "renamed"
    status, _ = await w.call(op, "DELETE", f"/api/maintenance/{made['a-server']}")
    assert status == 204


# ---------------------------------------------------------------------------- alert rules


async def test_a_scoped_caller_sees_and_changes_only_alert_rules_in_its_scope(
    world: World,
) -> None:
    w = world
    admin = w.client
    acme_server, globex_server = w.ids("acme", "server"), w.ids("globex", "server")

    def rule(name: str, **target: str) -> dict[str, Any]:
        return {"name": name, "metric": "cpu", "threshold": 90, "for": "5m", **target}

    rules = {
        "a-server": rule("a-server", serverId=acme_server),
        "a-client": rule("a-client", clientId=w.ids("acme", "client")),
        "g-server": rule("g-server", serverId=globex_server),
        "g-project": rule("g-project", projectId=w.ids("globex", "project")),
        "every": rule("every"),
    }
    made = {n: (await post(admin, "/api/alert-rules", b))["id"] for n, b in rules.items()}
    mine = {made["a-server"], made["a-client"]}
    theirs = [made[n] for n in ("g-server", "g-project", "every")]

    status, listed = await w.call(w.viewer, "GET", "/api/alert-rules")
    assert status == 200 and {r["id"] for r in listed["items"]} == mine
    status, listed = await w.call(w.plain_viewer, "GET", "/api/alert-rules")
    assert {r["id"] for r in listed["items"]} == set(made.values())
    missing = await w.call(w.viewer, "GET", f"/api/alert-rules/{NOWHERE}")
    for ident in theirs:
        same_as_missing(
            await w.call(w.viewer, "GET", f"/api/alert-rules/{ident}"), missing, ident, NOWHERE
        )
    status, _ = await w.call(w.viewer, "GET", f"/api/alert-rules/{made['a-server']}")
    assert status == 200

    status, alerts = await w.call(w.viewer, "GET", f"/api/servers/{acme_server}/alerts")
    assert status == 200 and alerts["serverId"] == acme_server
    missing = await w.call(w.viewer, "GET", f"/api/servers/{NOWHERE}/alerts")
    got = await w.call(w.viewer, "GET", f"/api/servers/{globex_server}/alerts")
    same_as_missing(got, missing, globex_server, NOWHERE)

    before = await (await admin.get("/api/alert-rules")).json()
    op = w.operator
    missing = await w.call(op, "POST", "/api/alert-rules", rule("x", serverId=NOWHERE))
    assert missing[0] == 422
    got = await w.call(op, "POST", "/api/alert-rules", rule("x", serverId=globex_server))
    same_as_missing(got, missing, globex_server, NOWHERE)
    status, problem = await w.call(op, "POST", "/api/alert-rules", rule("x"))
    assert status == 403 and "scoped" in problem["detail"]
    status, _ = await w.call(
        op, "PATCH", f"/api/alert-rules/{made['a-server']}", {"serverId": globex_server}
    )
    assert status == 422
    status, _ = await w.call(
        op, "PATCH", f"/api/alert-rules/{made['a-server']}", {"serverId": None}
    )
    assert status == 403  # would become a rule on every server
    missing_patch = await w.call(op, "PATCH", f"/api/alert-rules/{NOWHERE}", {"threshold": 50})
    missing_delete = await w.call(op, "DELETE", f"/api/alert-rules/{NOWHERE}")
    for ident in theirs:
        got = await w.call(op, "PATCH", f"/api/alert-rules/{ident}", {"threshold": 50})
        same_as_missing(got, missing_patch, ident, NOWHERE)
        got = await w.call(op, "DELETE", f"/api/alert-rules/{ident}")
        same_as_missing(got, missing_delete, ident, NOWHERE)
    assert await (await admin.get("/api/alert-rules")).json() == before

    status, created = await w.call(
        op, "POST", "/api/alert-rules", rule("env", environmentId=w.ids("acme", "environment"))
    )
    assert status == 201, created
    status, changed = await w.call(
        op, "PATCH", f"/api/alert-rules/{made['a-server']}", {"threshold": 80}
    )
    assert status == 200 and changed["threshold"] == 80
    status, _ = await w.call(op, "DELETE", f"/api/alert-rules/{made['a-client']}")
    assert status == 204


# ---------------------------------------------------------------------------- global config


async def test_channels_and_secrets_are_refused_to_scoped_callers_even_viewers(
    world: World,
) -> None:
    w = world
    channel = await post(
        w.client,
        "/api/notifications",
        {"name": "ops", "kind": "webhook", "config": {"url": "https://hooks.example/ops"}},
    )
    secret = await post(w.client, "/api/secrets", {"key": "DB_PASSWORD", "value": "hunter2"})
    reads = [
        "/api/notifications",
        f"/api/notifications/{channel['id']}",
        "/api/secrets",
        f"/api/secrets/{secret['id']}",
    ]
    for path in reads:
        for token in (w.viewer, w.operator):
            status, problem = await w.call(token, "GET", path)
            assert status == 403, (path, problem)
            assert "scoped" in problem["detail"]
        status, _ = await w.call(w.plain_viewer, "GET", path)
        assert status == 200, path  # unscoped viewers read them as before

    # Deployment-wide and holding nothing of a client: read as by anyone.
    for path in ("/api/settings", "/api/cluster"):
        status, _ = await w.call(w.viewer, "GET", path)
        assert status == 200, path
