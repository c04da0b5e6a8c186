"""Probes against real servers on loopback: HTTP(S), TCP, TLS, DNS, ICMP, and the SSRF guard.

The only stand-in is FakeDNS, which replaces name resolution (there is no way to make a real
name point at 169.254.169.254 without editing /etc/hosts); everything it answers is then
connected to for real, through the code under test.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import pytest
import trustme
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from dns_server import dns_server

from dragonopsd.config import ProbesConfig
from dragonopsd.model.monitor import MonitorSpec
from dragonopsd.monitoring.probes import (
    AddressGuard,
    GuardedResolver,
    ProbeEnv,
    ProbeResult,
    make_session,
    run_probe,
)

MiB = 1024 * 1024
Server = Callable[..., Awaitable[Any]]


class FakeDNS(AbstractResolver):
    """Stand-in for DNS: fixed answers per name, gaierror for the rest."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            ResolveResult(
                hostname=host,
                host=ip,
                port=port,
                family=socket.AF_INET6 if ":" in ip else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            )
            for ip in self.answers[host]
        ]

    async def close(self) -> None:
        pass


def spec(kind: str, **fields: Any) -> MonitorSpec:
    """A monitor of kind with a short default timeout."""
    fields["given_timeout"] = fields.pop("timeout", 3.0)
    return MonitorSpec(name="probe-test", kind=kind, **fields)  # type: ignore[arg-type]


async def probe(env: ProbeEnv, kind: str, **fields: Any) -> tuple[ProbeResult, float]:
    """Run one probe; (result, wall seconds)."""
    started = time.perf_counter()
    result = await run_probe(spec(kind, **fields), env)
    return result, time.perf_counter() - started


@pytest.fixture
async def make_env() -> AsyncIterator[Callable[..., ProbeEnv]]:
    """ProbeEnv factory over a real session; [probes] keys as keyword arguments."""
    sessions = []

    def make(
        *,
        ssl_context: ssl.SSLContext | None = None,
        resolver: AbstractResolver | None = None,
        **probes: Any,
    ) -> ProbeEnv:
        cfg = msgspec.convert(probes, ProbesConfig)
        guard = AddressGuard(cfg)
        session = make_session(cfg, guard, ssl_context=ssl_context, resolver=resolver)
        sessions.append(session)
        return ProbeEnv(session, guard, ssl_context=ssl_context, resolver=resolver)

    yield make
    for session in sessions:
        await session.close()


@pytest.fixture
async def env(make_env: Callable[..., ProbeEnv]) -> ProbeEnv:
    """Default settings: metadata refused, no extra denied networks."""
    return make_env()


# --- servers -------------------------------------------------------------------------------


async def echo(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "method": request.method,
            "ua": request.headers.get("User-Agent"),
            "test": request.headers.get("X-Test"),
            "body": await request.text(),
        }
    )


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(5)  # cancelled when the probe hangs up (handler_cancellation)
    return web.Response(text="late")


