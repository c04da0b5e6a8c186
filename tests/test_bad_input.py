"""Every kind of bad request gets a problem+json naming what is wrong, and changes nothing."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiohttp import web
from conftest import Client, post

from dragonopsd.appkeys import DATABASE

pytestmark = pytest.mark.backends

PROBLEM = "application/problem+json"


async def problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status == status, await resp.text()
    assert resp.content_type == PROBLEM
    body: dict[str, Any] = await resp.json(content_type=PROBLEM)
    assert body["status"] == status and body["title"] and body["detail"] and body["type"]
    assert body["requestId"] == resp.headers["X-Request-ID"]
    return body


async def count(client: Client, plural: str) -> int:
    return len((await (await client.get(f"/api/{plural}?limit=500")).json())["items"])


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"name": ""}, "$.name", "length >= 1"),
        ({"name": "   "}, "$.name", "Must not be blank"),
        ({"name": "x" * 201}, "$.name", "length <= 200"),
        ({"name": 7}, "$.name", "Expected `str`"),
        ({}, "$.name", "missing required field"),
        ({"name": "ok", "colour": "red"}, "$.colour", "unknown field"),
        ({"name": "ok", "status": "sleeping"}, "$.status", "Invalid enum value"),
        ({"name": "ok", "tags": ["a", ""]}, "$.tags[1]", "length >= 1"),
        ({"name": "ok", "tags": "a"}, "$.tags", "Expected `array`"),
    ],
)
async def test_invalid_client_bodies_name_the_field(
    client: Client, body: dict[str, Any], field: str, words: str
) -> None:
    doc = await problem(await client.post("/api/clients", json=body), 422)
    assert doc["errors"][0]["field"] == field
    assert words in doc["errors"][0]["message"]
    assert await count(client, "clients") == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"privateIp": "10.0.0.300"}, "$.privateIp"),
        ({"privateIp": "db.internal"}, "$.privateIp"),
        ({"privateIp": "10.0.0.0/24"}, "$.privateIp"),
        ({"environmentId": "nope"}, "$.environmentId"),
        ({"environmentId": "00000000-0000-4000-8000-000000000000"}, "$.environmentId"),
    ],
)
async def test_invalid_server_fields(
    client: Client, tree: Any, body: dict[str, Any], field: str
) -> None:
    t = await tree()
    full = {"environmentId": t["environment"]["id"], "name": "db-1", **body}
    doc = await problem(await client.post("/api/servers", json=full), 422)
    assert doc["errors"][0]["field"] == field
    assert await count(client, "servers") == 1


async def test_ipv6_private_ip_is_accepted(client: Client, tree: Any) -> None:
    t = await tree()
    s = await post(
        client,
        "/api/servers",
        {"environmentId": t["environment"]["id"], "name": "v6", "privateIp": "fd00::5"},
    )
    assert s["privateIp"] == "fd00::5"


async def test_dangling_parent_ids_are_422_naming_the_field(client: Client, tree: Any) -> None:
    t = await tree()
    ghost = "00000000-0000-4000-8000-000000000000"
    for plural, field in (("projects", "clientId"), ("environments", "projectId")):
        doc = await problem(
            await client.post(f"/api/{plural}", json={field: ghost, "name": "x"}), 422
        )
        assert doc["errors"][0]["field"] == f"$.{field}"
        assert "does not exist" in doc["errors"][0]["message"]
    doc = await problem(
        await client.patch(f"/api/servers/{t['server']['id']}", json={"environmentId": ghost}), 422
    )
    assert doc["errors"][0]["field"] == "$.environmentId"
    server = await (await client.get(f"/api/servers/{t['server']['id']}")).json()
    assert server == t["server"]


async def test_patch_rejects_null_name_and_unknown_fields(client: Client, tree: Any) -> None:
    c = (await tree())["client"]
    url = f"/api/clients/{c['id']}"
    await problem(await client.patch(url, json={"name": None}), 422)
    doc = await problem(await client.patch(url, json={"projectCount": 5}), 422)
    assert doc["errors"][0]["field"] == "$.projectCount"
    assert (await (await client.get(url)).json())["name"] == "Acme"


async def test_malformed_json_is_400(client: Client) -> None:
    for raw in (b'{"name": ', b"not json", b""):
        resp = await client.post(
            "/api/clients", data=raw, headers={"Content-Type": "application/json"}
        )
        await problem(resp, 400)
    assert await count(client, "clients") == 0


async def test_wrong_content_type_is_415(client: Client) -> None:
    resp = await client.post(
        "/api/clients",
        data=b"name=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    await problem(resp, 415)
    resp = await client.post(
        "/api/clients", data=b'{"name":"x"}', headers={"Content-Type": "text/plain"}
    )
    await problem(resp, 415)
    assert await count(client, "clients") == 0


async def test_oversized_body_is_413(make_client: Any) -> None:
    client = await make_client(server={"max_body_bytes": 2048})
    big = b'{"name": "x", "description": "' + b"y" * 4000 + b'"}'
    await problem(
        await client.post("/api/clients", data=big, headers={"Content-Type": "application/json"}),
        413,
    )

    async def chunks() -> Any:  # no Content-Length: the limit applies while reading
        for _ in range(8):
            yield b" " * 1024

    await problem(
        await client.post(
            "/api/clients", data=chunks(), headers={"Content-Type": "application/json"}
        ),
        413,
    )
    assert await count(client, "clients") == 0


async def test_unknown_route_and_wrong_method(client: Client, tree: Any) -> None:
    await problem(await client.get("/api/nothing-here"), 404)
    doc = await problem(await client.put("/api/clients", json={}), 405)
    assert "PUT" in doc["detail"]
    resp = await client.put("/api/clients", json={})
    assert set(resp.headers["Allow"].split(",")) >= {"GET", "POST"}
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert resp.headers["X-Content-Type-Options"] == "nosniff" and "X-Request-ID" in resp.headers
    # A path template with an id, a method none of its routes takes, and OPTIONS that is no
    # CORS preflight: 405 naming what the path does accept; a preflight for nothing: 404.
    resp = await client.post("/api/clients/00000000-0000-4000-8000-000000000000", json={})
    assert resp.status == 405
    assert set(resp.headers["Allow"].split(",")) == {"GET", "HEAD", "PATCH", "DELETE"}
    await problem(await client.options("/api/clients"), 405)
    preflight = {"Origin": "https://ui.example", "Access-Control-Request-Method": "GET"}
    await problem(await client.options("/api/nothing-here", headers=preflight), 403)


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("sort=colour", "sort"),
        ("status=sleeping", "status"),
        ("include=servers", "include"),
        ("cursor=%%%", "cursor"),
        ("cursor=WyJuYW1lIiwiYSIsImIiXQ", "cursor"),  # a name-sorted cursor used with -name below
        ("clientId=42", "clientId"),
        ("colour=red", "colour"),
        ("limit=1&limit=2", "limit"),
    ],
)
async def test_bad_query_parameters_are_422(client: Client, query: str, param: str) -> None:
    if param == "cursor" and query.startswith("cursor=W"):
        query += "&sort=-name"
    doc = await problem(await client.get(f"/api/projects?{query}"), 422)
    assert doc["errors"][0]["field"] == param


async def test_request_id_is_echoed_or_minted(client: Client) -> None:
    resp = await client.get("/api/clients", headers={"X-Request-ID": "trace-42"})
    assert resp.headers["X-Request-ID"] == "trace-42"
    resp = await client.get("/api/clients")
    assert len(resp.headers["X-Request-ID"]) == 32
    again = await client.get("/api/clients")
    assert again.headers["X-Request-ID"] != resp.headers["X-Request-ID"]
    resp = await client.get("/api/clients", headers={"X-Request-ID": "bad id\twith spaces"})
    assert resp.headers["X-Request-ID"] != "bad id\twith spaces"
    resp = await client.get("/nowhere", headers={"X-Request-ID": "trace-43"})
    assert resp.headers["X-Request-ID"] == "trace-43"


async def test_internal_error_is_500_without_stack_trace(
    make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client()
    app: web.Application = client.app
    await app[DATABASE].close()  # the store vanishing under a request is a bug, not a 4xx
    with caplog.at_level(logging.ERROR):
        resp = await client.get("/api/clients", headers={"X-Request-ID": "boom-1"})
    doc = await problem(resp, 500)
    text = str(doc)
    assert "Traceback" not in text and "RuntimeError" not in text and "database" not in text
    assert "boom-1" in caplog.text  # the log has the request id to find the trace


async def test_daemon_still_serves_after_bad_requests(client: Client) -> None:
    for raw in (b"\xff\xfe", b"[" * 10000, b'{"name": "\\ud800"}'):
        resp = await client.post(
            "/api/clients", data=raw, headers={"Content-Type": "application/json"}
        )
        assert 400 <= resp.status < 500
    assert (await client.get("/healthz")).status == 200
