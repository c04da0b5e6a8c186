"""Every route by role by scope: what a caller scoped to one client learns about another.

Two clients, Acme and Globex, each with a project, environment, server, monitor, incident,
maintenance window, alert rule and action. Callers scoped to Acme walk the whole route table
with Globex's ids in the paths. For each route the answer must be the one an unscoped caller
with the same role gets for an id that does not exist (or 404, or 403 where the route is
global configuration): a scoped caller cannot tell another client's things from nothing.
Every list and read it may call must not hold one of Globex's ids or its name. Behaviour
inside the scope (what works, what is refused) is tested per route in test_scope_routes.py,
test_scope_ops.py and test_scope_ws.py.
"""

from __future__ import annotations

import re

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient as Client
from conftest import post, token_for

from dragonopsd.api.route import ROUTE_INDEX, Route
from dragonopsd.model.principal import allows

pytestmark = pytest.mark.backends
ZERO = "00000000-0000-4000-8000-000000000000"
# Path prefix -> the kind of entity its {id} names (the longest prefix wins).
KINDS = {
    "/api/clients/": "client",
    "/api/projects/": "project",
    "/api/environments/": "environment",
    "/api/servers/": "server",
    "/api/monitors/": "monitor",
    "/api/incidents/": "incident",
    "/api/maintenance/": "window",
    "/api/alert-rules/": "rule",
    "/api/actions/": "action",
}


async def _estate(client: Client, name: str) -> dict[str, str]:
    """One client with one of everything a scope can hide; kind -> id (and its name)."""
    c = await post(client, "/api/clients", {"name": name})
    p = await post(client, "/api/projects", {"clientId": c["id"], "name": f"{name} portal"})
    e = await post(
        client,
        "/api/environments",
        {"projectId": p["id"], "name": f"{name} prod", "url": "https://example.test"},
    )
    s = await post(
        client, "/api/servers", {"environmentId": e["id"], "name": f"{name}-web", "type": "web"}
    )
    m = await post(
        client,
        "/api/monitors",
        {"name": f"{name} push", "kind": "push", "serverId": s["id"]},
    )
    i = await post(
        client,
        "/api/incidents",
        {
            "title": f"{name} is slow",
            "severity": "minor",
            "targets": [{"kind": "server", "id": s["id"]}],
            "message": "looking",
        },
    )
    w = await post(
        client,
        "/api/maintenance",
        {
            "name": f"{name} patching",
            "kind": "one-off",
            "startsAt": "2090-01-01T00:00:00Z",
            "endsAt": "2090-01-02T00:00:00Z",
            "scope": {"serverIds": [s["id"]]},
        },
    )
    r = await post(
        client,
        "/api/alert-rules",
        {"metric": "cpu", "threshold": 90, "for": 1, "serverId": s["id"]},
    )
    resp = await client.post(f"/api/servers/{s['id']}/actions", json={"action": "restart"})
    a = await resp.json()
    assert resp.status == 202, a
    return {
        "name": name,
        "client": c["id"],
        "project": p["id"],
        "environment": e["id"],
        "server": s["id"],
        "monitor": m["id"],
        "incident": i["id"],
        "window": w["id"],
        "rule": r["id"],
        "action": a["id"],
    }


def _url(path: str, ids: dict[str, str] | None) -> str:
    """The route's path with {id} naming the entity of ids (None: an id nobody has)."""
    kind = next((k for prefix, k in KINDS.items() if path.startswith(prefix)), None)
    ident = ids[kind] if ids is not None and kind is not None else ZERO
    return (
        path.replace("{id}", ident)
        .replace("{key}", "some.key")
        .replace("{token}", "no-such-token")
        .replace("{exitCode}", "0")
        .replace("{slug}", "nope")
        .replace("{build}", "0")
        .replace("{name}", "app.js")
    )


async def _call(client: Client, route: Route, url: str, token: str) -> tuple[int, str]:
    body = {} if route.method in ("POST", "PUT", "PATCH") else None
    resp = await client.request(
        route.method, url, json=body, headers={"Authorization": f"Bearer {token}"}
    )
    return resp.status, await resp.text()


def _leaks(text: str, other: dict[str, str], url: str = "") -> list[str]:
    """Which of other's ids (or its name) the text holds, beyond the one the caller sent."""
    return [
        k for k, v in other.items() if v not in url and re.search(re.escape(v), text, re.IGNORECASE)
    ]


async def test_a_scoped_caller_cannot_tell_another_client_from_nothing(
    client: Client,
) -> None:
    app: web.Application = client.app
    acme = await _estate(client, "Acme")
    globex = await _estate(client, "Globex")
    plain = {role: await token_for(app, role) for role in ("viewer", "operator")}
    scoped = {}
    for role in ("viewer", "operator"):
        made = await post(
            client,
            "/api/tokens",
            {"name": f"acme-{role}", "role": role, "scope": {"clients": [acme["client"]]}},
        )
        scoped[role] = made["token"]

    undecided = [key for key, r in app[ROUTE_INDEX].items() if r.scope is None]
    assert not undecided, f"routes without a scope decision: {undecided}"

    for (method, path), route in sorted(app[ROUTE_INDEX].items()):
        if route.role == "public" and path not in ("/api/ws", "/api/servers/{id}/stream"):
            continue  # no caller identity: governed by their own settings ([status_page] ...)
        for role, token in scoped.items():
            url = _url(path, globex)
            status, text = await _call(client, route, url, token)
            where = (method, path, role, status, text[:300])
            if not allows(role, route.role):
                assert status == 403, where
                continue
            if route.scope == "unscoped":
                assert status == 403, where
                assert "scoped" in text, where
                continue
            # What the same role without a scope gets for an id that does not exist.
            nothing, _ = await _call(client, route, _url(path, None), plain[role])
            assert status in (nothing, 404), (*where, "unscoped on a missing id:", nothing)
            assert not _leaks(text, globex, url), (*where, _leaks(text, globex, url))
            if method == "GET" and "{id}" not in path and status == 200:
                # A list the scoped caller reads: Acme's things are in it where Globex's
                # are not (when the list is about entities at all).
                _, mine = await _call(client, route, path, plain[role])
                if globex["client"] in mine:
                    assert acme["client"] in text or acme["server"] in text, where

    # Inside the scope the same reads answer as they do to an unscoped caller.
    for (method, path), route in sorted(app[ROUTE_INDEX].items()):
        if method != "GET" or "{id}" not in path or route.scope != "filtered":
            continue
        if not any(path.startswith(prefix) for prefix in KINDS):
            continue
        status, text = await _call(client, route, _url(path, acme), scoped["viewer"])
        expected, _ = await _call(client, route, _url(path, acme), plain["viewer"])
        assert status == expected, (path, status, expected, text[:300])
        assert not _leaks(text, {k: v for k, v in globex.items() if k != "name"}), path