def http_app() -> web.Application:
    async def status(request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]))

    async def keyword(request: web.Request) -> web.Response:
        return web.Response(text="all systems operational")

    async def json(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "items": [1, 2]})

    async def huge(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * (2 * MiB + 5))

    def redirect(location: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            raise web.HTTPFound(location)

        return handler

    app = web.Application()
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/keyword", keyword)
    app.router.add_get("/json", json)
    app.router.add_get("/redirect", redirect("/json"))
    app.router.add_get("/loop", redirect("/loop"))
    app.router.add_get("/to-metadata", redirect("http://169.254.169.254/latest"))
    app.router.add_get("/huge", huge)
    app.router.add_get("/slow", slow)
    app.router.add_route("*", "/echo", echo)
    return app


@asynccontextmanager
async def raw_server(reply: bytes) -> AsyncIterator[int]:
    """A TCP server that reads one request head, writes reply verbatim and hangs up; its port."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(2):
                await reader.readuntil(b"\r\n\r\n")
            writer.write(reply)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@asynccontextmanager
async def stream_server(ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    """A TCP (or TLS) server that holds each connection until the client leaves; its port."""
    handlers: set[asyncio.Task[None]] = set()
    writers: set[asyncio.StreamWriter] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        writers.add(writer)
        try:
            async with asyncio.timeout(5):
                await reader.read()
        except (OSError, TimeoutError):
            pass
        finally:
            writer.transport.abort()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ssl_context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        # Let every handler end on its own: a handler cancelled at loop teardown makes
        # Python 3.11's stream callback log a spurious CancelledError.
        for writer in writers:
            writer.transport.abort()
        async with asyncio.timeout(2):
            await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_context(
    ca: trustme.CA, *, not_before: dt.datetime | None = None, not_after: dt.datetime
) -> ssl.SSLContext:
    """A server context with a leaf for localhost and 127.0.0.1 signed by ca."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf = ca.issue_cert("localhost", "127.0.0.1", not_before=not_before, not_after=not_after)
    leaf.configure_cert(ctx)
    return ctx


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


def in_days(days: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(days=days)


@pytest.fixture
def two_day_cert(ca: trustme.CA) -> ssl.SSLContext:
    return server_context(ca, not_after=in_days(2))


@pytest.fixture
async def http_url(aiohttp_server: Server) -> str:
    server = await aiohttp_server(http_app())
    return f"http://127.0.0.1:{server.port}"


# --- http ----------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [200, 404, 503])
async def test_http_status(env: ProbeEnv, http_url: str, code: int) -> None:
    result, _ = await probe(env, "http", url=f"{http_url}/status/{code}")
    assert result.error is None
    ctx = result.context
    assert (ctx["STATUS"], ctx["CONNECTED"], ctx["IP"]) == (code, True, "127.0.0.1")
    assert ctx["RESPONSE_TIME"] > 0 and result.latency_ms == ctx["RESPONSE_TIME"]


async def test_http_keyword_and_json_bodies(env: ProbeEnv, http_url: str) -> None:
    text, _ = await probe(env, "http", url=f"{http_url}/keyword")
    assert b"operational" in text.context["BODY"]
    data, _ = await probe(env, "http", url=f"{http_url}/json")
    assert msgspec.json.decode(data.context["BODY"]) == {"status": "ok", "items": [1, 2]}
    assert "BODY_TRUNCATED" not in data.context


async def test_http_method_headers_body_and_user_agent(env: ProbeEnv, http_url: str) -> None:
    result, _ = await probe(
        env, "http", url=f"{http_url}/echo", method="POST", headers={"X-Test": "yes"}, body="ping"
    )
    sent = msgspec.json.decode(result.context["BODY"])
    assert sent == {"method": "POST", "ua": "dragonopsd", "test": "yes", "body": "ping"}
    custom, _ = await probe(env, "http", url=f"{http_url}/echo", headers={"user-agent": "mine"})
    assert msgspec.json.decode(custom.context["BODY"])["ua"] == "mine"


async def test_http_redirects_followed_or_not(env: ProbeEnv, http_url: str) -> None:
    followed, _ = await probe(env, "http", url=f"{http_url}/redirect")
    assert followed.context["STATUS"] == 200 and b'"ok"' in followed.context["BODY"]
    kept, _ = await probe(env, "http", url=f"{http_url}/redirect", follow_redirects=False)
    assert kept.context["STATUS"] == 302
    looping, _ = await probe(env, "http", url=f"{http_url}/loop")
    assert looping.error == "too many redirects"


async def test_http_timeout_is_the_total_budget(env: ProbeEnv, http_url: str) -> None:
    result, took = await probe(env, "http", url=f"{http_url}/slow", timeout=0.5)
    assert result.error == "timeout after 0.5s"
    assert result.context == {"CONNECTED": False}
    assert 0.4 < took < 1.0


async def test_http_connection_closed_mid_response(env: ProbeEnv) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial"
    async with raw_server(head) as port:
        result, _ = await probe(env, "http", url=f"http://127.0.0.1:{port}/")
    assert result.error is not None and "connection closed mid-response" in result.error


async def test_http_server_hangs_up_or_talks_garbage(env: ProbeEnv) -> None:
    async with raw_server(b"") as port:
        hangup, _ = await probe(env, "http", url=f"http://127.0.0.1:{port}/")
    assert hangup.error == "server disconnected"
    async with raw_server(b"SSH-2.0-OpenSSH_9.6\r\n\r\n") as port:
        garbage, _ = await probe(env, "http", url=f"http://127.0.0.1:{port}/")
    assert garbage.error is not None and garbage.error.startswith("invalid response")


async def test_http_huge_body_is_truncated(env: ProbeEnv, http_url: str) -> None:
    result, _ = await probe(env, "http", url=f"{http_url}/huge")
    assert result.context["STATUS"] == 200
    assert len(result.context["BODY"]) == MiB and result.context["BODY_TRUNCATED"] is True


async def test_http_error_never_echoes_credentials(env: ProbeEnv, http_url: str) -> None:
    url = f"http://user:hunter2@127.0.0.1:{closed_port()}/?token=s3cret"
    refused, _ = await probe(env, "http", url=url)
    assert refused.error == "connection refused"
    both = f"http://user:hunter2@{http_url.removeprefix('http://')}/json"
    clash, _ = await probe(env, "http", url=both, headers={"Authorization": "Bearer s3cret"})
    assert clash.error == "invalid request (rejected before sending)"


async def test_https_certificate_expiry(
    make_env: Callable[..., ProbeEnv], aiohttp_server: Server, ca: trustme.CA, two_day_cert: Any
) -> None:
    server = await aiohttp_server(http_app(), ssl=two_day_cert)
    env = make_env(ssl_context=client_context(ca))
    result, _ = await probe(env, "http", url=f"https://127.0.0.1:{server.port}/json")
    assert result.error is None and result.context["STATUS"] == 200
    assert abs(result.context["CERTIFICATE_EXPIRATION"] - 172_800) < 120
    assert result.cert_expires_at is not None
    assert abs(result.cert_expires_at - (time.time() + 172_800)) < 120


async def test_https_verify_toggle(
    env: ProbeEnv, aiohttp_server: Server, two_day_cert: Any
) -> None:
    # env trusts only the system store, which does not know the trustme CA.
    server = await aiohttp_server(http_app(), ssl=two_day_cert)
    url = f"https://127.0.0.1:{server.port}/json"
    unverified, _ = await probe(env, "http", url=url, verify_tls=False)
    assert unverified.error is None and unverified.context["STATUS"] == 200
    assert abs(unverified.context["CERTIFICATE_EXPIRATION"] - 172_800) < 120
    verified, _ = await probe(env, "http", url=url)
    assert verified.error is not None
    assert verified.error.startswith("certificate verify failed: unable to get local issuer")


# --- tcp / tls -----------------------------------------------------------------------------


async def test_tcp_open_and_closed(env: ProbeEnv) -> None:
    async with stream_server() as port:
        up, _ = await probe(env, "tcp", host="127.0.0.1", port=port)
    assert up.error is None
    assert up.context["CONNECTED"] is True and up.context["IP"] == "127.0.0.1"
    assert up.context["RESPONSE_TIME"] >= 0
    down, _ = await probe(env, "tcp", host="127.0.0.1", port=closed_port())
    assert (down.context["CONNECTED"], down.error) == (False, "connection refused")


async def test_tls_certificate_and_verify(
    make_env: Callable[..., ProbeEnv], ca: trustme.CA, two_day_cert: Any
) -> None:
    env = make_env(
        ssl_context=client_context(ca),
        resolver=FakeDNS({"app.test": ["127.0.0.1"], "localhost": ["::1", "127.0.0.1"]}),
    )
    async with stream_server(two_day_cert) as port:
        by_ip, _ = await probe(env, "tls", host="127.0.0.1", port=port)
        by_name, _ = await probe(env, "tls", host="localhost", port=port)
        wrong_name, _ = await probe(env, "tls", host="app.test", port=port)
        unverified, _ = await probe(env, "tls", host="app.test", port=port, verify_tls=False)
        system_trust, _ = await probe(make_env(), "tls", host="127.0.0.1", port=port)
    for result in (by_ip, by_name, unverified):
        assert result.error is None, result.error
        assert result.context["CONNECTED"] is True and result.context["IP"] == "127.0.0.1"
        assert abs(result.context["CERTIFICATE_EXPIRATION"] - 172_800) < 120
    assert by_ip.cert_expires_at is not None
    assert wrong_name.error is not None
    assert wrong_name.error.startswith("certificate verify failed: Hostname mismatch")
    assert system_trust.error is not None  # the system store does not know the trustme CA
    assert system_trust.error.startswith("certificate verify failed: unable to get local issuer")


async def test_tls_expired_certificate(make_env: Callable[..., ProbeEnv], ca: trustme.CA) -> None:
    expired = server_context(ca, not_before=in_days(-10), not_after=in_days(-1))
    env = make_env(ssl_context=client_context(ca))
    async with stream_server(expired) as port:
        result, _ = await probe(env, "tls", host="127.0.0.1", port=port)
    assert result.error == "certificate verify failed: certificate has expired"
    assert result.context["CONNECTED"] is False


async def test_tls_handshake_timeout(env: ProbeEnv) -> None:
    async with stream_server() as port:  # plain TCP: the ClientHello is never answered
        result, took = await probe(env, "tls", host="127.0.0.1", port=port, timeout=0.5)
    assert result.error == "timeout after 0.5s" and took < 1.0


# --- dns -----------------------------------------------------------------------------------


async def test_dns_answers_and_nxdomain(env: ProbeEnv) -> None:
    records = {"web.test": ["192.0.2.10", "192.0.2.11", "2001:db8::1"]}
    async with dns_server(records) as (where, _):
        a, _ = await probe(env, "dns", host="web.test", resolver=where)
        aaaa, _ = await probe(env, "dns", host="web.test", resolver=where, record_type="AAAA")
        missing, _ = await probe(env, "dns", host="missing.test", resolver=where)
    assert a.error is None and a.context["DNS_RCODE"] == "NOERROR"
    # An RRset is a set: the server may send the records in any order.
    assert sorted(a.context["ANSWERS"]) == ["192.0.2.10", "192.0.2.11"]
    assert a.context["IP"] == a.context["ANSWERS"][0] and a.context["RESPONSE_TIME"] > 0
    assert aaaa.context["IP"] == "2001:db8::1"
    assert missing.error is None and missing.context["DNS_RCODE"] == "NXDOMAIN"
    assert missing.context["ANSWERS"] == [] and "IP" not in missing.context


async def test_dns_garbage_and_silence(env: ProbeEnv) -> None:
    async with dns_server({}) as (where, _):
        garbage, _ = await probe(env, "dns", host="x.garbage", resolver=where)
        silent, took = await probe(env, "dns", host="x.silent", resolver=where, timeout=0.5)
    assert garbage.error is not None and garbage.error.startswith("invalid DNS response")
    assert silent.error == "timeout after 0.5s" and took < 1.0


async def test_dns_resolver_goes_through_the_guard(make_env: Callable[..., ProbeEnv]) -> None:
    env = make_env(deny_cidrs=["127.0.0.0/8"])
    async with dns_server({"web.test": ["192.0.2.10"]}) as (where, responder):
        denied, _ = await probe(env, "dns", host="web.test", resolver=where)
        metadata, _ = await probe(env, "dns", host="web.test", resolver="169.254.169.254")
    assert denied.error == "address 127.0.0.1 is not allowed (deny_cidrs 127.0.0.0/8)"
    assert metadata.error == "address 169.254.169.254 is not allowed (cloud metadata)"
    assert responder.queries == []


# --- icmp ----------------------------------------------------------------------------------


async def test_icmp_loopback(env: ProbeEnv) -> None:
    result, took = await probe(env, "icmp", host="127.0.0.1", packets=3)
    assert result.error is None, result.error
    assert result.context["CONNECTED"] is True and result.context["PACKET_LOSS"] == 0
    assert result.context["IP"] == "127.0.0.1" and result.context["RESPONSE_TIME"] >= 0
    assert took < 2


async def test_icmp_refuses_metadata(env: ProbeEnv) -> None:
    result, _ = await probe(env, "icmp", host="169.254.169.254")
    assert result.error == "address 169.254.169.254 is not allowed (cloud metadata)"


# --- SSRF guard ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("169.254.169.254", True),
        ("169.254.0.1", True),
        ("::ffff:169.254.169.254", True),
        ("fd00:ec2::254", True),
        ("fd00:ec2::253", False),
        ("fe80::1%eth0", True),  # all link-local, like notifications (stricter)
        ("100.100.100.200", True),  # Alibaba Cloud metadata
        ("127.0.0.1", False),
        ("8.8.8.8", False),
        ("not-an-ip", True),
    ],
)
def test_guard_defaults(address: str, refused: bool) -> None:
    assert (AddressGuard(ProbesConfig()).check(address) is not None) is refused


