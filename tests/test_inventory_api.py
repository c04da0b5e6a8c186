"""The inventory REST API as a user drives it: CRUD, derived counts, ETags, cascade, include."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg
import pytest
from conftest import Client, post

from dragonopsd.store import migrations

# Every test here that starts the app runs on SQLite and on PostgreSQL (conftest.py).
pytestmark = pytest.mark.backends


async def test_create_get_list_the_whole_hierarchy(client: Client, tree: Any) -> None:
    t = await tree()
    c, p, e, s = t["client"], t["project"], t["environment"], t["server"]
    assert c["status"] == "active" and c["projectCount"] == 0  # counted at creation time
    assert p["clientId"] == c["id"] and p["technology"] == ["React"]
    assert e["projectId"] == p["id"] and e["url"] == "https://acme.example"
    assert s["environmentId"] == e["id"] and s["privateIp"] == "10.0.0.5" and s["type"] == "web"
    for entity in (c, p, e, s):
        assert entity["createdAt"].endswith("Z") and entity["updatedAt"] == entity["createdAt"]

    resp = await client.get(f"/api/clients/{c['id']}")
    assert resp.status == 200
    got = await resp.json()
    assert got["projectCount"] == 1 and got["name"] == "Acme"
    assert "projects" not in got  # children only when asked with include=
    resp = await client.get(f"/api/projects/{p['id']}")
    assert (await resp.json())["environmentCount"] == 1
    resp = await client.get(f"/api/environments/{e['id']}")
    assert (await resp.json())["serverCount"] == 1

    for plural, entity in (("clients", c), ("projects", p), ("environments", e), ("servers", s)):
        resp = await client.get(f"/api/{plural}")
        page = await resp.json()
        assert [i["id"] for i in page["items"]] == [entity["id"]]
        assert page["nextCursor"] is None


async def test_post_returns_location_and_etag(client: Client) -> None:
    resp = await client.post("/api/clients", json={"name": "Globex", "tags": ["retail"]})
    assert resp.status == 201
    body = await resp.json()
    assert resp.headers["Location"] == f"/api/clients/{body['id']}"
    get = await client.get(resp.headers["Location"])
    assert get.headers["ETag"] == resp.headers["ETag"]


async def test_patch_changes_only_the_fields_sent(client: Client, tree: Any) -> None:
    s = (await tree())["server"]
    resp = await client.patch(f"/api/servers/{s['id']}", json={"status": "stopped"})
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "stopped"
    assert body["name"] == "web-1" and body["privateIp"] == "10.0.0.5" and body["type"] == "web"
    assert body["updatedAt"] > s["updatedAt"]
    # null clears a nullable field; absent leaves it alone
    resp = await client.patch(f"/api/servers/{s['id']}", json={"privateIp": None})
    assert (await resp.json())["privateIp"] is None
    assert (await (await client.get(f"/api/servers/{s['id']}")).json())["status"] == "stopped"


async def test_patch_can_move_a_child_to_another_parent(client: Client, tree: Any) -> None:
    t = await tree()
    other = await post(client, "/api/clients", {"name": "Initech"})
    resp = await client.patch(f"/api/projects/{t['project']['id']}", json={"clientId": other["id"]})
    assert resp.status == 200
    old = await (await client.get(f"/api/clients/{t['client']['id']}")).json()
    new = await (await client.get(f"/api/clients/{other['id']}")).json()
    assert (old["projectCount"], new["projectCount"]) == (0, 1)


async def test_etag_if_match_and_if_none_match(client: Client, tree: Any) -> None:
    c = (await tree())["client"]
    url = f"/api/clients/{c['id']}"
    resp = await client.get(url)
    etag = resp.headers["ETag"]
    assert (await client.get(url, headers={"If-None-Match": etag})).status == 304

    ok = await client.patch(url, json={"name": "Acme Corp"}, headers={"If-Match": etag})
    assert ok.status == 200
    new_etag = ok.headers["ETag"]
    assert new_etag != etag

    stale = await client.patch(url, json={"name": "Lost update"}, headers={"If-Match": etag})
    assert stale.status == 412
    assert stale.content_type == "application/problem+json"
    assert (await (await client.get(url)).json())["name"] == "Acme Corp"

    stale_delete = await client.delete(url + "?cascade=true", headers={"If-Match": etag})
    assert stale_delete.status == 412
    assert (await client.get(url)).status == 200
    assert (
        await client.delete(url + "?cascade=true", headers={"If-Match": new_etag})
    ).status == 204


async def test_concurrent_if_match_patches_from_two_cores_one_wins(
    make_client: Callable[..., Awaitable[Client]], storage_url: str
) -> None:
    """Two cores (two apps on one database) PATCH one client with the same If-Match at once:
    exactly one 200, one 412, and the winner's name stays. On PostgreSQL the test holds the
    row's lock until both writes wait on it, so both have read the row before either commits:
    without a row lock taken before the If-Match read, both would pass it (a lost update)."""
    one = await make_client()
    two = await make_client()
    made = await post(one, "/api/clients", {"name": "Acme"})
    url = f"/api/clients/{made['id']}"
    etag = (await one.get(url)).headers["ETag"]

    async def patch(client: Client, name: str) -> int:
        resp = await client.patch(url, json={"name": name}, headers={"If-Match": etag})
        return resp.status

    if not storage_url:  # SQLite: writes are one at a time across processes (BEGIN IMMEDIATE)
        statuses = await asyncio.gather(patch(one, "First"), patch(two, "Second"))
    else:
        holder = await asyncpg.connect(storage_url)
        try:
            async with holder.transaction():
                await holder.execute("SELECT 1 FROM clients WHERE id = $1 FOR UPDATE", made["id"])
                racing = asyncio.gather(patch(one, "First"), patch(two, "Second"))
                waiting = (
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
                while await holder.fetchval(waiting) < 2:
                    await asyncio.sleep(0.01)
            statuses = await racing
        finally:
            await holder.close()
    assert sorted(statuses) == [200, 412], statuses
    winner = "First" if statuses[0] == 200 else "Second"
    assert (await (await two.get(url)).json())["name"] == winner


async def test_delete_parent_with_children_is_refused_unless_cascade(
    client: Client, tree: Any
) -> None:
    t = await tree()
    url = f"/api/projects/{t['project']['id']}"
    resp = await client.delete(url)
    assert resp.status == 409
    problem = await resp.json(content_type="application/problem+json")
    assert "1 environments" in problem["detail"]
    assert (await client.get(url)).status == 200

    resp = await client.delete(url + "?cascade=true")
    assert resp.status == 204
    for kind in ("projects", "environments", "servers"):
        entity = t[kind[:-1]]
        assert (await client.get(f"/api/{kind}/{entity['id']}")).status == 404
    assert (await (await client.get(f"/api/clients/{t['client']['id']}")).json())[
        "projectCount"
    ] == 0


async def test_delete_leaf_and_unknown_ids(client: Client, tree: Any) -> None:
    s = (await tree())["server"]
    assert (await client.delete(f"/api/servers/{s['id']}")).status == 204
    assert (await client.delete(f"/api/servers/{s['id']}")).status == 404
    missing = await client.get("/api/servers/00000000-0000-4000-8000-000000000000")
    assert missing.status == 404
    assert (await client.get("/api/servers/not-a-uuid")).status == 404


async def test_include_embeds_children(client: Client, tree: Any) -> None:
    t = await tree()
    await post(client, "/api/environments", {"projectId": t["project"]["id"], "name": "Staging"})
    url = f"/api/projects/{t['project']['id']}?include=environments,environments.servers"
    body = await (await client.get(url)).json()
    assert [e["name"] for e in body["environments"]] == ["Production", "Staging"]
    prod, staging = body["environments"]
    assert [s["name"] for s in prod["servers"]] == ["web-1"] and staging["servers"] == []

    clients = await (await client.get("/api/clients?include=projects")).json()
    assert clients["items"][0]["projects"][0]["id"] == t["project"]["id"]
    assert "environments" not in clients["items"][0]["projects"][0]

    deep = await (await client.get("/api/clients?include=projects.environments.servers")).json()
    server = deep["items"][0]["projects"][0]["environments"][0]["servers"][0]
    assert server["id"] == t["server"]["id"]


async def test_list_pages_with_cursor_filters_and_sort(client: Client) -> None:
    parent = await post(client, "/api/clients", {"name": "Big"})
    other = await post(client, "/api/clients", {"name": "Small"})
    names = [f"proj-{i:03d}" for i in range(23)]
    for n in names:
        await post(
            client,
            "/api/projects",
            {
                "clientId": parent["id"],
                "name": n,
                "status": "paused" if n.endswith("7") else "active",
            },
        )
    await post(client, "/api/projects", {"clientId": other["id"], "name": "elsewhere"})

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        q = f"/api/projects?clientId={parent['id']}&limit=10" + (
            f"&cursor={cursor}" if cursor else ""
        )
        page = await (await client.get(q)).json()
        seen += [p["name"] for p in page["items"]]
        cursor = page["nextCursor"]
        pages += 1
        if cursor is None:
            break
    assert seen == names and pages == 3

    desc = await (
        await client.get(f"/api/projects?clientId={parent['id']}&sort=-name&limit=5")
    ).json()
    assert [p["name"] for p in desc["items"]] == sorted(names, reverse=True)[:5]
    nxt = await (
        await client.get(
            f"/api/projects?clientId={parent['id']}&sort=-name&limit=5&cursor={desc['nextCursor']}"
        )
    ).json()
    assert [p["name"] for p in nxt["items"]] == sorted(names, reverse=True)[5:10]

    paused = await (await client.get("/api/projects?status=paused")).json()
    assert [p["name"] for p in paused["items"]] == ["proj-007", "proj-017"]
    found = await (await client.get("/api/projects?q=PROJ-01")).json()
    assert len(found["items"]) == 10
    literal = await (await client.get("/api/projects?q=%25")).json()  # % is not a wildcard
    assert literal["items"] == []
    newest = await (await client.get("/api/projects?sort=-createdAt&limit=1")).json()
    assert newest["items"][0]["name"] == "elsewhere"


async def test_list_of_many_children_is_bounded_by_limit(client: Client) -> None:
    c = await post(client, "/api/clients", {"name": "Many"})
    for i in range(3):
        await post(client, "/api/projects", {"clientId": c["id"], "name": f"p{i}"})
    page = await (await client.get("/api/projects?limit=2")).json()
    assert len(page["items"]) == 2 and page["nextCursor"]


FORGED_NAMES = ["api\r\nBcc: evil@example.com", "tab\there", "nul\x00", "sep\u2028line", "c1\x85"]


@pytest.mark.parametrize("name", FORGED_NAMES)
async def test_names_with_control_characters_are_refused_everywhere(
    client: Client, tree: Any, name: str
) -> None:
    t = await tree()
    creates = {
        "/api/clients": {},
        "/api/projects": {"clientId": t["client"]["id"]},
        "/api/environments": {"projectId": t["project"]["id"]},
        "/api/servers": {"environmentId": t["environment"]["id"]},
        "/api/monitors": {"kind": "push"},
        "/api/notifications": {
            "kind": "webhook",
            "config": {"url": "http://127.0.0.1:9/hook"},
        },
        "/api/maintenance": {
            "kind": "one-off",
            "startsAt": "2020-01-01T00:00:00Z",
            "endsAt": "2100-01-01T00:00:00Z",
            "scope": {"all": True},
        },
        "/api/tokens": {"role": "viewer"},
    }
    for path, rest in creates.items():
        resp = await client.post(path, json={"name": name, **rest})
        body = await resp.json(content_type=None)
        assert resp.status == 422, (path, body)
        assert body["errors"][0]["field"] == "$.name", (path, body)
        assert "control characters" in body["errors"][0]["message"], (path, body)
    for kind in ("client", "project", "environment", "server"):
        path = f"/api/{kind}s/{t[kind]['id']}"
        resp = await client.patch(path, json={"name": name})
        assert resp.status == 422 and (await resp.json())["errors"][0]["field"] == "$.name"
        assert (await (await client.get(path)).json())["name"] == t[kind]["name"]
    for path in ("/api/monitors", "/api/notifications", "/api/maintenance"):
        assert (await (await client.get(path)).json())["items"] == [], path


async def test_names_stored_before_are_folded_on_upgrade(
    tmp_path: Path, make_client: Callable[..., Awaitable[Client]]
) -> None:
    shipped = migrations.available()
    conn = await aiosqlite.connect(tmp_path / "dragonops.db", isolation_level=None)
    try:
        await migrations.migrate(conn, shipped[:8])  # the schema before names were checked
        spec = {"name": "nightly\r\nBcc: evil@example.com", "kind": "push"}
        await conn.execute(
            "INSERT INTO monitors (id, name, kind, enabled, spec, created_at, updated_at) "
            "VALUES ('00000000-0000-4000-8000-000000000001', ?, 'push', 1, ?, 't', 't')",
            (spec["name"], json.dumps(spec)),
        )
        await conn.execute(
            "INSERT INTO notification_channels (id, name, kind, events, scope, config, "
            "created_at, updated_at) VALUES ('c1', ?, 'webhook', '[\"down\"]', "
            "'{\"all\": true}', '{\"url\": \"http://127.0.0.1:9/\"}', 't', 't')",
            ("ops\u2028team",),
        )
    finally:
        await conn.close()
    # The upgrade of an existing SQLite file, on either run: PostgreSQL databases never held
    # names from before the check (their 0010 has nothing to rewrite).
    client = await make_client(storage={"url": ""})
    monitors = (await (await client.get("/api/monitors")).json())["items"]
    assert [m["name"] for m in monitors] == ["nightly  Bcc: evil@example.com"]
    channels = (await (await client.get("/api/notifications")).json())["items"]
    assert [c["name"] for c in channels] == ["ops team"]
