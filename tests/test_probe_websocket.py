"""websocket monitors against an aiohttp websocket server started by the test on loopback."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import WSMsgType, web
from service_probes import closed_port, probe, probe_env, silent_server

from dragonopsd.monitoring.conditions import evaluate_all, parse_all

TOKEN = "ws-t0ken-5521"


async def echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for message in ws:
        if message.type is WSMsgType.TEXT:
            await ws.send_str(f'{{"echo": "{message.data}", "ok": true}}')
    return ws


async def greeter(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.send_bytes(b"hello")
    await ws.close()
    return ws


async def private(request: web.Request) -> web.StreamResponse:
    if request.headers.get("Authorization") != f"Bearer {TOKEN}":
        raise web.HTTPUnauthorized()
    return await echo(request)


async def plain(request: web.Request) -> web.Response:
    return web.Response(text="not a websocket")


@pytest.fixture
async def base(aiohttp_server: Any) -> str:
    app = web.Application()
    app.router.add_get("/echo", echo)
    app.router.add_get("/greet", greeter)
    app.router.add_get("/private", private)
    app.router.add_get("/plain", plain)
    server = await aiohttp_server(app)
    return f"ws://127.0.0.1:{server.port}"


async def test_handshake_message_and_body_conditions(base: str) -> None:
    conditions = ["[CONNECTED] == true", "[BODY].echo == ping", "[BODY].ok == true"]
    async with probe_env() as env:
        bare, _ = await probe(env, "websocket", url=f"{base}/echo")
        echoed, _ = await probe(
            env, "websocket", url=f"{base}/echo", body="ping", conditions=conditions
        )
        greeted, _ = await probe(
            env, "websocket", url=f"{base}/greet", conditions=["[BODY] == hello"]
        )
    assert bare.error is None and "BODY" not in bare.context
    assert bare.context["IP"] == "127.0.0.1"
    assert echoed.error is None, echoed.error
    assert all(v.success for v in evaluate_all(parse_all(conditions), echoed.context))
    assert not evaluate_all(parse_all(["[BODY].echo == pong"]), echoed.context)[0].success
    assert greeted.context["BODY"] == b"hello"


async def test_token_from_the_secrets_store_and_a_wrong_one(base: str) -> None:
    header = {"Authorization": "Bearer ${secret:WS}"}
    async with probe_env({"WS": TOKEN}) as env:
        good, _ = await probe(env, "websocket", url=f"{base}/private", headers=header, body="x")
    async with probe_env({"WS": "wrong-" + TOKEN}) as env:
        bad, _ = await probe(env, "websocket", url=f"{base}/private", headers=header)
    assert good.error is None and good.context["BODY"] == b'{"echo": "x", "ok": true}'
    assert bad.error == "authentication failed"
    assert TOKEN not in repr(bad)


async def test_not_a_websocket_is_down(base: str) -> None:
    async with probe_env() as env:
        result, _ = await probe(env, "websocket", url=f"{base}/plain")
    assert result.error == "websocket handshake failed: HTTP 200"


async def test_port_closed_is_down() -> None:
    async with probe_env() as env:
        result, _ = await probe(env, "websocket", url=f"ws://127.0.0.1:{closed_port()}/")
    assert result.error == "connection refused"


async def test_timeout_against_a_listener_that_never_answers() -> None:
    async with silent_server() as silent, probe_env() as env:
        result, wall = await probe(
            env, "websocket", url=f"ws://127.0.0.1:{silent.port}/", timeout=1.0
        )
    assert result.error == "timeout after 1.0s"
    assert wall < 2.5
    assert await silent.all_ended()  # the probe left no connection open behind it


async def test_metadata_address_is_refused() -> None:
    async with probe_env() as env:
        result, _ = await probe(env, "websocket", url="ws://169.254.169.254/")
    assert result.error is not None and "169.254.169.254" in result.error