def test_guard_allow_metadata_and_deny_cidrs() -> None:
    guard = AddressGuard(ProbesConfig(allow_metadata=True, deny_cidrs=["10.0.0.0/8", "fd00::/8"]))
    assert guard.check("169.254.169.254") is None
    assert guard.check("10.1.2.3") == "address 10.1.2.3 is not allowed (deny_cidrs 10.0.0.0/8)"
    assert guard.check("::ffff:10.1.2.3") is not None
    assert guard.check("fd00:ec2::254") is not None  # deny_cidrs apply even with allow_metadata
    with pytest.raises(ValueError, match="deny_cidrs"):
        AddressGuard(ProbesConfig(deny_cidrs=["10.0.0.0/99"]))


@pytest.mark.parametrize(
    "url",
    ["http://169.254.169.254/latest", "http://[fd00:ec2::254]/", "http://[::ffff:a9fe:a9fe]/"],
)
async def test_http_metadata_literals_refused(env: ProbeEnv, url: str) -> None:
    result, took = await probe(env, "http", url=url)
    assert result.error is not None and result.error.endswith("is not allowed (cloud metadata)")
    assert took < 0.5  # refused before any packet is sent, not timed out


async def test_http_hostname_resolving_to_metadata_refused(
    make_env: Callable[..., ProbeEnv], http_url: str
) -> None:
    port = http_url.rsplit(":", 1)[1]
    dns = FakeDNS({"evil.test": ["169.254.169.254"], "app.test": ["127.0.0.1"]})
    env = make_env(resolver=dns)
    evil, _ = await probe(env, "http", url=f"http://evil.test:{port}/json")
    assert evil.error == "address 169.254.169.254 is not allowed (cloud metadata)"
    good, _ = await probe(env, "http", url=f"http://app.test:{port}/json")
    assert good.context["STATUS"] == 200 and good.context["IP"] == "127.0.0.1"


