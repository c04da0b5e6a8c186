"""Keep notification traffic away from link-local and cloud-metadata addresses.

A webhook URL is typed in by an admin, but a token leaked to one should not turn the daemon
into a reader of 169.254.169.254. The check runs on the address actually connected to: names go
through ``GuardedResolver`` (so DNS rebinding after validation does not help), literal IPs
through ``refused_host`` right before the request (aiohttp skips the resolver for them).
Loopback and private ranges stay allowed: receivers on the same host or LAN are normal.
"""

from __future__ import annotations

import ipaddress
import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

# Metadata services outside the link-local ranges (AWS IPv6, Alibaba Cloud).
_METADATA = frozenset(
    {ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")}
)
REFUSED = "address refused: link-local or cloud metadata ([probes] allow_metadata)"


class RefusedAddress(OSError):
    """Every address of a host is link-local or a metadata service."""


def refused_ip(text: str) -> bool:
    """True for link-local and metadata addresses (also as IPv4-mapped IPv6)."""
    try:
        ip = ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_link_local or ip in _METADATA


def refused_host(host: str, allow_metadata: bool) -> bool:
    """True when host is a literal address that must not be contacted."""
    return not allow_metadata and refused_ip(host)


class GuardedResolver(AbstractResolver):
    """The default resolver minus refused addresses; RefusedAddress when none is left."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve host, dropping link-local and metadata addresses."""
        found = await self._inner.resolve(host, port, family)
        kept = [r for r in found if not refused_ip(r["host"])]
        if not kept:
            raise RefusedAddress(f"{host} resolves only to refused addresses")
        return kept

    async def close(self) -> None:
        """Release the inner resolver."""
        await self._inner.close()
