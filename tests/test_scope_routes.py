"""Scoped callers on the inventory, monitor, history, action and dashboard routes.

Two clients, Acme (in the scope) and Globex (out of it), each with project, environment, server
and an HTTP monitor on the server; tokens scoped to Acme (viewer, operator) and to one Acme
project. Out of the reach is nonexistent: the same 404 (or the same 422 for a parent in a body)
as an id that names nothing, and nothing changes; lists, search, the board and the dashboard
counts hold Acme only; unscoped callers still see both.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from conftest import Client, post, token_for

from dragonopsd.api.route import ROUTE_INDEX
from dragonopsd.appkeys import INVENTORY
from dragonopsd.store.inventory import ListQuery

pytestmark = pytest.mark.backends
Tree = Callable[[], Awaitable[dict[str, Any]]]
MISSING = "00000000-0000-4000-8000-00000000f00d"
MONITOR_URL = "http://127.0.0.1:9/"  # nothing listens: the monitor is down, which is fine

# The scope decision of every route of the modules this file covers (api/route.py).
FILTERED_MODULES = {"inventory", "monitors", "heartbeats", "samples", "actions"}
GLOBAL_MODULES = {"badges", "statuspage", "metrics", "webui"}
SPECIAL = {
    ("GET", "/api/stats/engine"): "unscoped",  # engine-wide figures: every client's monitors
    ("GET", "/api/stats/dashboard"): "filtered",
    ("POST", "/api/servers/{id}/samples"): "global",  # agents only, and agents carry no scope
    ("GET", "/api/monitors/{id}/pings"): "filtered",
}


class World:
    """The two clients, the monitors, and a call helper per token."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.acme: dict[str, Any] = {}
        self.globex: dict[str, Any] = {}
        self.tokens: dict[str, str] = {}

    async def call(
        self, who: str, method: str, path: str, body: Any = None
    ) -> tuple[int, Any, str]:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who != "admin" else {}
        resp = await self.client.request(method, path, json=body, headers=headers)
        text = await resp.text()
        data = await resp.json(content_type=None) if text else None
        return resp.status, data, resp.content_type

    async def ok(self, who: str, method: str, path: str, body: Any = None) -> Any:
        status, data, _ = await self.call(who, method, path, body)
        assert status < 300, (who, method, path, status, data)
        return data

    async def same_as_missing(
        self, who: str, method: str, path: str, hidden: str, body: Any = None
    ) -> tuple[int, Any]:
        """Call with the hidden id, then with an id that names nothing: one answer."""

        def shown(data: Any, ident: str) -> Any:
            if isinstance(data, dict):
                data = {k: v for k, v in data.items() if k != "requestId"}
            return str(data).replace(ident, "<id>")

        def swap(value: Any) -> Any:
            return None if value is None else json.loads(json.dumps(value).replace(hidden, MISSING))

        got = await self.call(who, method, path, body)
        want = await self.call(who, method, path.replace(hidden, MISSING), swap(body))
        assert got[0] == want[0], (method, path, got, want)
        assert got[2] == want[2] == "application/problem+json", (method, path, got)
        assert shown(got[1], hidden) == shown(want[1], MISSING), (method, path, got, want)
        return got[0], got[1]


async def _branch(client: Client, name: str) -> dict[str, Any]:
    c = await post(client, "/api/clients", {"name": name})
    p = await post(client, "/api/projects", {"clientId": c["id"], "name": f"{name} portal"})
    e = await post(client, "/api/environments", {"projectId": p["id"], "name": f"{name} prod"})
    s = await post(client, "/api/servers", {"environmentId": e["id"], "name": f"{name}-web-1"})
    m = await post(
        client,
        "/api/monitors",
        {"name": f"{name} http", "kind": "http", "url": MONITOR_URL, "serverId": s["id"]},
    )
    return {"client": c, "project": p, "environment": e, "server": s, "monitor": m}