async def test_http_redirect_to_metadata_refused_at_connect(env: ProbeEnv, http_url: str) -> None:
    result, _ = await probe(env, "http", url=f"{http_url}/to-metadata")
    assert result.error == "address 169.254.169.254 is not allowed (cloud metadata)"


async def test_guarded_resolver_drops_refused_answers() -> None:
    guard = AddressGuard(ProbesConfig())
    inner = FakeDNS({"mixed.test": ["169.254.169.254", "127.0.0.1"], "evil.test": ["169.254.0.9"]})
    resolver = GuardedResolver(inner, guard)
    assert [r["host"] for r in await resolver.resolve("mixed.test", 80)] == ["127.0.0.1"]
    with pytest.raises(OSError, match="cloud metadata"):
        await resolver.resolve("evil.test", 80)


async def test_tcp_guard_on_resolved_addresses(make_env: Callable[..., ProbeEnv]) -> None:
    dns = FakeDNS(
        {"evil.test": ["169.254.169.254"], "mixed.test": ["169.254.169.254", "127.0.0.1"]}
    )
    env = make_env(resolver=dns)
    async with stream_server() as port:
        evil, took = await probe(env, "tcp", host="evil.test", port=port)
        mixed, _ = await probe(env, "tcp", host="mixed.test", port=port)
    assert evil.error == "address 169.254.169.254 is not allowed (cloud metadata)" and took < 0.5
    assert mixed.error is None and mixed.context["IP"] == "127.0.0.1"


