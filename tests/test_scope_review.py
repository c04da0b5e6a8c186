"""Review of access scoped to clients (issue 18): cases the scope tests did not walk.

Two clients, Acme (in the scope) and Globex (out of it), as in test_scope_routes.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from conftest import Client, post
from test_monitor_credentials import recorder
from ws_helpers import subscribe

from dragonopsd.appkeys import AUTHENTICATOR, INVENTORY_INDEX
from dragonopsd.assistant import context
from dragonopsd.secrets.crypto import KeyRing, write_key_file

pytestmark = pytest.mark.backends

MakeClient = Callable[..., Awaitable[Client]]
MONITOR_URL = "http://127.0.0.1:9/"
JWT_SECRET = "a-test-jwt-secret-of-32-bytes-or-more"


async def _branch(client: Client, name: str) -> dict[str, Any]:
    c = await post(client, "/api/clients", {"name": name})
    p = await post(client, "/api/projects", {"clientId": c["id"], "name": f"{name} portal"})
    e = await post(client, "/api/environments", {"projectId": p["id"], "name": f"{name} prod"})
    s = await post(client, "/api/servers", {"environmentId": e["id"], "name": f"{name}-web-1"})
    return {"client": c, "project": p, "environment": e, "server": s}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _scoped(client: Client, role: str, scope: dict[str, Any]) -> dict[str, str]:
    made = await post(client, "/api/tokens", {"name": f"s-{role}", "role": role, "scope": scope})
    return _bearer(made["token"])


async def test_a_profile_scope_changed_on_another_core_applies_there(
    make_client: MakeClient,
) -> None:
    """Two cores on one database: an admin narrows a profile's scope on one; the other must
    stop showing the client taken away (as it notices a revoked token within a second)."""
    one = await make_client(auth={"jwt_secret": JWT_SECRET})
    two = await make_client(auth={"jwt_secret": JWT_SECRET})  # same database: another core
    acme = await _branch(one, "Acme")
    globex = await _branch(one, "Globex")
    claims = {"sub": "user-ada", "email": "ada@example.com", "aud": "authenticated"}
    ada = _bearer(
        pyjwt.encode(claims | {"exp": int(time.time()) + 3600}, JWT_SECRET, algorithm="HS256")
    )
    both = {"scope": {"clients": [acme["client"]["id"], globex["client"]["id"]]}}
    await one.get("/api/clients", headers=ada)  # the profile exists
    assert (await one.patch("/api/profiles/user-ada", json=both)).status == 200
    await two.app[INVENTORY_INDEX].refresh()  # as Redis would have told it
    globex_path = f"/api/clients/{globex['client']['id']}"
    assert (await two.get(globex_path, headers=ada)).status == 200  # core two has read it
    narrowed = {"scope": {"clients": [acme["client"]["id"]]}}
    assert (await one.patch("/api/profiles/user-ada", json=narrowed)).status == 200
    assert (await one.get(globex_path, headers=ada)).status == 404
    status = 200
    for _ in range(40):  # a few seconds: tokens changed elsewhere are noticed within one
        status = (await two.get(globex_path, headers=ada)).status
        if status == 404:
            break
        await asyncio.sleep(0.1)
    assert status == 404, "core two still shows Globex to a profile scoped to Acme only"


async def test_a_scoped_operator_reads_what_it_just_created(client: Client) -> None:
    acme = await _branch(client, "Acme")
    op = await _scoped(client, "operator", {"clients": [acme["client"]["id"]]})
    body = {"clientId": acme["client"]["id"], "name": "Acme new"}
    resp = await client.post("/api/projects", json=body, headers=op)
    assert resp.status == 201, await resp.text()
    project = await resp.json()
    got = await client.get(f"/api/projects/{project['id']}", headers=op)
    assert got.status == 200, await got.text()
    resp = await client.post(
        "/api/environments", json={"projectId": project["id"], "name": "e"}, headers=op
    )
    assert resp.status == 201, await resp.text()


async def test_a_monitor_on_an_acme_server_does_not_show_a_globex_environment(
    client: Client,
) -> None:
    """An admin may attach a monitor to a server of one client and an environment of
    another; a caller scoped to the first must not learn the other's environment id."""
    acme = await _branch(client, "Acme")
    globex = await _branch(client, "Globex")
    m = await post(
        client,
        "/api/monitors",
        {
            "name": "mixed",
            "kind": "http",
            "url": MONITOR_URL,
            "serverId": acme["server"]["id"],
            "environmentId": globex["environment"]["id"],
        },
    )
    viewer = await _scoped(client, "viewer", {"clients": [acme["client"]["id"]]})
    resp = await client.get(f"/api/monitors/{m['id']}", headers=viewer)
    text = await resp.text()
    assert globex["environment"]["id"] not in text, (resp.status, text)
    listed = await (await client.get("/api/monitors", headers=viewer)).json()
    assert m["id"] not in {i["id"] for i in listed["items"]}
    assert (await client.get(f"/api/monitors/{m['id']}")).status == 200  # unscoped: as before