@pytest.fixture
async def world(make_client: Callable[..., Awaitable[Client]]) -> World:
    client = await make_client(actions={"duration_seconds": 0.05})
    w = World(client)
    w.acme = await _branch(client, "Acme")
    w.globex = await _branch(client, "Globex")
    w.acme["shop"] = await post(
        client, "/api/projects", {"clientId": w.acme["client"]["id"], "name": "Acme shop"}
    )
    w.globex["action"] = await post(
        client, f"/api/servers/{w.globex['server']['id']}/actions", {"action": "restart"}, 202
    )
    for _ in range(200):  # settled, so the Globex server's status stays as it is
        action = await w.ok("admin", "GET", f"/api/actions/{w.globex['action']['id']}")
        if action["state"] in ("succeeded", "failed"):
            break
        await asyncio.sleep(0.05)
    acme = {"clients": [w.acme["client"]["id"]]}
    for name, role, scope in (
        ("viewer", "viewer", acme),
        ("operator", "operator", acme),
        ("portal", "operator", {"projects": [w.acme["project"]["id"]]}),
    ):
        made = await post(client, "/api/tokens", {"name": name, "role": role, "scope": scope})
        w.tokens[name] = made["token"]
    w.tokens["everyone"] = await token_for(client.app, "viewer")
    return w


def _names(page: dict[str, Any]) -> set[str]:
    return {item["name"] for item in page["items"]}


async def test_every_route_here_states_its_scope(client: Client) -> None:
    for (method, path), route in client.app[ROUTE_INDEX].items():
        module = route.handler.__module__.rsplit(".", 1)[-1]
        if (method, path) in SPECIAL:
            want = SPECIAL[(method, path)]
        elif module in FILTERED_MODULES:
            want = "filtered"
        elif module in GLOBAL_MODULES | {"push", "system"}:
            want = "global"
        else:
            continue  # another module's decision, tested with it
        assert route.scope == want, (method, path, route.scope)


async def test_lists_search_board_and_stats_hold_only_the_reach(world: World) -> None:
    for who, clients in (("viewer", {"Acme"}), ("everyone", {"Acme", "Globex"})):
        assert _names(await world.ok(who, "GET", "/api/clients")) == clients
        assert _names(await world.ok(who, "GET", "/api/clients?q=e")) == clients
        servers = await world.ok(who, "GET", "/api/servers?q=web")
        assert _names(servers) == {f"{c}-web-1" for c in clients}
        envs = await world.ok(who, "GET", "/api/environments")
        assert _names(envs) == {f"{c} prod" for c in clients}
        monitors = await world.ok(who, "GET", "/api/monitors?q=HTTP")
        assert _names(monitors) == {f"{c} http" for c in clients}
        board = await world.ok(who, "GET", "/api/monitoring")
        assert {s["name"] for s in board["items"]} == {f"{c} http" for c in clients}
        assert sum(board["counts"].values()) == len(clients)
        stats = await world.ok(who, "GET", "/api/stats/dashboard")
        assert (stats["clients"], stats["servers"]) == (len(clients), len(clients))
        assert stats["projects"] == len(clients) + 1 and stats["monitors"]["total"] == len(clients)
        assert sum(stats["serversByStatus"].values()) == len(clients)
        actions = await world.ok(who, "GET", "/api/actions")
        assert len(actions["items"]) == (0 if who == "viewer" else 1)

    # Pages are cut in the SQL: a page of one with nothing after it is the last page.
    page = await world.ok("viewer", "GET", "/api/clients?limit=1")
    assert _names(page) == {"Acme"} and page["nextCursor"] is None
    first = await world.ok("viewer", "GET", "/api/projects?limit=1")
    assert first["nextCursor"] is not None
    second = await world.ok("viewer", "GET", f"/api/projects?limit=1&cursor={first['nextCursor']}")
    assert _names(first) | _names(second) == {"Acme portal", "Acme shop"}
    assert second["nextCursor"] is None
    # A filter naming a Globex parent finds what a missing parent finds: nothing.
    globex = world.globex["client"]["id"]
    assert (await world.ok("viewer", "GET", f"/api/projects?clientId={globex}"))["items"] == []
    server = world.globex["server"]["id"]
    assert (await world.ok("viewer", "GET", f"/api/monitors?serverId={server}"))["items"] == []
    assert (await world.ok("viewer", "GET", f"/api/actions?serverId={server}"))["items"] == []


