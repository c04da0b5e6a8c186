"""Every API route takes exactly the query parameters the OpenAPI document declares: one it
does not declare gets 422 naming it, and every declared one is understood."""

from __future__ import annotations

import re

import pytest
from conftest import Client

from dragonopsd.api import routes

pytestmark = pytest.mark.backends

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


async def test_a_parameter_given_twice_is_refused_naming_it(client: Client) -> None:
    """The handlers that read one value per parameter refuse a repeated one (422 naming it)
    rather than silently taking the first; the front only checks names, not counts."""
    paths = [
        "/api/actions",
        "/api/clients",
        f"/api/clients/{UUID}",
        "/api/secrets",
        "/api/maintenance",
        f"/api/maintenance/{UUID}/occurrences",
    ]
    for path in paths:
        if path.endswith("/occurrences"):
            resp = await client.get(f"{path}?count=1&count=2")
        elif path.startswith("/api/clients/"):
            resp = await client.get(f"{path}?include=&include=")
        else:
            resp = await client.get(f"{path}?limit=1&limit=2")
        body = await resp.json()
        assert resp.status == 422, (path, resp.status, body)
        assert body["errors"][0]["message"] == "given more than once", (path, body)
    resp = await client.delete(f"/api/clients/{UUID}?cascade=true&cascade=false")
    assert resp.status == 422 and (await resp.json())["errors"][0]["field"] == "cascade"


async def test_an_id_that_is_no_uuid_is_404_naming_the_entity(client: Client) -> None:
    """Every {id} route that takes a UUID answers text that is none with the 404 an unknown id
    gets, in that route's own words."""
    cases = [
        ("GET", "/api/actions/x", "action"),
        ("POST", "/api/servers/x/actions", "server"),
        ("GET", "/api/servers/x", "server"),
        ("PATCH", "/api/projects/x", "project"),
        ("DELETE", "/api/environments/x", "environment"),
        ("GET", "/api/clients/x", "client"),
        ("GET", "/api/monitors/x", "monitor"),
        ("GET", "/api/monitors/x/heartbeats", "monitor"),
        ("GET", "/api/monitors/x/history", "monitor"),
        ("GET", "/api/monitors/x/uptime", "monitor"),
        ("GET", "/api/maintenance/x", "maintenance window"),
        ("GET", "/api/maintenance/x/occurrences", "maintenance window"),
        ("GET", "/api/notifications/x", "notification channel"),
        ("GET", "/api/servers/x/metrics", "server"),
        ("POST", "/api/servers/x/samples", "server"),
        ("GET", "/api/secrets/x", "secret"),
        ("GET", "/api/secrets/x/value", "secret"),
        ("DELETE", "/api/tokens/x", "token"),
    ]
    for method, path, word in cases:
        resp = await client.request(method, path, json={})
        body = await resp.json()
        assert resp.status == 404, (method, path, resp.status, body)
        assert body["detail"] == f"{word} x does not exist", (method, path, body)
