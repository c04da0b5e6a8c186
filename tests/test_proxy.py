"""[server] trusted_proxies: the client behind the shipped nginx config is the real one.

The real nginx (config/nginx-dragonops.conf on test ports) in front of a real daemon. Clients
connect from other loopback addresses (127.0.0.2, 127.0.0.3) than nginx's own 127.0.0.1, so
the daemon can tell them apart only through the forwarded headers of its trusted proxy.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import Client
from daemon import Daemon
from multidict import CIMultiDict
from test_prometheus import NGINX, free_port, nginx_prefix

from dragonopsd.config import ConfigError, from_mapping

MakeClient = Callable[..., Awaitable[Client]]
BAD = {"Authorization": "Bearer dro_not-a-real-token"}


def session(source: str, **kwargs: Any) -> aiohttp.ClientSession:
    """A client whose connections leave from the loopback address source."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(source, 0)), **kwargs)


@asynccontextmanager
async def nginx(tmp_path: Path, upstream: int) -> AsyncIterator[tuple[str, ssl.SSLContext]]:
    """The shipped site config on a TLS test port in front of upstream; yields its base URL
    and a TLS context that trusts its certificate."""
    port = free_port()
    conf = nginx_prefix(tmp_path, listen=port, upstream=upstream)
    argv = [NGINX, "-p", str(tmp_path), "-c", str(conf), "-g", "daemon off;"]
    proc = subprocess.Popen(argv, stderr=subprocess.DEVNULL)
    base = f"https://localhost:{port}"
    tls = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    try:
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 10
            while True:
                try:
                    async with http.get(f"{base}/healthz", ssl=tls) as resp:
                        assert resp.status == 200
                    break
                except aiohttp.ClientConnectionError:
                    assert proc.poll() is None and time.monotonic() < deadline
                    await asyncio.sleep(0.05)
        yield base, tls
    finally:
        proc.terminate()
        proc.wait(10)


async def status(http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> int:
    async with http.request(method, url, **kwargs) as resp:
        return resp.status


async def test_behind_nginx_each_client_is_limited_and_audited_as_itself(tmp_path: Path) -> None:
    config = tmp_path / "dragonops.toml"
    config.write_text('[server]\ntrusted_proxies = ["127.0.0.1/32"]\n[auth]\nfailure_limit = 3\n')
    with Daemon(tmp_path / "state", "--config", str(config)) as daemon:
        daemon.wait_listening()
        admin = {"Authorization": f"Bearer {daemon.token}"}
        async with (
            nginx(tmp_path, daemon.port) as (base, tls),
            session("127.0.0.2", headers={"X-Forwarded-For": "198.51.100.7"}) as a,
            session("127.0.0.3") as b,
        ):
            api = f"{base}/api/clients"
            # A fails until limited; the address it claims is to the left of nginx's hop.
            for _ in range(3):
                assert await status(a, "GET", api, headers=BAD, ssl=tls) == 401
            assert await status(a, "GET", api, headers=BAD, ssl=tls) == 429
            # B, through the same nginx (the same TCP peer 127.0.0.1), is not A.
            assert await status(b, "GET", api, headers=BAD, ssl=tls) == 401
            assert await status(b, "POST", api, json={"name": "b"}, headers=admin, ssl=tls) == 201
            # The dashboard's websocket: https origin, seen as https through the proxy; a page
            # on plain http of the same host may not borrow the credential.
            good = {**admin, "Origin": base}
            async with b.ws_connect(f"wss{base[5:]}/api/ws", ssl=tls, headers=good) as ws:
                await ws.send_json({"op": "ping"})
                assert (await ws.receive_json(timeout=5))["type"] == "ack"
            downgraded = {**admin, "Origin": f"http{base[5:]}"}
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await b.ws_connect(f"wss{base[5:]}/api/ws", ssl=tls, headers=downgraded)
            assert refused.value.status == 403

        # Straight to the daemon from 127.0.0.2, a peer it does not trust: the forwarded
        # header is ignored, so this is A again (limited), not the 203.0.113.9 it claims.
        async with session("127.0.0.2") as direct:
            claims = {**BAD, "X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.9"}
            assert await status(direct, "GET", f"{daemon.url}/api/clients", headers=claims) == 429
            async with direct.get(f"{daemon.url}/api/audit", headers=admin) as resp:
                entries = (await resp.json())["items"]
            audit = f"{daemon.url}/api/audit?client=127.0.0.1"
            async with direct.get(audit, headers=admin) as resp:
                assert (await resp.json())["items"] == []  # nothing names the proxy
        log = daemon.log
    (created,) = entries
    assert created["client"] == "127.0.0.3" and created["actorKind"] == "token"
    assert "client 127.0.0.2 failed to authenticate 3 times" in log
    assert "127.0.0.1 failed" not in log and "198.51.100.7" not in log


async def test_forwarded_headers_count_only_from_trusted_peers(make_client: MakeClient) -> None:
    """The hop walk: rightmost untrusted X-Forwarded-For hop, else X-Real-IP, else the peer."""
    client = await make_client(server={"trusted_proxies": ["127.0.0.1/32", "10.0.0.0/8"]})
    two_headers = CIMultiDict([("X-Forwarded-For", "203.0.113.6"), ("X-Forwarded-For", "10.0.0.1")])
    cases: list[tuple[Any, str]] = [
        ({"X-Forwarded-For": "198.51.100.1, 203.0.113.5, 10.1.2.3"}, "203.0.113.5"),
        (two_headers, "203.0.113.6"),
        ({"X-Forwarded-For": "[2001:db8::5]:4711"}, "2001:db8::5"),
        ({"X-Real-IP": "192.0.2.44"}, "192.0.2.44"),
        ({"X-Forwarded-For": "not-an-address"}, "127.0.0.1"),
        ({}, "127.0.0.1"),
    ]
    for headers, expected in cases:
        resp = await client.post("/api/clients", json={"name": expected}, headers=headers)
        assert resp.status == 201
        entries = (await (await client.get("/api/audit?limit=1")).json())["items"]
        assert entries[0]["client"] == expected, headers
    untrusted = await make_client()  # no trusted proxies: nothing forwarded is believed
    resp = await untrusted.post(
        "/api/clients", json={"name": "x"}, headers={"X-Forwarded-For": "203.0.113.5"}
    )
    assert resp.status == 201
    entries = (await (await untrusted.get("/api/audit?limit=1")).json())["items"]
    assert entries[0]["client"] == "127.0.0.1"


def test_a_bad_trusted_proxy_is_a_config_error_naming_the_key() -> None:
    for bad in (["10.0.0.1/8"], ["nonsense"], ["300.1.1.1/32"]):
        with pytest.raises(ConfigError) as err:
            from_mapping({"server": {"trusted_proxies": bad}}, env={})
        assert "server.trusted_proxies" in str(err.value) and bad[0] in str(err.value)
    cfg = from_mapping({"server": {"trusted_proxies": ["127.0.0.1/32", "::1/128"]}}, env={})
    assert cfg.server.trusted_proxies == ["127.0.0.1/32", "::1/128"]
