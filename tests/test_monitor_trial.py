"""POST /api/monitors/test: probe a monitor body once without saving it (the dashboard's
"Test now"), against a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web
from conftest import Client, token_for

pytestmark = pytest.mark.backends


async def _target(aiohttp_server: Any) -> str:
    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "degraded", "version": 7})

    app = web.Application()
    app.router.add_get("/health", health)
    server = await aiohttp_server(app)
    return str(server.make_url("/health"))


def _body(url: str, *conditions: str, **extra: Any) -> dict[str, Any]:
    return {"name": "trial", "kind": "http", "url": url, "conditions": list(conditions), **extra}


async def test_each_condition_comes_back_with_its_verdict_and_nothing_is_saved(
    client: Client, aiohttp_server: Any
) -> None:
    url = await _target(aiohttp_server)
    resp = await client.post(
        "/api/monitors/test", json=_body(url, "[STATUS] == 200", "[BODY].status == ok")
    )
    report = await resp.json()
    assert resp.status == 200, report
    assert report["ok"] is False and report["status"] == "down"
    passed, failed = report["conditions"]
    assert passed == {"condition": "[STATUS] == 200", "success": True, "detail": passed["detail"]}
    assert failed["condition"] == "[BODY].status == ok" and failed["success"] is False
    assert "degraded" in failed["detail"] and report["message"] == failed["detail"]
    assert report["context"]["STATUS"] == 200 and report["latencyMs"] is not None
    good = await client.post("/api/monitors/test", json=_body(url, "[BODY].version == 7"))
    assert (await good.json())["ok"] is True
    # a trial leaves no monitor, no state on the board and no heartbeat behind
    assert (await (await client.get("/api/monitors")).json())["items"] == []
    assert (await (await client.get("/api/monitoring")).json())["items"] == []


async def test_an_operator_may_test_a_viewer_may_not(client: Client, aiohttp_server: Any) -> None:
    url = await _target(aiohttp_server)
    for role, status in (("viewer", 403), ("operator", 200)):
        token = await token_for(client.app, role)
        resp = await client.post(
            "/api/monitors/test",
            json=_body(url, "[STATUS] == 200"),
            headers={"Authorization": f"Bearer {token}"},
        )
        assert resp.status == status, (role, await resp.text())


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_body("http://169.254.169.254/latest/meta-data/"), "$.url"),
        (_body("http://[::ffff:169.254.169.254]/"), "$.url"),
        ({"name": "t", "kind": "tcp", "host": "169.254.169.254", "port": 80}, "$.host"),
        (
            {"name": "t", "kind": "dns", "host": "x.test", "resolver": "169.254.169.254:53"},
            "$.resolver",
        ),
    ],
)
async def test_refused_addresses_are_422_naming_the_field(
    client: Client, body: dict[str, Any], field: str
) -> None:
    resp = await client.post("/api/monitors/test", json=body)
    problem = await resp.json(content_type="application/problem+json")
    assert resp.status == 422, problem
    assert problem["errors"][0]["field"] == field
    assert "refused" in problem["errors"][0]["message"]


async def test_deny_cidrs_applies_to_names_at_connect_time(
    make_client: Any, aiohttp_server: Any
) -> None:
    client = await make_client(probes={"deny_cidrs": ["127.0.0.0/8", "::1/128"]})
    url = (await _target(aiohttp_server)).replace("127.0.0.1", "localhost")
    resp = await client.post("/api/monitors/test", json=_body(url, "[STATUS] == 200"))
    report = await resp.json()
    assert resp.status == 200 and report["ok"] is False, report
    assert "not allowed" in report["error"]
    literal = await client.post(
        "/api/monitors/test", json=_body(url.replace("localhost", "127.0.0.1"))
    )
    assert literal.status == 422


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "t", "kind": "http"}, "$.url"),
        ({"name": "t", "kind": "http", "url": "http://x.test/", "colour": "red"}, "$.colour"),
        (_body("http://x.test/", "[STATUS] == 200", "[STATUS] =="), "$.conditions[1]"),
        (_body("http://x.test/", "[NOPE] == 1"), "$.conditions[0]"),
        ({"name": "t", "kind": "push"}, "$.kind"),
        (_body("http://x.test/", timeout=0), "$.timeout"),
    ],
)
async def test_bad_bodies_are_422_naming_the_field(
    client: Client, body: dict[str, Any], field: str
) -> None:
    resp = await client.post("/api/monitors/test", json=body)
    problem = await resp.json(content_type="application/problem+json")
    assert resp.status == 422, problem
    assert [e["field"] for e in problem["errors"]] == [field], problem


async def test_an_operator_cannot_read_a_secret_back_through_a_trial(
    client: Client, aiohttp_server: Any
) -> None:
    """A target that echoes a header would show a secret's value in the condition's detail:
    only an admin (who may reveal secrets anyway) may test a body that uses one."""

    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"h": request.headers.get("X-T", "")})

    app = web.Application()
    app.router.add_get("/echo", echo)
    url = str((await aiohttp_server(app)).make_url("/echo"))
    value = "tok-s3cr3t-4417"
    made = await client.post("/api/secrets", json={"key": "API_TOKEN", "value": value})
    assert made.status == 201, await made.text()
    body = _body(url, "[BODY].h == nope", headers={"X-T": "${secret:API_TOKEN}"})
    operator = {"Authorization": f"Bearer {await token_for(client.app, 'operator')}"}
    resp = await client.post("/api/monitors/test", json=body, headers=operator)
    text = await resp.text()
    assert resp.status == 403 and value not in text, text
    problem = await resp.json()
    assert [e["field"] for e in problem["errors"]] == ["$.headers.X-T"]
    login = {"name": "t", "kind": "redis", "host": "127.0.0.1", "port": 6379}
    resp = await client.post(
        "/api/monitors/test", json=login | {"passwordSecret": "API_TOKEN"}, headers=operator
    )
    assert resp.status == 403 and (await resp.json())["errors"][0]["field"] == "$.passwordSecret"
    admin = await client.post("/api/monitors/test", json=body)  # the client's token: admin
    text = await admin.text()
    assert admin.status == 200 and value not in text and "(***)" in text, text
    # A saved monitor's checks mask it too: its messages are read by viewers.
    made = await client.post("/api/monitors", json=body | {"interval": 3600})
    monitor = await made.json()
    assert made.status == 201, monitor
    check = await client.post(f"/api/monitors/{monitor['id']}/check")
    text = await check.text()
    assert check.status == 200 and value not in text and "***" in text, text
    board = await (await client.get("/api/monitoring")).text()
    assert value not in board and "***" in board, board


async def test_trials_at_once_are_bounded_per_core(client: Client, aiohttp_server: Any) -> None:
    """Trials run outside the scheduler's concurrency: a fifth at once is told to come back."""
    release = asyncio.Event()

    async def slow(_: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/slow", slow)
    url = str((await aiohttp_server(app)).make_url("/slow"))
    body = _body(url, "[STATUS] == 200")
    running = [asyncio.create_task(client.post("/api/monitors/test", json=body)) for _ in range(4)]
    await asyncio.sleep(0.5)  # the four are waiting on the target
    extra = await client.post("/api/monitors/test", json=body)
    problem = await extra.json()
    assert extra.status == 429 and extra.headers["Retry-After"], problem
    release.set()
    assert [r.status for r in await asyncio.gather(*running)] == [200] * 4
    again = await client.post("/api/monitors/test", json=body)
    assert again.status == 200  # the slots are free again
