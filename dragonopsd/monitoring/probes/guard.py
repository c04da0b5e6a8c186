"""The probe side of the SSRF guard: the probes' HTTP session and guarded name resolution.

The rules themselves (which addresses are refused, the guarded resolver and socket factory)
live in ``dragonopsd.netguard``, shared with notifications; they are re-exported here.
"""

from __future__ import annotations

import ssl

import aiohttp
from aiohttp.abc import AbstractResolver

from ...config import ProbesConfig
from ...netguard import (
    AddressGuard,
    AddressRefused,
    GuardedResolver,
    allowed_addresses,
    guarded_socket_factory,
    resolve,
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
