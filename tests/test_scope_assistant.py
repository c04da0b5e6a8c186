"""The assistant under a scope: a scoped caller's context (and so the prompt a model sees and
the file generated) holds only the projects in its reach (issue 18).

Two clients, Acme (in the operator's scope) and Globex (out of it), each with a project whose
name the prompt can spell out. Globex's ids answer as nonexistent ids do (422 naming the
field); a prompt naming Globex's project finds no context; the unscoped operator finds it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from conftest import Client, post
from openai_server import FakeOpenAI

URL = "/api/ai/generate"
Tree = dict[str, Any]

pytestmark = pytest.mark.backends


async def _tree(client: Client, name: str, project: str, host: str) -> Tree:
    c = await post(client, "/api/clients", {"name": name})
    p = await post(
        client, "/api/projects", {"clientId": c["id"], "name": project, "technology": ["React"]}
    )
    e = await post(
        client,
        "/api/environments",
        {"projectId": p["id"], "name": "Production", "url": f"https://{host}"},
    )
    s = await post(client, "/api/servers", {"environmentId": e["id"], "name": f"{host}-web"})
    return {"client": c, "project": p, "environment": e, "server": s}


async def _generate(client: Client, token: str, body: dict[str, Any], status: int = 200) -> Any:
    resp = await client.post(URL, json=body, headers={"Authorization": f"Bearer {token}"})
    data = await resp.json(content_type=None)
    assert resp.status == status, data
    return data


async def _operators(client: Client, acme: Tree) -> tuple[str, str]:
    scoped = await post(
        client,
        "/api/tokens",
        {"name": "acme-ops", "role": "operator", "scope": {"clients": [acme["client"]["id"]]}},
    )
    everyone = await post(client, "/api/tokens", {"name": "ops", "role": "operator"})
    return scoped["token"], everyone["token"]


async def test_a_scoped_caller_gets_context_from_its_reach_only(client: Client) -> None:
    acme = await _tree(client, "Acme", "Portal", "portal.acme.example")
    globex = await _tree(client, "Globex", "Warehouse", "stock.globex.example")
    scoped, everyone = await _operators(client, acme)

    own = await _generate(client, scoped, {"prompt": "nginx", "projectId": acme["project"]["id"]})
    assert "portal" in own["code"] and "From the inventory" in own["explanation"]
    env = await _generate(
        client, scoped, {"prompt": "nginx", "environmentId": acme["environment"]["id"]}
    )
    assert "server_name portal.acme.example;" in env["code"]

    missing = "00000000-0000-4000-8000-000000000000"
    for field, key in (("$.projectId", "project"), ("$.environmentId", "environment")):
        name = field[2:]
        foreign = await _generate(client, scoped, {"prompt": "nginx", name: globex[key]["id"]}, 422)
        absent = await _generate(client, scoped, {"prompt": "nginx", name: missing}, 422)
        assert foreign["errors"][0]["field"] == absent["errors"][0]["field"] == field
        assert foreign["detail"].replace(globex[key]["id"], "ID") == absent["detail"].replace(
            missing, "ID"
        )

    # By name: Globex's project is no context for the scoped caller, and is for the other.
    prompt = {"prompt": "nginx config for warehouse production"}
    theirs = await _generate(client, scoped, prompt)
    assert "globex" not in theirs["code"] + theirs["explanation"]
    assert "From the inventory" not in theirs["explanation"]
    seen = await _generate(client, everyone, prompt)
    assert "stock.globex.example" in seen["code"] + seen["explanation"]


@pytest.fixture
async def fake(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> AsyncIterator[FakeOpenAI]:
    server = FakeOpenAI()
    running = await aiohttp_server(server.app())
    server.url = str(running.make_url("/v1"))
    yield server
    server.release.set()


async def test_the_model_never_sees_another_clients_inventory(
    make_client: Callable[..., Awaitable[Client]], fake: FakeOpenAI
) -> None:
    client = await make_client(
        ai={"provider": "openai", "base_url": fake.url, "model": "m", "api_key": "sk-config"}
    )
    acme = await _tree(client, "Acme", "Portal", "portal.acme.example")
    await _tree(client, "Globex", "Warehouse", "stock.globex.example")
    scoped, everyone = await _operators(client, acme)
    await _generate(client, scoped, {"prompt": "nginx config for warehouse production and portal"})
    await _generate(client, scoped, {"prompt": "nginx config for warehouse production"})
    await _generate(client, everyone, {"prompt": "nginx config for warehouse production"})
    sent = [seen.raw for seen in fake.requests]
    assert len(sent) == 3
    assert "stock.globex.example" not in sent[0] + sent[1]
    assert "stock.globex.example" in sent[2]  # the unscoped caller's context has it