async def test_a_scope_whose_client_was_deleted_sees_nothing_and_nothing_fails(
    client: Client,
) -> None:
    acme = await _branch(client, "Acme")
    globex = await _branch(client, "Globex")
    viewer = await _scoped(client, "viewer", {"clients": [acme["client"]["id"]]})
    portal = await _scoped(client, "operator", {"projects": [acme["project"]["id"]]})
    gone = await client.delete(f"/api/clients/{acme['client']['id']}?cascade=true")
    assert gone.status == 204, await gone.text()
    paths = [
        "/api/clients",
        "/api/projects",
        "/api/environments",
        "/api/servers",
        "/api/monitors",
        "/api/monitoring",
        "/api/stats/dashboard",
        "/api/incidents",
        "/api/maintenance",
        "/api/alert-rules",
        "/api/actions",
    ]
    for who in (viewer, portal):
        for path in paths:
            resp = await client.get(path, headers=who)
            text = await resp.text()
            assert resp.status == 200, (path, resp.status, text)
            assert globex["client"]["id"] not in text and "Globex" not in text, (path, text)
        resp = await client.get(f"/api/clients/{acme['client']['id']}", headers=who)
        assert resp.status == 404
    for path in ("/api/tokens", "/api/profiles"):
        resp = await client.get(path)
        assert resp.status == 200, (path, await resp.text())


async def test_a_scoped_operator_cannot_send_another_clients_secret_to_its_own_host(
    tmp_path: Path, make_client: MakeClient, aiohttp_server: Any
) -> None:
    """Secrets are global configuration (a scoped caller gets 403 on /api/secrets), yet a
    monitor of its own server may name any of them: the probe then sends Globex's credential
    wherever the Acme operator points it."""
    key = tmp_path / "secrets.key"
    write_key_file(key, KeyRing.new(str(key)), overwrite=False)
    client = await make_client()
    acme = await _branch(client, "Acme")
    value = "globex-db-password-5521"
    await post(client, "/api/secrets", {"key": "GLOBEX_DB", "value": value})
    op = await _scoped(client, "operator", {"clients": [acme["client"]["id"]]})
    assert (await client.get("/api/secrets", headers=op)).status == 403
    where, seen = await recorder(aiohttp_server)
    body = {
        "name": "innocent",
        "kind": "http",
        "enabled": False,
        "url": f"http://{where}/check",
        "headers": {"X-Leak": "${secret:GLOBEX_DB}"},
        "serverId": acme["server"]["id"],
    }
    resp = await client.post("/api/monitors", json=body, headers=op)
    if resp.status == 201:
        made = await resp.json()
        await client.post(f"/api/monitors/{made['id']}/check", headers=op)
    assert resp.status == 403, await resp.text()
    assert (await resp.json())["errors"][0]["field"] == "$.headers.X-Leak"
    # One an admin made with the secret: moving its URL to the operator's host is refused too.
    admins = await post(client, "/api/monitors", body | {"url": "http://h.test/"})
    resp = await client.patch(
        f"/api/monitors/{admins['id']}", json={"url": f"http://{where}/check"}, headers=op
    )
    assert resp.status == 403, await resp.text()
    stored = await (await client.get(f"/api/monitors/{admins['id']}")).json()
    assert stored["url"] == "http://h.test/"
    await client.post(f"/api/monitors/{admins['id']}/check", headers=op)
    assert all(value not in str(h) for h in seen), "Globex's secret reached the operator's host"
    # Without a secret the scoped operator works as before.
    plain = {k: v for k, v in body.items() if k != "headers"}
    assert (await client.post("/api/monitors", json=plain, headers=op)).status == 201