async def test_reads_outside_the_reach_answer_as_a_missing_id(world: World) -> None:
    g = world.globex
    paths = [
        *(f"/api/{kind}s/{g[kind]['id']}" for kind in ("client", "project", "environment")),
        f"/api/servers/{g['server']['id']}",
        f"/api/servers/{g['server']['id']}/metrics",
        f"/api/actions/{g['action']['id']}",
        *(
            f"/api/monitors/{g['monitor']['id']}{tail}"
            for tail in ("", "/history", "/uptime", "/heartbeats", "/pings")
        ),
    ]
    for path in paths:
        hidden = path.split("/")[3]
        assert (await world.same_as_missing("viewer", "GET", path, hidden))[0] == 404
        assert (await world.call("everyone", "GET", path))[0] in (200, 409), path  # pings: 409
    acme = world.acme
    for path in (
        f"/api/servers/{acme['server']['id']}/metrics",
        f"/api/projects/{acme['shop']['id']}",
    ):
        await world.ok("viewer", "GET", path)


async def _snapshot(world: World) -> list[Any]:
    """Everything of Globex as an admin reads it."""
    g = world.globex
    return [
        await world.ok("admin", "GET", f"/api/clients/{g['client']['id']}?include=projects"),
        await world.ok("admin", "GET", f"/api/projects/{g['project']['id']}"),
        await world.ok("admin", "GET", f"/api/environments/{g['environment']['id']}"),
        await world.ok("admin", "GET", f"/api/servers/{g['server']['id']}"),
        {**await world.ok("admin", "GET", f"/api/monitors/{g['monitor']['id']}"), "status": 0},
        len((await world.ok("admin", "GET", "/api/projects"))["items"]),
        len((await world.ok("admin", "GET", "/api/monitors"))["items"]),
        len((await world.ok("admin", "GET", "/api/actions"))["items"]),
    ]


