"""include= costs a fixed number of SQL statements, and the dashboard is served from cache."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp import web
from conftest import Client, post

from dragonopsd.appkeys import BUS, DATABASE

# Every test here that starts the app runs on SQLite and on PostgreSQL (conftest.py).
pytestmark = pytest.mark.backends


async def seed_projects(client: Client, n: int) -> str:
    """n projects of a new client, each with two environments of one server; the client id."""
    c = await post(client, "/api/clients", {"name": "Client"})
    for i in range(n):
        p = await post(client, "/api/projects", {"clientId": c["id"], "name": f"p{i:03d}"})
        for env in ("Production", "Staging"):
            e = await post(client, "/api/environments", {"projectId": p["id"], "name": env})
            await post(client, "/api/servers", {"environmentId": e["id"], "name": "web"})
    return str(c["id"])


# The inventory store's own statements; background work (history flushes, the token watch,
# the engine's topology refresh) runs on the same connections and must not be counted.
INVENTORY_SQL = re.compile(
    r"FROM (clients|projects|environments|servers) t\b"
    r"|^SELECT \(SELECT COUNT\(\*\) FROM clients\)"
    r"|^SELECT status, COUNT\(\*\) FROM servers GROUP BY status"
)


async def statements_for(app: web.Application, client: Client, url: str) -> tuple[int, Any]:
    seen: list[str] = []
    await app[DATABASE].set_trace_callback(seen.append)
    try:
        resp = await client.get(url)
        body = await resp.json()
    finally:
        await app[DATABASE].set_trace_callback(None)
    return sum(1 for sql in seen if INVENTORY_SQL.search(sql)), body


async def test_include_statement_count_does_not_grow_with_rows(
    make_client: Any,
) -> None:
    counts = {}
    for n in (5, 200):
        client = await make_client(storage={"path": f"n{n}.db"})
        app = client.app
        c_id = await seed_projects(client, n)
        # Filtered by client: on PostgreSQL both rounds share one database.
        url = f"/api/projects?clientId={c_id}&include=environments,environments.servers&limit=500"
        counts[n], body = await statements_for(app, client, url)
        assert len(body["items"]) == n
        assert all(len(p["environments"]) == 2 for p in body["items"])
        assert all(len(e["servers"]) == 1 for p in body["items"] for e in p["environments"])
        one, single = await statements_for(
            app, client, f"/api/clients/{c_id}?include=projects.environments"
        )
        assert len(single["projects"]) == n
        counts[f"one{n}"] = one
    assert counts[5] == counts[200]
    assert counts["one5"] == counts["one200"]
    assert counts[5] == 3  # the list, its environments, their servers: nothing per row


async def test_dashboard_counts_cache_and_invalidation(
    make_client: Any,
) -> None:
    client = await make_client()
    app = client.app
    await seed_projects(client, 2)
    n, stats = await statements_for(app, client, "/api/stats/dashboard")
    assert stats == {
        "clients": 1,
        "projects": 2,
        "environments": 4,
        "servers": 4,
        "serversByStatus": {"running": 4},
        "monitors": {"total": 0},
        "health": 100.0,
    }
    assert n > 0
    n, again = await statements_for(app, client, "/api/stats/dashboard")
    assert n == 0 and again == stats  # served from cache: no SQL at all

    servers = await (await client.get("/api/servers")).json()
    await client.patch(f"/api/servers/{servers['items'][0]['id']}", json={"status": "stopped"})
    _, after = await statements_for(app, client, "/api/stats/dashboard")
    assert after["serversByStatus"] == {"running": 3, "stopped": 1}
    c = await post(client, "/api/clients", {"name": "Another"})
    assert (await (await client.get("/api/stats/dashboard")).json())["clients"] == 2
    await client.delete(f"/api/clients/{c['id']}")
    assert (await (await client.get("/api/stats/dashboard")).json())["clients"] == 1


async def test_writes_publish_inventory_events(make_client: Any) -> None:
    client = await make_client()
    app = client.app
    sub = app[BUS].subscribe(["inventory"])
    c = await post(client, "/api/clients", {"name": "Evented"})
    await client.patch(f"/api/clients/{c['id']}", json={"status": "inactive"})
    await client.delete(f"/api/clients/{c['id']}")
    await client.post("/api/clients", json={"name": ""})  # rejected: no event
    events = [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]
    assert [(e.topic, e.data.entity, e.data.id, e.data.op) for e in events] == [
        ("inventory", "client", c["id"], "created"),
        ("inventory", "client", c["id"], "updated"),
        ("inventory", "client", c["id"], "deleted"),
    ]


async def test_cors_preflight_and_headers(make_client: Any) -> None:
    client = await make_client(server={"cors_origins": ["https://ui.example"]})
    pre = await client.options(
        "/api/clients",
        headers={
            "Origin": "https://ui.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
    )
    assert pre.status == 204
    assert pre.headers["Access-Control-Allow-Origin"] == "https://ui.example"
    assert set(pre.headers["Access-Control-Allow-Methods"].split(", ")) == {"GET", "POST"}
    assert "Content-Type" in pre.headers["Access-Control-Allow-Headers"]

    denied = await client.options(
        "/api/clients",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert denied.status == 403 and "Access-Control-Allow-Origin" not in denied.headers

    resp = await client.get("/api/clients", headers={"Origin": "https://ui.example"})
    assert resp.headers["Access-Control-Allow-Origin"] == "https://ui.example"
    assert "ETag" in resp.headers["Access-Control-Expose-Headers"]
    err = await client.post("/api/clients", json={}, headers={"Origin": "https://ui.example"})
    assert err.status == 422 and err.headers["Access-Control-Allow-Origin"] == "https://ui.example"
    other = await client.get("/api/clients", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


async def test_health_and_readiness(client: Client) -> None:
    assert await (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status == 200
    body = await ready.json()
    assert body["status"] == "ready" and body["checks"]["migrations"].startswith("ok")
