"""TLS for the service kinds: a Mosquitto, a Redis, a gRPC and a websocket server with a
certificate for a test name (trustme CA). The probe dials the guard-judged IP and still checks
the certificate against the name in the monitor; verifyTls = false skips the check."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc.aio  # type: ignore[import-untyped]
import pytest
import trustme
from aiohttp import web
from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped]
from grpc_health.v1.health import aio as health_aio  # type: ignore[import-untyped]
from service_probes import probe, probe_env
from test_probes import FakeDNS

NAME = "service.test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def until_listening(port: int) -> None:
    for _ in range(100):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def files(ca: trustme.CA, tmp_path: Path) -> dict[str, Path]:
    cert = ca.issue_cert(NAME)
    paths = {"ca": tmp_path / "ca.pem", "cert": tmp_path / "cert.pem", "key": tmp_path / "key.pem"}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    cert.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    cert.private_key_pem.write_to_path(str(paths["key"]))
    return paths


@pytest.fixture
def trust(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


@pytest.fixture
async def process_server(tmp_path: Path) -> AsyncIterator[list[asyncio.subprocess.Process]]:
    procs: list[asyncio.subprocess.Process] = []
    yield procs
    for proc in procs:
        proc.terminate()
        await proc.wait()


async def test_mqtt_over_tls(
    files: dict[str, Path], trust: ssl.SSLContext, tmp_path: Path, process_server: list
) -> None:
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\ncafile {files['ca']}\n"
        f"certfile {files['cert']}\nkeyfile {files['key']}\nuser root\npersistence false\n"
        "log_dest none\n"
    )
    process_server.append(await asyncio.create_subprocess_exec("mosquitto", "-c", str(conf)))
    await until_listening(port)
    dns = FakeDNS({NAME: ["127.0.0.1"]})
    async with probe_env(ssl_context=trust, resolver=dns) as env:
        named, _ = await probe(env, "mqtt", host=NAME, port=port, tls=True)
        by_ip, _ = await probe(env, "mqtt", host="127.0.0.1", port=port, tls=True)
        unchecked, _ = await probe(
            env, "mqtt", host="127.0.0.1", port=port, tls=True, verify_tls=False
        )
    assert named.error is None, named.error
    assert named.context["IP"] == "127.0.0.1"
    assert by_ip.error is not None and "certificate verify failed" in by_ip.error, by_ip.error
    assert unchecked.error is None, unchecked.error


async def test_redis_over_tls(
    files: dict[str, Path], trust: ssl.SSLContext, tmp_path: Path, process_server: list
) -> None:
    port = free_port()
    argv = ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
            "--tls-cert-file", str(files["cert"]), "--tls-key-file", str(files["key"]),
            "--tls-ca-cert-file", str(files["ca"]), "--tls-auth-clients", "no",
            "--save", "", "--appendonly", "no", "--dir", str(tmp_path)]  # fmt: skip
    process_server.append(
        await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.DEVNULL)
    )
    await until_listening(port)
    dns = FakeDNS({NAME: ["127.0.0.1"]})
    async with probe_env(ssl_context=trust, resolver=dns) as env:
        named, _ = await probe(env, "redis", host=NAME, port=port, tls=True)
        by_ip, _ = await probe(env, "redis", host="127.0.0.1", port=port, tls=True)
        plain, _ = await probe(env, "redis", host=NAME, port=port, timeout=1.0)
    assert named.error is None, named.error
    assert by_ip.error is not None and "certificate verify failed" in by_ip.error, by_ip.error
    assert plain.error is not None  # a plaintext PING to a TLS port gets no PONG


async def test_grpc_over_tls(ca: trustme.CA, trust: ssl.SSLContext) -> None:
    cert = ca.issue_cert(NAME)
    creds = grpc.ssl_server_credentials(
        [(cert.private_key_pem.bytes(), b"".join(p.bytes() for p in cert.cert_chain_pems))]
    )
    server = grpc.aio.server()
    servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    port = server.add_secure_port("127.0.0.1:0", creds)
    await server.start()
    try:
        dns = FakeDNS({NAME: ["127.0.0.1"]})
        async with probe_env(ssl_context=trust, resolver=dns) as env:
            named, _ = await probe(env, "grpc", host=NAME, port=port, tls=True)
            plain, _ = await probe(env, "grpc", host=NAME, port=port, timeout=1.0)
    finally:
        await server.stop(None)
    assert named.error is None, named.error
    assert named.context["GRPC_STATUS"] == "SERVING" and named.context["IP"] == "127.0.0.1"
    assert plain.error is not None


async def test_websocket_over_tls(
    ca: trustme.CA, trust: ssl.SSLContext, aiohttp_server: Any
) -> None:
    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            await ws.send_str(f"echo {message.data}")
        return ws

    app = web.Application()
    app.router.add_get("/ws", echo)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(NAME).configure_cert(server_ctx)
    server = await aiohttp_server(app, ssl=server_ctx)
    dns = FakeDNS({NAME: ["127.0.0.1"]})
    async with probe_env(ssl_context=trust, resolver=dns) as env:
        named, _ = await probe(env, "websocket", url=f"wss://{NAME}:{server.port}/ws", body="hi")
        by_ip, _ = await probe(env, "websocket", url=f"wss://127.0.0.1:{server.port}/ws")
        unchecked, _ = await probe(
            env, "websocket", url=f"wss://127.0.0.1:{server.port}/ws", verify_tls=False
        )
    assert named.error is None and named.context["BODY"] == b"echo hi", named
    assert by_ip.error is not None and "certificate verify failed" in by_ip.error, by_ip.error
    assert unchecked.error is None, unchecked.error
