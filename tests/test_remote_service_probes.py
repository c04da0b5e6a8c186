"""Service monitors checked by a `dragonopsd probe` worker in another location, through a real
Redis and real processes: the worker runs postgres, mysql, redis, mqtt and amqp checks against the
machine's servers, websocket and grpc checks against servers this test runs on loopback, and a
monitor whose password lives in the secrets store is refused there (workers have no secrets
store) with a message that says so."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
import redis
from aiohttp import WSMsgType, web
from daemon import Daemon
from grpc_health.v1 import health, health_pb2, health_pb2_grpc  # type: ignore[import-untyped]
from probe_workers import ProbeWorker, api, wait_for, write_config
from redis_helpers import SHARED_URL


def state(d: Daemon, monitor_id: str) -> Any:
    return next(
        s for s in api(d, "GET", "/api/monitoring")["items"] if s["monitorId"] == monitor_id
    )


def test_a_worker_runs_the_service_kinds(tmp_path: Path, redis_prefix: str) -> None:
    cfg = write_config(tmp_path / "core.toml", SHARED_URL, redis_prefix)
    r = redis.Redis.from_url(SHARED_URL)
    base = {"interval": 2, "timeout": 1.5, "locations": ["eu"], "host": "127.0.0.1"}
    kinds: list[dict[str, Any]] = [
        {"kind": "postgres", "username": "postgres", "conditions": ["[RESULT] == 1"]},
        {"kind": "mysql", "username": "root", "conditions": ["[ROWS] == 1"]},
        {"kind": "redis", "conditions": ["[INFO].role == master"]},
        {"kind": "mqtt"},
        {"kind": "amqp"},
    ]
    with Daemon(tmp_path / "state", "--config", str(cfg)) as d:
        d.wait_listening()
        worker = ProbeWorker(tmp_path, SHARED_URL, redis_prefix, "eu", "eu-1")
        try:
            wait_for(lambda: r.zcard(f"{redis_prefix}:workers:eu"), 10, "worker heartbeat")
            time.sleep(1.2)
            made = [
                api(d, "POST", "/api/monitors", {**base, "name": k["kind"], **k}) for k in kinds
            ]
            secret = api(
                d,
                "POST",
                "/api/monitors",
                {**base, "name": "secret", "kind": "redis", "passwordSecret": "REDIS_PASS"},
            )
            for m in made:
                try:
                    wait_for(lambda m=m: state(d, m["id"])["status"] == "up", 20, m["name"])
                except AssertionError:
                    raise AssertionError(f"{state(d, m['id'])}\n{worker.log}") from None
            down = wait_for(
                lambda: (s := state(d, secret["id"]))["status"] == "down" and s, 20, "secret"
            )
            assert "resolved by dragonopsd serve only" in down["message"], down
        finally:
            worker.stop()
            r.close()


async def _echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for message in ws:
        if message.type is WSMsgType.TEXT:
            await ws.send_str(f"re-{message.data}")
    return ws


def reached(d: Daemon, monitor_id: str, want: str) -> bool:
    s = state(d, monitor_id)
    return bool(s["status"] == want and s["locations"] == {"eu": want})


@contextmanager
def websocket_server() -> Iterator[int]:
    """An aiohttp echo server on its own loop in a thread (the test itself is synchronous, and
    the worker is another process, so the server must keep answering while the test waits)."""
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_get("/echo", _echo)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port: int = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        assert not thread.is_alive()


@contextmanager
def grpc_health_server() -> Iterator[int]:
    """A grpcio health service saying shop SERVING and stock NOT_SERVING."""
    pool = ThreadPoolExecutor(max_workers=2)
    server = grpc.server(pool)
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    servicer.set("shop", health_pb2.HealthCheckResponse.SERVING)
    servicer.set("stock", health_pb2.HealthCheckResponse.NOT_SERVING)
    port: int = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield port
    finally:
        server.stop(None).wait(10)
        pool.shutdown(wait=True)


def test_a_worker_runs_websocket_and_grpc(tmp_path: Path, redis_prefix: str) -> None:
    cfg = write_config(tmp_path / "core.toml", SHARED_URL, redis_prefix)
    r = redis.Redis.from_url(SHARED_URL)
    base = {"interval": 2, "timeout": 1.5, "locations": ["eu"]}
    with (
        websocket_server() as ws_port,
        grpc_health_server() as grpc_port,
        Daemon(tmp_path / "state", "--config", str(cfg)) as d,
    ):
        d.wait_listening()
        worker = ProbeWorker(tmp_path, SHARED_URL, redis_prefix, "eu", "eu-1")
        try:
            wait_for(lambda: r.zcard(f"{redis_prefix}:workers:eu"), 10, "worker heartbeat")
            time.sleep(1.2)
            grpc_at = {**base, "kind": "grpc", "host": "127.0.0.1", "port": grpc_port}
            websocket = {**base, "name": "websocket", "kind": "websocket",
                         "url": f"ws://127.0.0.1:{ws_port}/echo", "body": "ping",
                         "conditions": ["[CONNECTED] == true", "[BODY] == re-ping"]}  # fmt: skip
            serving = ["[GRPC_STATUS] == SERVING"]
            shop = {**grpc_at, "name": "shop", "service": "shop", "conditions": serving}
            stock = {**grpc_at, "name": "stock", "service": "stock", "conditions": serving}
            specs = [(websocket, "up"), (shop, "up"), (stock, "down")]
            made = [(api(d, "POST", "/api/monitors", spec), want) for spec, want in specs]
            for m, want in made:
                # The verdict is the eu worker's: the core has no probe of its own here.
                try:
                    wait_for(partial(reached, d, m["id"], want), 20, m["name"])
                except AssertionError:
                    raise AssertionError(f"{state(d, m['id'])}\n{worker.log}") from None
            stopped = state(d, made[2][0]["id"])
            assert "GRPC_STATUS" in stopped["message"], stopped
        finally:
            worker.stop()
            r.close()