async def test_deny_cidrs_refuse_loopback(make_env: Callable[..., ProbeEnv], http_url: str) -> None:
    env = make_env(deny_cidrs=["127.0.0.0/8"])
    refused = "address 127.0.0.1 is not allowed (deny_cidrs 127.0.0.0/8)"
    http, _ = await probe(env, "http", url=f"{http_url}/json")
    assert http.error == refused
    async with stream_server() as port:
        tcp, _ = await probe(env, "tcp", host="127.0.0.1", port=port)
    assert tcp.error == refused


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::a9fe:a9fe",  # NAT64, well-known prefix
        "64:ff9b::169.254.169.254",
        "64:ff9b:1:a9fe:a9:fe00::",  # NAT64, local-use prefix of length 48 (RFC 6052)
        "64:ff9b:1::a9fe:a9fe",  # ... and of length 96
        "2002:a9fe:a9fe::",  # 6to4
        "2002:a9fe:a9fe:1::1",
        "::a9fe:a9fe",  # IPv4-compatible
        "::ffff:a9fe:a9fe",  # IPv4-mapped
        "2001:0:a9fe:a9fe::1",  # Teredo server
        "2001:0:4136:e378:8000:63bf:5601:5601",  # Teredo client (obfuscated 169.254.169.254)
    ],
)
def test_guard_refuses_metadata_embedded_in_ipv6(address: str) -> None:
    assert AddressGuard(ProbesConfig()).check(address) is not None


