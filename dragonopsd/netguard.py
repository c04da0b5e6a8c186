"""SSRF guard: which addresses the daemon may connect to, enforced where the socket is made.

Probe targets and notification channels are user input, so neither may become a way to read
the cloud metadata service or an internal network. Checking the hostname is not enough (it may
resolve to anything, and resolve differently a second later), so the check runs on the
resolved address (``GuardedResolver``) and again on the exact address handed to ``connect()``
(``guarded_socket_factory``). Callers that connect by name through a library of their own can
at least refuse IP literals up front with ``check_host_literal``.

The rules come from ``[probes]``: link-local addresses and the cloud metadata services are
refused unless ``allow_metadata = true``; ``deny_cidrs`` are refused always. Loopback and
private ranges stay allowed unless listed there: receivers on the same host or LAN are normal.
Protocol-agnostic on purpose: probes and notifications share it.

The other direction lives here too: ``AddressSet`` and ``Quota`` cap what one client address
(or principal) may hold open on the daemon's own port, ``[server] per_address_exempt`` aside.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from .config import ProbesConfig

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# The IPv4 link-local block every cloud serves metadata from, the AWS IPv6 metadata endpoint
# and Alibaba Cloud's. Refused unless [probes] allow_metadata = true, like all link-local.
METADATA_NETWORKS: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fd00:ec2::254/128"),
    ipaddress.ip_network("100.100.100.200/32"),
)

# For callers that must not echo the address (it may be part of a credential-bearing URL).
REFUSED = "address refused: link-local, cloud metadata or [probes] deny_cidrs"


class AddressSet:
    """Networks that client addresses are tested against ([server] per_address_exempt).

    An IPv4 client on a dual-stack socket shows up as ``::ffff:a.b.c.d``; it counts as a.b.c.d.
    """

    def __init__(self, cidrs: Iterable[str]) -> None:
        self._networks = tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)

    def __contains__(self, address: object) -> bool:
        if not self._networks or not isinstance(address, str):
            return False
        try:
            ip: IPAddress = ipaddress.ip_address(address.partition("%")[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self._networks)


class Quota:
    """At most ``cap`` slots held per key (a client address, a principal); keys in ``exempt``
    are not counted, and a key that holds none is forgotten."""

    def __init__(self, cap: int, exempt: AddressSet | None = None) -> None:
        self.cap = cap
        self._exempt = exempt or AddressSet(())
        self._held: dict[str, int] = {}

    def take(self, key: str) -> bool:
        """Take a slot for key; False when key already holds cap of them."""
        if key in self._exempt:
            return True
        held = self._held.get(key, 0)
        if held >= self.cap:
            return False
        self._held[key] = held + 1
        return True

    def give_back(self, key: str) -> None:
        """Return a slot take() gave."""
        if key in self._exempt:
            return
        held = self._held.get(key, 0) - 1
        if held > 0:
            self._held[key] = held
        else:
            self._held.pop(key, None)


class AddressRefused(OSError):
    """A target resolved to an address the guard refuses; the message says which and why.

    An OSError so that aiohttp and aiohappyeyeballs treat it like any failed connect attempt
    (try the next address, then report it as the connection error).
    """


class AddressGuard:
    """Decides whether the daemon may connect to an IP ([probes] allow_metadata, deny_cidrs)."""

    def __init__(self, cfg: ProbesConfig) -> None:
        self._allow_metadata = False
        self._deny: tuple[IPNetwork, ...] = ()
        self.configure(cfg)

    def configure(self, cfg: ProbesConfig) -> None:
        """Take (re)loaded rules: every check from now on uses them (SIGHUP). One guard is
        shared by the probes and the notifications, so both follow at once."""
        deny: list[IPNetwork] = []
        for cidr in cfg.deny_cidrs:
            try:
                deny.append(ipaddress.ip_network(cidr, strict=False))
            except ValueError:
                raise ValueError(f"probes.deny_cidrs: {cidr!r} is not a network") from None
        self._allow_metadata = cfg.allow_metadata
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
            if not self._allow_metadata:
                if any(candidate in n for n in METADATA_NETWORKS):
                    return f"address {address} is not allowed (cloud metadata)"
                if candidate.is_link_local:
                    return f"address {address} is not allowed (link-local)"
            for network in self._deny:
                if candidate in network:
                    return f"address {address} is not allowed (deny_cidrs {network})"
        return None

    def refuse(self, address: str) -> None:
        """Raise AddressRefused when check() refuses address."""
        reason = self.check(address)
        if reason is not None:
            raise AddressRefused(reason)


def check_host_literal(guard: AddressGuard, host: str) -> str | None:
    """The reason host is refused when it is a literal IP (brackets allowed), else None.

    Hostnames pass: they are checked once resolved. For IP-literal URLs aiohttp skips the
    resolver, and other clients (SMTP) connect on their own, so this is the up-front check.
    """
    literal = host.strip("[]")
    try:
        ipaddress.ip_address(literal.partition("%")[0])
    except ValueError:
        return None
    return guard.check(literal)


class GuardedResolver(AbstractResolver):
    """An aiohttp resolver that drops refused addresses from another resolver's answer.

    When nothing is left it raises AddressRefused, so a hostname pointing at the metadata service
    fails before any connection is attempted, with the reason as the error.
    """

    def __init__(self, inner: AbstractResolver | None, guard: AddressGuard) -> None:
        self._inner = inner if inner is not None else DefaultResolver()
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
