"""SSRF guard: which addresses probes may connect to, enforced where the socket is made.

A monitor's target is user input, so a probe must not become a way to read the cloud metadata
service or an internal network. Checking the hostname is not enough (it may resolve to anything,
and resolve differently a second later), so the check runs on the resolved address, and for
HTTP again on the exact address handed to ``connect()``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from ...config import ProbesConfig
from .peer import PeerResponse

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# The list: the IPv4 link-local block every cloud serves metadata from, and the AWS
# IPv6 metadata endpoint. Refused unless [probes] allow_metadata = true.
METADATA_NETWORKS: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fd00:ec2::254/128"),
)


class AddressRefused(OSError):
    """A probe target resolved to an address the guard refuses; the message says which and why.

    An OSError so that aiohttp and aiohappyeyeballs treat it like any failed connect attempt
    (try the next address, then report it as the connection error).
    """


class AddressGuard:
    """Decides whether a probe may connect to an IP ([probes] allow_metadata, deny_cidrs)."""

    def __init__(self, cfg: ProbesConfig) -> None:
        self._allow_metadata = cfg.allow_metadata
        deny: list[IPNetwork] = []
        for cidr in cfg.deny_cidrs:
            try:
                deny.append(ipaddress.ip_network(cidr, strict=False))
            except ValueError:
                raise ValueError(f"probes.deny_cidrs: {cidr!r} is not a network") from None
        self._deny = tuple(deny)

    def check(self, address: str) -> str | None:
        """None when address may be connected to, else the reason it is refused."""
        try:
            # A scope id ("fe80::1%eth0") does not change which network the address is in.
            ip = ipaddress.ip_address(address.partition("%")[0])
        except ValueError:
            return f"address {address!r} is not an IP address"
        candidates: list[IPAddress] = [ip]
        # ::ffff:169.254.169.254 reaches the same host as 169.254.169.254 on a dual-stack socket.
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            candidates.append(ip.ipv4_mapped)
        for candidate in candidates:
            if not self._allow_metadata and any(candidate in n for n in METADATA_NETWORKS):
                return f"address {address} is not allowed (cloud metadata)"
            for network in self._deny:
                if candidate in network:
                    return f"address {address} is not allowed (deny_cidrs {network})"
        return None

    def refuse(self, address: str) -> None:
        """Raise AddressRefused when check() refuses address."""
        reason = self.check(address)
        if reason is not None:
            raise AddressRefused(reason)


class GuardedResolver(AbstractResolver):
    """An aiohttp resolver that drops refused addresses from another resolver's answer.

    When nothing is left it raises AddressRefused, so a hostname pointing at the metadata service
    fails before any connection is attempted, with the reason as the probe's error.
    """

    def __init__(self, inner: AbstractResolver, guard: AddressGuard) -> None:
        self._inner = inner
        self._guard = guard

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve with the inner resolver and keep only the allowed addresses."""
        results = await self._inner.resolve(host, port, family)
        allowed = [r for r in results if self._guard.check(r["host"]) is None]
        if results and not allowed:
            self._guard.refuse(results[0]["host"])
        return allowed

    async def close(self) -> None:
        """Close the inner resolver (this wrapper owns it)."""
        await self._inner.close()


def guarded_socket_factory(guard: AddressGuard) -> aiohttp.SocketFactoryType:
    """A TCPConnector socket factory that refuses the address about to be connected to.

    This is the check on the address actually connected to: it also covers IP-literal URLs
    (aiohttp skips the resolver for those) and redirects to them.
    """

    def factory(addr_info: aiohttp.AddrInfoType) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        guard.refuse(str(sockaddr[0]))
        return socket.socket(family=family, type=type_, proto=proto)

    return factory


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
        resolver=GuardedResolver(resolver or DefaultResolver(), guard),
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
