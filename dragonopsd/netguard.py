"""SSRF guard: which addresses the daemon may connect to, enforced where the socket is made.

Probe targets and notification channels are user input, so neither may become a way to read
the cloud metadata service or an internal network. Checking the hostname is not enough (it may
resolve to anything, and resolve differently a second later), so the check runs on the
resolved address (``GuardedResolver``) and again on the exact address handed to ``connect()``
(``guarded_socket_factory``). Callers that connect by name through a library of their own can
at least refuse IP literals up front with ``check_host_literal``; those that take a connected socket
get one from ``connected_socket``, dialled to the address that was checked.

The rules come from ``[probes]``: link-local addresses and the cloud metadata services are
refused unless ``allow_metadata = true``; ``deny_cidrs`` are refused always. Loopback and
private ranges stay allowed unless listed there: receivers on the same host or LAN are normal.
Every IPv4 address an IPv6 one embeds (``reached``) is judged too, and the unspecified addresses
count as this host (Linux connects 0.0.0.0 and :: to it).
Protocol-agnostic on purpose: probes and notifications share it.

The other direction lives here too: ``AddressSet`` and ``Quota`` cap what one client address
(or principal) may hold open on the daemon's own port, ``[server] per_address_exempt`` aside.
"""

from __future__ import annotations

import asyncio
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

# Where connect() to an unspecified address (0.0.0.0/8, ::) really goes: this host.
HOST_ALIASES: tuple[IPAddress, ...] = (
    ipaddress.ip_address("127.0.0.1"),
    ipaddress.ip_address("::1"),
)
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


def _unspecified(ip: IPAddress) -> bool:
    return ip in _THIS_NETWORK if isinstance(ip, ipaddress.IPv4Address) else ip.is_unspecified


def _rfc6052(ip: ipaddress.IPv6Address, prefix: int) -> ipaddress.IPv4Address:
    """The IPv4 address a NAT64 prefix of this length embeds (RFC 6052 section 2.2): the
    32 bits follow the prefix, skipping bits 64-71 (the "u" octet)."""
    raw = ip.packed
    if prefix == 96:
        return ipaddress.IPv4Address(raw[12:])
    octets = raw[:8] + raw[9:]
    return ipaddress.IPv4Address(octets[prefix // 8 : prefix // 8 + 4])


def reached(ip: IPAddress) -> list[IPAddress]:
    """ip and every IPv4 address it embeds in a form that a translator, a tunnel or a
    dual-stack socket turns into a packet to that IPv4 address: IPv4-mapped and -compatible,
    NAT64 (64:ff9b::/96 and every RFC 6052 prefix length in 64:ff9b:1::/48), 6to4, Teredo.
    Each is checked, so 64:ff9b::a9fe:a9fe is as refused as 169.254.169.254."""
    found: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv4Address):
        return found
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip in _IPV4_COMPATIBLE and ip != HOST_ALIASES[1]:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip in _NAT64_WELL_KNOWN:
        found.append(_rfc6052(ip, 96))
    if ip in _NAT64_LOCAL:
        found += [_rfc6052(ip, prefix) for prefix in (48, 56, 64, 96)]
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found += list(ip.teredo)
    return found


# Addresses whose verdict AddressGuard remembers (a few per target; the cap only bounds memory).
VERDICTS_MAX = 10_000

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
        self._verdicts: dict[str, str | None] = {}  # address -> check(address)
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
        self._verdicts = {}

    def check(self, address: str) -> str | None:
        """None when address may be connected to, else the reason it is refused."""
        # Every probe connects through here, mostly to the same few addresses, and parsing
        # and testing an address against every rule cost ~15 us: remembered per address
        # until the rules change (bounded, so odd addresses cannot grow it without end).
        try:
            return self._verdicts[address]
        except KeyError:
            pass
        if len(self._verdicts) >= VERDICTS_MAX:
            self._verdicts.clear()
        reason = self._verdicts[address] = self._check(address)
        return reason

    def _check(self, address: str) -> str | None:
        try:
            # A scope id ("fe80::1%eth0") does not change which network the address is in.
            ip = ipaddress.ip_address(address.partition("%")[0])
        except ValueError:
            return f"address {address!r} is not an IP address"
        for candidate in reached(ip):
            if not self._allow_metadata:
                if any(candidate in n for n in METADATA_NETWORKS):
                    return f"address {address} is not allowed (cloud metadata)"
                if candidate.is_link_local:
                    return f"address {address} is not allowed (link-local)"
            network = self._denied(candidate)
            if network is not None:
                return f"address {address} is not allowed (deny_cidrs {network})"
            if _unspecified(candidate):
                # connect() to 0.0.0.0 or :: reaches this host (Linux): refused like loopback.
                for host in HOST_ALIASES:
                    network = self._denied(host)
                    if network is not None:
                        return f"address {address} is not allowed (this host; deny_cidrs {network})"
        return None

    def _denied(self, ip: IPAddress) -> IPNetwork | None:
        return next((network for network in self._deny if ip in network), None)

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


async def connected_socket(
    guard: AddressGuard, host: str, port: int, resolver: AbstractResolver | None = None
) -> socket.socket:
    """A socket connected to the first allowed address of host that accepts.

    For clients that connect on their own (SMTP): resolving and checking here, then handing
    them the connected socket, means the address judged is the address dialled, whatever
    form the name took ("2130706433", "127.1", "localhost"). The caller owns the socket.
    """
    loop = asyncio.get_running_loop()
    failure: OSError | None = None
    for address in await allowed_addresses(guard, host, port, resolver):
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, (address, port))
        except BaseException as exc:
            sock.close()
            if not isinstance(exc, OSError):
                raise
            failure = exc
            continue
        return sock
    assert failure is not None  # allowed_addresses never returns an empty list
    raise failure


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
