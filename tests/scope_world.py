"""Two estates for the scope tests of the operations routes: Acme (in the tokens' scope) and
Globex (out), each with a client, project, environment, server and an HTTP monitor on it (its
target answers 503), plus an Acme-scoped viewer and operator and an unscoped viewer.
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

MakeClient = Callable[..., Awaitable[Client]]
NOWHERE = "00000000-0000-4000-8000-00000000dead"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def branch(client: Client, name: str, url: str) -> dict[str, Any]:
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
        resp = await self.client.request(method, path, json=body, headers=auth(token))
        return resp.status, await body_of(resp)


async def body_of(resp: ClientResponse) -> Any:
    if resp.status == 204:
        return None
    return await resp.json(content_type=None)


async def down(_: web.Request) -> web.Response:
    return web.Response(status=503, text="down")


@pytest.fixture(name="world")
async def world_fixture(make_client: MakeClient, tmp_path: Path, aiohttp_server: Any) -> World:
    # A key file in the state directory before the app starts, so secrets can be stored.
    key = tmp_path / "secrets.key"
    write_key_file(key, KeyRing.new(str(key)), overwrite=False)
    client = await make_client()
    app = web.Application()
    app.router.add_get("/health", down)
    server = await aiohttp_server(app)
    url = str(server.make_url("/health"))
    w = World(client, await branch(client, "Acme", url), await branch(client, "Globex", url))
    scope = {"clients": [w.ids("acme", "client")]}
    for role in ("viewer", "operator"):
        made = await post(
            client, "/api/tokens", {"name": f"acme-{role}", "role": role, "scope": scope}
        )
        setattr(w, role, made["token"])
    w.plain_viewer = await token_for(client.app, "viewer")
    return w


def same_as_missing(got: tuple[int, Any], missing: tuple[int, Any], real: str, fake: str) -> None:
    """An answer about something out of reach reads as the one about an id that names
    nothing: same status, title, detail and fields, with only the id differing."""
    (status, body), (want_status, want) = got, missing
    assert status == want_status, body
    assert body["title"] == want["title"]
    assert body["detail"].replace(real, fake) == want["detail"], (body, want)
    assert str(body.get("errors")).replace(real, fake) == str(want.get("errors"))


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def all_pages(w: World, token: str, path: str) -> list[str]:
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
