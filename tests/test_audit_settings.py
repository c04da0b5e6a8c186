"""Audit log, settings and security headers, through the real app."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from conftest import Client, post, token_for

from dragonopsd.appkeys import AUDIT
from dragonopsd.store.audit import AuditEntry

# Every test here that starts the app runs on SQLite and on PostgreSQL (conftest.py).
pytestmark = pytest.mark.backends

MakeClient = Callable[..., Awaitable[Client]]


async def audit(client: Client, query: str = "") -> list[dict[str, Any]]:
    resp = await client.get(f"/api/audit?{query}")
    assert resp.status == 200, await resp.text()
    items: list[dict[str, Any]] = (await resp.json())["items"]
    return items


async def test_every_write_is_audited_with_outcome(client: Client) -> None:
    c = await post(client, "/api/clients", {"name": "Audited"}, 201)
    await client.patch(
        f"/api/clients/{c['id']}", json={"name": ""}, headers={"X-Request-ID": "req-bad-patch"}
    )
    viewer = await token_for(client.app, "viewer")
    await client.delete(f"/api/clients/{c['id']}", headers={"Authorization": f"Bearer {viewer}"})
    await client.get("/api/clients")  # reads are not audited

    entries = await audit(client, "entity=clients")
    assert [(e["method"], e["status"], e["outcome"]) for e in entries] == [
        ("DELETE", 403, "denied"),
        ("PATCH", 422, "failed"),
        ("POST", 201, "ok"),
    ]
    denied, failed, created = entries
    assert created["entityId"] == c["id"] and created["route"] == "/api/clients"
    assert created["actorKind"] == "token" and created["role"] == "admin"
    assert failed["requestId"] == "req-bad-patch" and failed["route"] == "/api/clients/{id}"
    assert denied["role"] == "viewer" and denied["actor"] != created["actor"]
    assert created["at"] <= failed["at"] <= denied["at"]


async def test_audit_filters_and_pages(client: Client) -> None:
    for i in range(7):
        await post(client, "/api/clients", {"name": f"c{i}"}, 201)
    await client.post("/api/clients", json={"name": ""})
    failed = await audit(client, "outcome=failed")
    assert len(failed) == 1 and failed[0]["status"] == 422
    first = await (await client.get("/api/audit?limit=3&method=post")).json()
    assert len(first["items"]) == 3 and first["nextCursor"]
    ids = [e["id"] for e in first["items"]]
    rest = await (
        await client.get(f"/api/audit?limit=10&method=post&cursor={first['nextCursor']}")
    ).json()
    assert all(e["id"] < min(ids) for e in rest["items"]) and len(rest["items"]) == 5
    for bad in ("limit=0", "cursor=abc", "outcome=maybe", "colour=red"):
        assert (await client.get(f"/api/audit?{bad}")).status == 422


async def test_audit_retention_prunes_at_start(make_client: MakeClient) -> None:
    client = await make_client(audit={"retention_days": 30})
    old = AuditEntry(
        at="2001-01-01T00:00:00.000Z",
        actor="token:x",
        actor_kind="token",
        role="admin",
        method="POST",
        route="/api/clients",
        path="/api/clients",
        entity="clients",
        entity_id=None,
        request_id="r",
        status=201,
        outcome="ok",
    )
    await client.app[AUDIT].append(old)
    await post(client, "/api/clients", {"name": "recent"}, 201)
    assert len(await audit(client)) == 2
    again = await make_client(audit={"retention_days": 30})  # same database, fresh start
    entries = await audit(again)
    assert [e["at"][:4] for e in entries] != ["2001"] and all(
        e["at"][:4] != "2001" for e in entries
    )


async def test_settings_crud_roles_and_validation(client: Client) -> None:
    created = await client.put("/api/settings/ui.theme", json={"value": {"mode": "dark"}})
    assert created.status == 201
    replaced = await client.put("/api/settings/ui.theme", json={"value": {"mode": "light"}})
    assert replaced.status == 200
    got = await (await client.get("/api/settings/ui.theme")).json()
    assert got["key"] == "ui.theme" and got["value"] == {"mode": "light"} and got["id"]
    listed = await (await client.get("/api/settings")).json()
    assert [s["key"] for s in listed["items"]] == ["ui.theme"]

    viewer = {"Authorization": f"Bearer {await token_for(client.app, 'viewer')}"}
    assert (await client.get("/api/settings/ui.theme", headers=viewer)).status == 200
    assert (
        await client.put("/api/settings/ui.theme", json={"value": 1}, headers=viewer)
    ).status == 403

    for key in ("UPPER", "9lives", "a" * 129, "spaces%20here"):
        resp = await client.put(f"/api/settings/{key}", json={"value": 1})
        assert resp.status == 422, key
        problem = await resp.json(content_type="application/problem+json")
        assert problem["errors"][0]["field"] == "key"
    big = await client.put("/api/settings/big", json={"value": "x" * 70_000})
    assert big.status == 422
    assert (await client.put("/api/settings/x", json={"val": 1})).status == 422
    assert (await client.delete("/api/settings/ui.theme")).status == 204
    assert (await client.get("/api/settings/ui.theme")).status == 404
    assert (await client.delete("/api/settings/ui.theme")).status == 404


async def test_security_headers_on_every_response(client: Client) -> None:
    for path in ("/api/clients", "/healthz", "/nowhere", "/api/docs", "/api/openapi.json"):
        resp = await client.get(path)
        assert resp.headers["X-Content-Type-Options"] == "nosniff", path
        assert resp.headers["Referrer-Policy"] == "no-referrer", path
        assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"], path
        # Each once, and no library versions announced to scanners.
        assert len(resp.headers.getall("Content-Security-Policy")) == 1, path
        assert resp.headers.getall("Server") == ["dragonopsd"], path
    html = await client.get("/api/docs")
    csp = html.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
