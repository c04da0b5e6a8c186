"""Every API route takes exactly the query parameters the OpenAPI document declares: one it
does not declare gets 422 naming it, and every declared one is understood."""

from __future__ import annotations

import re

from conftest import Client

from dragonopsd.api import routes

UUID = "00000000-0000-4000-8000-000000000000"


def _path(template: str) -> str:
    return re.sub(r"\{[^}]+\}", UUID, template)


async def test_undeclared_query_parameters_are_refused(client: Client) -> None:
    checked = 0
    for route in routes.table():
        if route.method != "GET" or not route.path.startswith("/api/"):
            continue
        if route.content_type != "application/json":
            continue
        resp = await client.get(_path(route.path), params={"nosuch": "1"})
        assert resp.status == 422, (route.path, resp.status, await resp.text())
        body = await resp.json()
        assert body["errors"][0]["field"] == "nosuch", (route.path, body)
        checked += 1
    assert checked > 30


async def test_declared_query_parameters_are_understood(client: Client) -> None:
    """A declared parameter never earns "unknown query parameter" from the handler."""
    for route in routes.table():
        if route.method != "GET" or not route.path.startswith("/api/"):
            continue
        for param in route.params:
            if param.where != "query":
                continue
            resp = await client.get(_path(route.path), params={param.name: "1"})
            text = await resp.text()
            assert "unknown query parameter" not in text, (route.path, param.name, text)