async def test_the_cluster_page_counts_only_the_monitors_in_reach(client: Client) -> None:
    """/api/cluster is open to scoped viewers; its per-core monitor counts must not reveal
    how many monitors other clients have."""
    acme = await _branch(client, "Acme")
    globex = await _branch(client, "Globex")
    for side, n in ((acme, 1), (globex, 3)):
        for i in range(n):
            body = {"name": f"m{i}", "kind": "http", "url": MONITOR_URL, "enabled": False}
            await post(client, "/api/monitors", body | {"serverId": side["server"]["id"]})
    viewer = await _scoped(client, "viewer", {"clients": [acme["client"]["id"]]})
    for who, total in ((viewer, 1), ({}, 4)):
        resp = await client.get("/api/cluster", headers=who)
        assert resp.status == 200, await resp.text()
        page = await resp.json()
        assert sum(m["ownedMonitors"] for m in page["items"]) == total, page


async def test_the_assistant_finds_a_scoped_callers_project_by_name_among_many(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The prompt is matched against the first SCAN_LIMIT projects by name; for a scoped
    caller those must be its own, not the first of every client's (then filtered away)."""
    monkeypatch.setattr(context, "SCAN_LIMIT", 3)  # instead of creating 200 projects
    globex = await _branch(client, "Globex")
    for name in ("Aardvark", "Abacus", "Acorn"):  # sorted before Acme's "Portal"
        await post(client, "/api/projects", {"clientId": globex["client"]["id"], "name": name})
    c = await post(client, "/api/clients", {"name": "Acme"})
    p = await post(client, "/api/projects", {"clientId": c["id"], "name": "Portal"})
    body = {"projectId": p["id"], "name": "Production", "url": "https://portal.acme.example"}
    await post(client, "/api/environments", body)
    op = await _scoped(client, "operator", {"clients": [c["id"]]})
    resp = await client.post(
        "/api/ai/generate", json={"prompt": "nginx config for portal production"}, headers=op
    )
    assert resp.status == 200, await resp.text()
    assert "portal.acme.example" in (await resp.json())["code"]


async def test_an_admin_profile_cannot_be_given_a_scope_without_naming_its_role(
    client: Client,
) -> None:
    acme = await _branch(client, "Acme")
    store = client.app[AUTHENTICATOR].store
    await store.ensure_profile("boss", "boss@example.com", "admin")
    body = {"scope": {"clients": [acme["client"]["id"]]}}
    resp = await client.patch("/api/profiles/boss", json=body)
    assert resp.status == 422, await resp.text()
    assert "$.scope" in await resp.text()
    stored = next(p for p in await store.profiles() if p.id == "boss")
    assert stored.scope is None  # nothing changed: demoting it later does not scope it


async def test_a_project_scoped_socket_does_not_get_an_incident_on_the_whole_client(
    client: Client,
) -> None:
    """Over HTTP a caller scoped to one project of a client does not see an incident on the
    whole client (it concerns the client's other projects too); its websocket snapshot must
    not either (manual incidents' live events are not sent to scoped sockets at all)."""
    acme = await _branch(client, "Acme")
    portal = await post(
        client,
        "/api/tokens",
        {
            "name": "portal",
            "role": "viewer",
            "scope": {"projects": [acme["project"]["id"]]},
        },
    )
    whole = {"kind": "client", "id": acme["client"]["id"]}
    first = await post(
        client,
        "/api/incidents",
        {"title": "Acme-wide outage", "targets": [whole], "severity": "major"},
    )
    resp = await client.get(f"/api/incidents/{first['id']}", headers=_bearer(portal["token"]))
    assert resp.status == 404  # HTTP: out of reach
    ws = await client.ws_connect("/api/ws", headers=_bearer(portal["token"]))
    frames = await subscribe(ws, "incidents")
    assert all(first["id"] not in json.dumps(f) for f in frames), frames
    mine = {"kind": "project", "id": acme["project"]["id"]}
    last = await post(
        client, "/api/incidents", {"title": "portal down", "targets": [mine], "severity": "major"}
    )
    await ws.close()
    ws = await client.ws_connect("/api/ws", headers=_bearer(portal["token"]))
    frames = await subscribe(ws, "incidents")  # its own project's incident, and only that
    assert any(last["id"] in json.dumps(f) for f in frames), frames
    assert all(first["id"] not in json.dumps(f) for f in frames), frames
    await ws.close()
