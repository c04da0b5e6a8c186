"""Scoped callers and the operations routes: incidents, maintenance windows, alert rules, and
the global configuration they may not touch (channels, secrets).

Two clients, Acme (in the tokens' scope) and Globex (out), each with a project, environment,
server and an HTTP monitor on it. A scoped viewer and operator see and change only what names
Acme alone; everything naming Globex answers as if it did not exist and stays unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import ClientResponse
from aiohttp.test_utils import TestClient as Client
from conftest import post, token_for

from dragonopsd.secrets.crypto import KeyRing, write_key_file

pytestmark = pytest.mark.backends

MakeClient = Callable[..., Awaitable[Client]]
NOWHERE = "00000000-0000-4000-8000-00000000dead"


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _branch(client: Client, name: str, url: str) -> dict[str, Any]:
    c = await post(client, "/api/clients", {"name": name})
    p = await post(client, "/api/projects", {"clientId": c["id"], "name": f"{name} portal"})
    e = await post(client, "/api/environments", {"projectId": p["id"], "name": "Production"})
    s = await post(
        client,
        "/api/servers",
        {"environmentId": e["id"], "name": f"{name}-web", "type": "web", "privateIp": "10.0.0.5"},
    )
    m = await post(
        client,
        "/api/monitors",
        {
            "name": f"{name} site",
            "kind": "http",
            "url": url,
            "serverId": s["id"],
            "interval": 1,
            "timeout": 1,
        },
    )
    return {"client": c, "project": p, "environment": e, "server": s, "monitor": m}


class World:
    """Acme and Globex, and tokens: Acme-scoped viewer and operator, an unscoped viewer."""

    def __init__(self, client: Client, acme: dict[str, Any], globex: dict[str, Any]) -> None:
        self.client = client
        self.acme = acme
        self.globex = globex
        self.viewer = self.operator = self.plain_viewer = ""

    def ids(self, side: str, kind: str) -> str:
        return str(getattr(self, side)[kind]["id"])

    async def call(self, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        resp = await self.client.request(method, path, json=body, headers=_auth(token))
        return resp.status, await _body(resp)


async def _body(resp: ClientResponse) -> Any:
    if resp.status == 204:
        return None
    return await resp.json(content_type=None)


async def _down(_: web.Request) -> web.Response:
    return web.Response(status=503, text="down")


@pytest.fixture
async def world(make_client: MakeClient, tmp_path: Path, aiohttp_server: Any) -> World:
    # A key file in the state directory before the app starts, so secrets can be stored.
    key = tmp_path / "secrets.key"
    write_key_file(key, KeyRing.new(str(key)), overwrite=False)
    client = await make_client()
    app = web.Application()
    app.router.add_get("/health", _down)
    server = await aiohttp_server(app)
    url = str(server.make_url("/health"))
    w = World(client, await _branch(client, "Acme", url), await _branch(client, "Globex", url))
    scope = {"clients": [w.ids("acme", "client")]}
    for role in ("viewer", "operator"):
        made = await post(
            client, "/api/tokens", {"name": f"acme-{role}", "role": role, "scope": scope}
        )
        setattr(w, role, made["token"])
    w.plain_viewer = await token_for(client.app, "viewer")
    return w


def _same_as_missing(got: tuple[int, Any], missing: tuple[int, Any], real: str, fake: str) -> None:
    """An answer about something out of reach reads as the one about an id that names
    nothing: same status, title, detail and fields, with only the id differing."""
    (status, body), (want_status, want) = got, missing
    assert status == want_status, body
    assert body["title"] == want["title"]
    assert body["detail"].replace(real, fake) == want["detail"], (body, want)
    assert str(body.get("errors")).replace(real, fake) == str(want.get("errors"))


async def _wait(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def _all_pages(w: World, token: str, path: str) -> list[str]:
    """Every id of a paginated list, one item per page (the filter must keep pages right)."""
    ids: list[str] = []
    cursor = None
    while True:
        sep = "&" if "?" in path else "?"
        url = f"{path}{sep}limit=1" + (f"&cursor={cursor}" if cursor else "")
        status, page = await w.call(token, "GET", url)
        assert status == 200, page
        ids += [i["id"] for i in page["items"]]
        assert len(page["items"]) <= 1
        cursor = page["nextCursor"]
        if cursor is None:
            return ids


# ---------------------------------------------------------------------------- incidents


async def _incidents(w: World) -> dict[str, str]:
    """Both monitors' incidents (their site is down) and manual ones on each side, on both,
    and on the whole Acme client and environment."""
    admin = w.client

    async def both_down() -> bool:
        page = await (await admin.get("/api/incidents?kind=monitor")).json()
        return {i["monitorId"] for i in page["items"]} >= {
            w.ids("acme", "monitor"),
            w.ids("globex", "monitor"),
        }

    await _wait(both_down)
    page = await (await admin.get("/api/incidents?kind=monitor")).json()
    by_monitor = {i["monitorId"]: i["id"] for i in page["items"]}
    made = {
        "acme-auto": by_monitor[w.ids("acme", "monitor")],
        "globex-auto": by_monitor[w.ids("globex", "monitor")],
    }

    async def manual(name: str, *targets: tuple[str, str, str]) -> None:
        body = {
            "title": name,
            "severity": "minor",
            "targets": [{"kind": k, "id": w.ids(side, kind)} for k, side, kind in targets],
        }
        made[name] = (await post(admin, "/api/incidents", body))["id"]

    await manual("acme-server", ("server", "acme", "server"))
    await manual("acme-client", ("client", "acme", "client"))
    await manual(
        "acme-env-monitor", ("environment", "acme", "environment"), ("monitor", "acme", "monitor")
    )
    await manual("globex-server", ("server", "globex", "server"))
    await manual("both", ("server", "acme", "server"), ("server", "globex", "server"))
    await manual("globex-monitor", ("monitor", "globex", "monitor"))
    return made


ACME_INCIDENTS = {"acme-auto", "acme-server", "acme-client", "acme-env-monitor"}
GLOBEX_INCIDENTS = {"globex-auto", "globex-server", "both", "globex-monitor"}


async def test_a_scoped_caller_reads_only_incidents_wholly_in_its_scope(world: World) -> None:
    w = world
    made = await _incidents(w)
    mine = {made[n] for n in ACME_INCIDENTS}
    theirs = {made[n] for n in GLOBEX_INCIDENTS}

    status, page = await w.call(w.viewer, "GET", "/api/incidents?limit=100")
    assert status == 200
    assert {i["id"] for i in page["items"]} == mine
    paged = await _all_pages(w, w.viewer, "/api/incidents")
    assert sorted(paged) == sorted(mine)
    for kind in ("monitor", "manual"):
        status, page = await w.call(w.viewer, "GET", f"/api/incidents?kind={kind}&limit=100")
        assert {i["id"] for i in page["items"]} <= mine
    # Filtering on Globex's monitor finds nothing, rather than its incidents.
    globex_monitor = w.ids("globex", "monitor")
    status, page = await w.call(w.viewer, "GET", f"/api/incidents?monitorId={globex_monitor}")
    assert status == 200 and page["items"] == []

    for ident in mine:
        status, body = await w.call(w.viewer, "GET", f"/api/incidents/{ident}")
        assert status == 200 and body["id"] == ident
    missing = await w.call(w.viewer, "GET", f"/api/incidents/{NOWHERE}")
    for ident in theirs:
        got = await w.call(w.viewer, "GET", f"/api/incidents/{ident}")
        _same_as_missing(got, missing, ident, NOWHERE)

    # An unscoped viewer still reads every one.
    status, page = await w.call(w.plain_viewer, "GET", "/api/incidents?limit=100")
    assert {i["id"] for i in page["items"]} >= mine | theirs


async def test_a_scoped_operator_writes_only_incidents_in_its_scope(world: World) -> None:
    w = world
    made = await _incidents(w)
    acme_server, globex_server = w.ids("acme", "server"), w.ids("globex", "server")

    def body(*targets: tuple[str, str]) -> dict[str, Any]:
        return {
            "title": "Checkout slow",
            "severity": "major",
            "targets": [{"kind": k, "id": i} for k, i in targets],
        }

    before = await (await w.client.get("/api/incidents?kind=manual&limit=100")).json()
    missing = await w.call(w.operator, "POST", "/api/incidents", body(("server", NOWHERE)))
    assert missing[0] == 422
    got = await w.call(w.operator, "POST", "/api/incidents", body(("server", globex_server)))
    _same_as_missing(got, missing, globex_server, NOWHERE)
    status, problem = await w.call(
        w.operator,
        "POST",
        "/api/incidents",
        body(("server", acme_server), ("monitor", w.ids("globex", "monitor"))),
    )
    assert status == 422 and problem["errors"][0]["field"] == "$.targets[1].id"
    after = await (await w.client.get("/api/incidents?kind=manual&limit=100")).json()
    assert after == before

    status, created = await w.call(
        w.operator, "POST", "/api/incidents", body(("server", acme_server))
    )
    assert status == 201, created
    status, _ = await w.call(w.viewer, "POST", "/api/incidents", body(("server", acme_server)))
    assert status == 403  # the role still decides first

    update = {"state": "identified", "message": "found it"}
    for name in ("acme-server", "acme-auto"):
        ident = made[name]
        status, found = await w.call(w.operator, "POST", f"/api/incidents/{ident}/updates", update)
        assert status == 201 and found["updates"][-1]["message"] == "found it"
        status, found = await w.call(w.operator, "POST", f"/api/incidents/{ident}/acknowledge")
        assert status == 200 and found["acknowledgedBy"]

    missing_update = await w.call(w.operator, "POST", f"/api/incidents/{NOWHERE}/updates", update)
    missing_ack = await w.call(w.operator, "POST", f"/api/incidents/{NOWHERE}/acknowledge")
    for name in ("globex-auto", "globex-server", "both"):
        ident = made[name]
        got = await w.call(w.operator, "POST", f"/api/incidents/{ident}/updates", update)
        _same_as_missing(got, missing_update, ident, NOWHERE)
        got = await w.call(w.operator, "POST", f"/api/incidents/{ident}/acknowledge")
        _same_as_missing(got, missing_ack, ident, NOWHERE)
        stored = await (await w.client.get(f"/api/incidents/{ident}")).json()
        assert stored["updates"] == [] and stored["acknowledgedBy"] is None


async def test_a_project_scope_does_not_reach_incidents_on_the_whole_client(
    world: World,
) -> None:
    w = world
    made = await _incidents(w)
    project = await post(
        w.client,
        "/api/tokens",
        {"name": "portal", "role": "operator", "scope": {"projects": [w.ids("acme", "project")]}},
    )
    status, page = await w.call(project["token"], "GET", "/api/incidents?limit=100")
    assert status == 200
    seen = {i["id"] for i in page["items"]}
    assert made["acme-server"] in seen and made["acme-auto"] in seen
    assert made["acme-client"] not in seen  # about Acme's other projects too


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
    assert sorted(await _all_pages(w, w.viewer, "/api/maintenance")) == sorted(mine)
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
            _same_as_missing(got, missing, ident, NOWHERE)
        status, _ = await w.call(w.viewer, "GET", f"/api/maintenance/{made['a-server']}{path}")
        assert status == 200

    before = await (await admin.get("/api/maintenance")).json()
    op = w.operator
    missing = await w.call(op, "POST", "/api/maintenance", _window("x", serverIds=[NOWHERE]))
    assert missing[0] == 422 and missing[1]["errors"][0]["field"] == "$.scope.serverIds[0]"
    got = await w.call(op, "POST", "/api/maintenance", _window("x", serverIds=[globex_server]))
    _same_as_missing(got, missing, globex_server, NOWHERE)
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
        _same_as_missing(got, missing_patch, ident, NOWHERE)
        got = await w.call(op, "DELETE", f"/api/maintenance/{ident}")
        _same_as_missing(got, missing_delete, ident, NOWHERE)
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
        _same_as_missing(
            await w.call(w.viewer, "GET", f"/api/alert-rules/{ident}"), missing, ident, NOWHERE
        )
    status, _ = await w.call(w.viewer, "GET", f"/api/alert-rules/{made['a-server']}")
    assert status == 200

    status, alerts = await w.call(w.viewer, "GET", f"/api/servers/{acme_server}/alerts")
    assert status == 200 and alerts["serverId"] == acme_server
    missing = await w.call(w.viewer, "GET", f"/api/servers/{NOWHERE}/alerts")
    got = await w.call(w.viewer, "GET", f"/api/servers/{globex_server}/alerts")
    _same_as_missing(got, missing, globex_server, NOWHERE)

    before = await (await admin.get("/api/alert-rules")).json()
    op = w.operator
    missing = await w.call(op, "POST", "/api/alert-rules", rule("x", serverId=NOWHERE))
    assert missing[0] == 422
    got = await w.call(op, "POST", "/api/alert-rules", rule("x", serverId=globex_server))
    _same_as_missing(got, missing, globex_server, NOWHERE)
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
        _same_as_missing(got, missing_patch, ident, NOWHERE)
        got = await w.call(op, "DELETE", f"/api/alert-rules/{ident}")
        _same_as_missing(got, missing_delete, ident, NOWHERE)
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