async def test_writes_outside_the_reach_answer_as_a_missing_id_and_change_nothing(
    world: World,
) -> None:
    g, a = world.globex, world.acme
    before = await _snapshot(world)
    writes: list[tuple[str, str, str, Any]] = [
        ("PATCH", f"/api/clients/{g['client']['id']}", g["client"]["id"], {"name": "Mine"}),
        ("DELETE", f"/api/clients/{g['client']['id']}?cascade=true", g["client"]["id"], None),
        ("PATCH", f"/api/projects/{g['project']['id']}", g["project"]["id"], {"name": "x"}),
        (
            "DELETE",
            f"/api/environments/{g['environment']['id']}?cascade=true",
            g["environment"]["id"],
            None,
        ),
        ("PATCH", f"/api/servers/{g['server']['id']}", g["server"]["id"], {"name": "x"}),
        ("DELETE", f"/api/servers/{g['server']['id']}", g["server"]["id"], None),
        (
            "POST",
            f"/api/servers/{g['server']['id']}/actions",
            g["server"]["id"],
            {"action": "stop"},
        ),
        ("PATCH", f"/api/monitors/{g['monitor']['id']}", g["monitor"]["id"], {"name": "x"}),
        ("DELETE", f"/api/monitors/{g['monitor']['id']}", g["monitor"]["id"], None),
        ("POST", f"/api/monitors/{g['monitor']['id']}/check", g["monitor"]["id"], None),
    ]
    for method, path, hidden, body in writes:
        status, _ = await world.same_as_missing("operator", method, path, hidden, body)
        assert status == 404, (method, path)
    # Children under a Globex parent, and Acme entities moved under one: a missing parent.
    parents: list[tuple[str, str, str, Any]] = [
        ("POST", "/api/projects", g["client"]["id"], {"clientId": g["client"]["id"], "name": "p"}),
        (
            "POST",
            "/api/environments",
            g["project"]["id"],
            {"projectId": g["project"]["id"], "name": "e"},
        ),
        (
            "POST",
            "/api/servers",
            g["environment"]["id"],
            {"environmentId": g["environment"]["id"], "name": "s"},
        ),
        (
            "PATCH",
            f"/api/projects/{a['project']['id']}",
            g["client"]["id"],
            {"clientId": g["client"]["id"]},
        ),
        (
            "PATCH",
            f"/api/environments/{a['environment']['id']}",
            g["project"]["id"],
            {"projectId": g["project"]["id"]},
        ),
        (
            "PATCH",
            f"/api/servers/{a['server']['id']}",
            g["environment"]["id"],
            {"environmentId": g["environment"]["id"]},
        ),
    ]
    for link, key in (("server", "serverId"), ("environment", "environmentId")):
        hidden = g[link]["id"]
        monitor = {"name": "m", "kind": "http", "url": MONITOR_URL, key: hidden}
        parents += [
            ("POST", "/api/monitors", hidden, monitor),
            ("POST", "/api/monitors/test", hidden, monitor),
            ("PATCH", f"/api/monitors/{a['monitor']['id']}", hidden, {key: hidden}),
        ]
    for method, path, hidden, body in parents:
        status, problem = await world.same_as_missing("operator", method, path, hidden, body)
        assert status == 422 and "does not exist" in problem["detail"], (method, path, problem)
    assert await _snapshot(world) == before
    assert (await world.ok("admin", "GET", f"/api/servers/{a['server']['id']}"))[
        "environmentId"
    ] == a["environment"]["id"]


