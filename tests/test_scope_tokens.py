"""Scoped tokens and profiles: what a scope is stored as and which scopes are refused.

What a scope hides from its holder (lists, reads, writes, websocket events) is tested route by
route in tests/test_scope_routes.py; here: the scope travels from POST /api/tokens and PATCH
/api/profiles to the principal, survives a restart, and a bad one changes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient as Client
from conftest import post

from dragonopsd.appkeys import AUTHENTICATOR, INVENTORY_INDEX
from dragonopsd.auth.tokens import scope_of

pytestmark = pytest.mark.backends
Tree = Callable[[], Awaitable[dict[str, Any]]]


async def test_a_scoped_token_carries_its_clients_and_projects(client: Client, tree: Tree) -> None:
    acme = await tree()
    other = await post(client, "/api/clients", {"name": "Globex"})
    made = await post(
        client,
        "/api/tokens",
        {
            "name": "acme-ops",
            "role": "operator",
            "scope": {"clients": [other["id"]], "projects": [acme["project"]["id"]]},
        },
    )
    assert made["meta"]["scope"] == {"clients": [other["id"]], "projects": [acme["project"]["id"]]}
    listed = await (await client.get("/api/tokens")).json()
    mine = next(t for t in listed["items"] if t["id"] == made["meta"]["id"])
    assert mine["scope"] == made["meta"]["scope"]

    principal = await client.app[AUTHENTICATOR].authenticate(f"Bearer {made['token']}")
    assert principal.scope is not None
    assert principal.scope.clients == {other["id"]}
    reach = await client.app[INVENTORY_INDEX].reach(principal)
    assert reach.client(acme["client"]["id"])  # named, to place its project
    assert reach.server(acme["server"]["id"])
    assert reach.environment(acme["environment"]["id"])
    assert reach.client(other["id"])
    assert not reach.everything

    # A client created later under no scope is outside it; one under the scoped client's
    # project is inside, as soon as the write is answered.
    third = await post(client, "/api/clients", {"name": "Initech"})
    env = await post(
        client,
        "/api/environments",
        {"projectId": acme["project"]["id"], "name": "Staging", "url": "https://s.acme.example"},
    )
    reach = await client.app[INVENTORY_INDEX].reach(principal)
    assert not reach.client(third["id"])
    assert reach.environment(env["id"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"role": "admin", "scope": {"clients": []}}, "$.scope"),
        ({"role": "viewer", "scope": {}}, "$.scope"),
        ({"role": "viewer", "scope": {"clients": ["not-a-uuid"]}}, "$.scope.clients[0]"),
        (
            {"role": "viewer", "scope": {"projects": ["00000000-0000-4000-8000-000000000000"]}},
            "$.scope.projects[0]",
        ),
        ({"role": "viewer", "scope": {"clients": [], "servers": []}}, "$.scope.servers"),
    ],
)
async def test_a_bad_scope_is_refused_and_mints_nothing(
    client: Client, body: dict[str, Any], field: str
) -> None:
    before = await (await client.get("/api/tokens")).json()
    resp = await client.post("/api/tokens", json={"name": "x", **body})
    problem = await resp.json(content_type=None)
    assert resp.status in (400, 422), problem
    assert resp.content_type == "application/problem+json"
    assert field in str(problem), problem
    assert await (await client.get("/api/tokens")).json() == before


async def test_a_profile_scope_is_set_cleared_and_refused_for_admins(
    client: Client, tree: Tree
) -> None:
    acme = await tree()
    store = client.app[AUTHENTICATOR].store
    await store.ensure_profile("user-1", "ada@example.com", "viewer")
    resp = await client.patch(
        "/api/profiles/user-1", json={"scope": {"clients": [acme["client"]["id"]]}}
    )
    profile = await resp.json()
    assert resp.status == 200, profile
    assert profile["scope"] == {"clients": [acme["client"]["id"]], "projects": []}
    stored = next(p for p in await store.profiles() if p.id == "user-1")
    assert scope_of(stored.scope) is not None

    resp = await client.patch(
        "/api/profiles/user-1", json={"role": "admin", "scope": {"clients": [acme["client"]["id"]]}}
    )
    assert resp.status == 422
    assert "$.scope" in await resp.text()

    resp = await client.patch("/api/profiles/user-1", json={"scope": None})
    assert (await resp.json())["scope"] is None


async def test_a_scope_survives_a_restart(
    make_client: Callable[..., Awaitable[Client]], tree: Tree, client: Client
) -> None:
    acme = await tree()
    made = await post(
        client,
        "/api/tokens",
        {"name": "acme", "role": "viewer", "scope": {"clients": [acme["client"]["id"]]}},
    )
    again = await make_client()
    principal = await again.app[AUTHENTICATOR].authenticate(f"Bearer {made['token']}")
    assert principal.scope is not None and principal.scope.clients == {acme["client"]["id"]}