def test_guard_embedded_ipv4_meets_deny_cidrs_and_passes_otherwise() -> None:
    guard = AddressGuard(ProbesConfig(deny_cidrs=["10.0.0.0/8"]))
    assert guard.check("64:ff9b::10.1.2.3") is not None
    assert guard.check("2002:a01:203::") is not None
    assert guard.check("64:ff9b::8.8.8.8") is None  # a public IPv4 through NAT64 is fine
    assert guard.check("2002:808:808::") is None
    assert guard.check("2001:db8::a9fe:a9fe") is None  # documentation range, embeds nothing


@pytest.mark.parametrize("address", ["0.0.0.0", "0.1.2.3", "::", "::ffff:0.0.0.0", "::0.0.0.0"])
def test_guard_unspecified_is_this_host(address: str) -> None:
    assert AddressGuard(ProbesConfig()).check(address) is None  # loopback allowed: so is this
    denied = AddressGuard(ProbesConfig(deny_cidrs=["127.0.0.0/8"]))
    assert denied.check(address) == (
        f"address {address} is not allowed (this host; deny_cidrs 127.0.0.0/8)"
    )
    assert AddressGuard(ProbesConfig(deny_cidrs=["::1/128"])).check(address) is not None


async def test_unspecified_address_does_not_reach_denied_loopback(
    make_env: Callable[..., ProbeEnv], http_url: str
) -> None:
    port = int(http_url.rsplit(":", 1)[1])
    body = ["[BODY].status == nope"]
    # Loopback allowed: 0.0.0.0 really does reach the local server (the hole being closed).
    open_env = make_env()
    reached, _ = await probe(open_env, "http", url=f"http://0.0.0.0:{port}/json", conditions=body)
    assert reached.context["STATUS"] == 200
    env = make_env(deny_cidrs=["127.0.0.0/8"])
    for host in ("0.0.0.0", "[::]", "[::ffff:0.0.0.0]"):
        http, _ = await probe(env, "http", url=f"http://{host}:{port}/json", conditions=body)
        assert http.error is not None and "this host; deny_cidrs" in http.error, host
        assert "BODY" not in http.context and "STATUS" not in http.context
    async with stream_server() as tcp_port:
        plain, _ = await probe(open_env, "tcp", host="0.0.0.0", port=tcp_port)
        assert plain.error is None and plain.context["CONNECTED"] is True
        for host in ("0.0.0.0", "::"):
            tcp, _ = await probe(env, "tcp", host=host, port=tcp_port)
            assert tcp.error == f"address {host} is not allowed (this host; deny_cidrs 127.0.0.0/8)"
    icmp, _ = await probe(env, "icmp", host="0.0.0.0")
    assert icmp.error is not None and "this host" in icmp.error


# --- dispatch ------------------------------------------------------------------------------


async def test_push_is_not_probed(env: ProbeEnv) -> None:
    result = await run_probe(MonitorSpec(name="p", kind="push"), env)
    assert result.error == "push monitors are not probed"


def test_probe_result_encodes() -> None:
    # The scheduler hands results to history and the bus: they must encode as they are.
    result = ProbeResult({"STATUS": 200}, latency_ms=1.5)
    assert msgspec.json.decode(msgspec.json.encode(result))["context"] == {"STATUS": 200}
