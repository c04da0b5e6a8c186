"""The probe side of the SSRF guard: the probes' HTTP session and guarded name resolution.

The rules themselves (which addresses are refused, the guarded resolver and socket factory)
live in ``dragonopsd.netguard``, shared with notifications; they are re-exported here.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl

import aiohttp
from aiohttp.abc import AbstractResolver

from ...config import ProbesConfig
from ...netguard import (
    AddressGuard,
    AddressRefused,
    GuardedResolver,
    guarded_socket_factory,
)
from .peer import PeerResponse

__all__ = [
    "AddressGuard",
    "AddressRefused",
    "GuardedResolver",
    "allowed_addresses",
    "guarded_socket_factory",
    "make_session",
    "resolve",
]


def make_session(
    cfg: ProbesConfig,
    guard: AddressGuard,
    *,
    ssl_context: ssl.SSLContext | None = None,
    resolver: AbstractResolver | None = None,
) -> aiohttp.ClientSession:
    """The one ClientSession of the app for HTTP probes; call inside a running loop.

    ssl_context: trust for verified HTTPS (None: the system store). resolver: the DNS resolver
    to wrap (None: aiohttp's default), replaceable so tests can stand in for DNS. cfg is not read
    yet (the scheduler applies [probes] concurrency) but keeps the signature stable.
    """
    connector = aiohttp.TCPConnector(
        resolver=GuardedResolver(resolver, guard),
        socket_factory=guarded_socket_factory(guard),
        ssl=ssl_context if ssl_context is not None else True,
        # The scheduler already bounds how many probes run at once; a second, smaller limit
        # here would only queue probes behind each other and inflate their response times.
        limit=0,
        # Short: a probe should notice a DNS change soon, and rebinding gains nothing from it
        # because the connect-time socket factory checks every address anyway.
        ttl_dns_cache=10,
        # A fresh connection per probe: it measures what a first visitor sees, and an idle
        # keep-alive socket would sit unused for the whole interval anyway.
        force_close=True,
        enable_cleanup_closed=True,
    )
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),  # probes are independent; nothing carries over
        auto_decompress=True,
        response_class=PeerResponse,  # probes report the peer's IP and certificate
        trust_env=False,  # never route probes through proxies picked up from the environment
    )


async def resolve(host: str, port: int, resolver: AbstractResolver | None = None) -> list[str]:
    """The IP addresses host resolves to, in the resolver's order, without blocking the loop.

    An IP literal is returned as is. resolver (tests' stand-in for DNS) replaces getaddrinfo.
    """
    try:
        ipaddress.ip_address(host.strip("[]").partition("%")[0])
        return [host.strip("[]")]
    except ValueError:
        pass
    if resolver is not None:
        results = await resolver.resolve(host, port, socket.AF_UNSPEC)
        return [r["host"] for r in results]
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def allowed_addresses(
    guard: AddressGuard, host: str, port: int, resolver: AbstractResolver | None = None
) -> list[str]:
    """Resolve host and keep the addresses the guard allows; AddressRefused if none is left."""
    addresses = await resolve(host, port, resolver)
    allowed = [a for a in addresses if guard.check(a) is None]
    if addresses and not allowed:
        guard.refuse(addresses[0])
    if not allowed:
        raise OSError(f"cannot resolve {host}")
    return allowed
