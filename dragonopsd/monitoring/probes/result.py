"""What a probe returns (ProbeResult) and what it runs with (ProbeEnv)."""

from __future__ import annotations

import functools
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec
from aiohttp.abc import AbstractResolver

from .guard import AddressGuard

# Bodies are read up to this much; conditions rarely need more, and a monitor pointed at a large
# download must not hold megabytes per probe in memory.
MAX_BODY = 1024 * 1024

# A secret's value by name ("KEY" or "env/KEY"); None when there is no such secret.
SecretLookup = Callable[[str], Awaitable[str | None]]


class ProbeResult(msgspec.Struct):
    """One probe's outcome: condition placeholders in context, or a short transport error.

    context keys are the condition placeholders without brackets (STATUS, RESPONSE_TIME, BODY,
    CERTIFICATE_EXPIRATION, CONNECTED, DNS_RCODE, IP, PACKET_LOSS, ...). error never carries
    request headers, bodies or URLs (they may hold credentials).
    """

    context: dict[str, Any]
    latency_ms: float | None = None
    error: str | None = None
    cert_expires_at: float | None = None


@dataclass
class ProbeEnv:
    """Shared, long-lived things every probe needs; built once per app.

    ssl_context is the trust for verified TLS probes (the system store when omitted, loaded on
    first use; HTTP probes take theirs from the session). resolver stands in for getaddrinfo in
    tcp, tls and icmp probes (tests use it as fake DNS). nameservers: resolv.conf's, filled by
    the first dns probe that needs them. secrets resolves ``${secret:NAME}`` references (None
    where no secrets store is at hand: remote probe workers).
    """

    session: aiohttp.ClientSession
    guard: AddressGuard
    user_agent: str = "dragonopsd"
    ssl_context: ssl.SSLContext | None = None
    resolver: AbstractResolver | None = None
    nameservers: list[str] | None = None
    secrets: SecretLookup | None = None


@functools.cache
def system_context() -> ssl.SSLContext:
    """The system trust store as a client context, loaded once per process (it reads files)."""
    return ssl.create_default_context()