async def test_in_the_reach_a_scoped_operator_works_as_its_role_allows(
    world: World, aiohttp_server: Any
) -> None:
    a = world.acme
    project = await world.ok(
        "operator", "POST", "/api/projects", {"clientId": a["client"]["id"], "name": "New"}
    )
    env = await world.ok(
        "operator", "POST", "/api/environments", {"projectId": project["id"], "name": "qa"}
    )
    server = await world.ok(
        "operator", "POST", "/api/servers", {"environmentId": env["id"], "name": "qa-1"}
    )
    monitor = await world.ok(
        "operator",
        "POST",
        "/api/monitors",
        {"name": "qa http", "kind": "http", "url": MONITOR_URL, "environmentId": env["id"]},
    )
    await world.ok(
        "operator", "PATCH", f"/api/monitors/{monitor['id']}", {"serverId": server["id"]}
    )
    await world.ok(
        "operator",
        "PATCH",
        f"/api/servers/{server['id']}",
        {"environmentId": a["environment"]["id"]},
    )
    await world.ok("operator", "POST", f"/api/monitors/{a['monitor']['id']}/check")
    await world.ok(
        "operator", "POST", f"/api/servers/{a['server']['id']}/actions", {"action": "restart"}
    )
    assert len((await world.ok("viewer", "GET", "/api/actions"))["items"]) == 1
    await world.ok("operator", "DELETE", f"/api/monitors/{monitor['id']}")
    status, problem, _ = await world.call("operator", "DELETE", f"/api/projects/{project['id']}")
    assert status == 409 and "still has 1 environments" in problem["detail"]
    await world.ok("operator", "DELETE", f"/api/projects/{project['id']}?cascade=true")
    await world.ok("operator", "PATCH", f"/api/clients/{a['client']['id']}", {"name": "Acme Corp"})

    # A viewer reads but does not write; nobody scoped makes a client (it would be outside).
    assert (
        await world.call("viewer", "PATCH", f"/api/clients/{a['client']['id']}", {"name": "x"})
    )[0] == 403
    status, problem, _ = await world.call("operator", "POST", "/api/clients", {"name": "Initech"})
    assert status == 403 and "scoped" in problem["detail"]
    # A monitor attached to nothing would belong to no client of the scope: refused, named.
    status, problem, _ = await world.call(
        "operator", "POST", "/api/monitors", {"name": "loose", "kind": "http", "url": MONITOR_URL}
    )
    assert status == 422 and problem["errors"][0]["field"] == "$.serverId"
    status, problem, _ = await world.call(
        "operator", "PATCH", f"/api/monitors/{a['monitor']['id']}", {"serverId": None}
    )
    assert status == 422 and problem["errors"][0]["field"] == "$.serverId"

    # ...but a trial of one saves nothing and reads nothing of any client: it runs.
    async def ok(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    target = web.Application()
    target.router.add_get("/", ok)
    url = str((await aiohttp_server(target)).make_url("/"))
    report = await world.ok(
        "operator", "POST", "/api/monitors/test", {"name": "t", "kind": "http", "url": url}
    )
    assert report["ok"] is True
    # Engine-wide figures count every client's monitors: not for a scoped caller.
    assert (await world.call("viewer", "GET", "/api/stats/engine"))[0] == 403
    await world.ok("everyone", "GET", "/api/stats/engine")


async def test_a_project_scope_names_its_client_and_shows_nothing_else_of_it(world: World) -> None:
    a = world.acme
    clients = await world.ok("portal", "GET", "/api/clients?include=projects")
    (acme,) = clients["items"]
    assert acme["projectCount"] == 1 and [p["name"] for p in acme["projects"]] == ["Acme portal"]
    one = await world.ok("portal", "GET", f"/api/clients/{a['client']['id']}")
    assert one["projectCount"] == 1
    assert _names(await world.ok("portal", "GET", "/api/projects")) == {"Acme portal"}
    status, _ = await world.same_as_missing(
        "portal", "GET", f"/api/projects/{a['shop']['id']}", a["shop"]["id"]
    )
    assert status == 404
    stats = await world.ok("portal", "GET", "/api/stats/dashboard")
    assert (stats["clients"], stats["projects"]) == (1, 1)
    # The client itself is not in the scope: it cannot be changed, deleted or added to.
    for method, path, body in (
        ("PATCH", f"/api/clients/{a['client']['id']}", {"name": "x"}),
        ("DELETE", f"/api/clients/{a['client']['id']}?cascade=true", None),
        ("POST", "/api/projects", {"clientId": a["client"]["id"], "name": "x"}),
        (
            "PATCH",
            f"/api/projects/{a['project']['id']}",
            {"clientId": world.globex["client"]["id"]},
        ),
    ):
        status, problem, _ = await world.call("portal", method, path, body)
        assert status in (403, 422), (method, path, problem)
    # Its own project is its to change, a body repeating its client included.
    await world.ok(
        "portal",
        "PATCH",
        f"/api/projects/{a['project']['id']}",
        {"clientId": a["client"]["id"], "name": "Portal 2"},
    )
    assert (await world.ok("admin", "GET", f"/api/clients/{a['client']['id']}"))[
        "projectCount"
    ] == 2


async def test_the_allowed_ids_filter_takes_thousands_of_ids(client: Client, tree: Tree) -> None:
    acme = await tree()
    ids = frozenset({*(str(uuid.uuid4()) for _ in range(5000)), acme["server"]["id"]})
    items, cursor = await client.app[INVENTORY].list("servers", ListQuery(ids=ids))
    assert [s.id for s in items] == [acme["server"]["id"]] and cursor is None
    items, _ = await client.app[INVENTORY].list("servers", ListQuery(ids=frozenset()))
    assert items == []
