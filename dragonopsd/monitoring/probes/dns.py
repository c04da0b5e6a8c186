"""DNS probe: ask a chosen resolver for one record type with dnspython; rcode, answers, timing."""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype
import dns.resolver

from ...model.monitor import MonitorSpec
from .result import ProbeEnv, ProbeResult


def parse_resolver(text: str) -> tuple[str, int]:
    """'IP', 'IP:port', '[v6]' or '[v6]:port' (the model has validated the shape) -> (ip, port)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else 53
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, int(port)
    return text, 53


@functools.cache
def system_nameservers() -> tuple[str, ...]:
    """resolv.conf's nameservers; read once per process (the daemon's DNS setup is fixed)."""
    try:
        return tuple(str(ns) for ns in dns.resolver.Resolver().nameservers)
    except dns.resolver.NoResolverConfiguration:
        return ()


async def nameserver_for(spec: MonitorSpec, env: ProbeEnv) -> tuple[str, int]:
    """The resolver the monitor names, else the system's first nameserver."""
    if spec.resolver:
        return parse_resolver(spec.resolver)
    if env.nameservers is None:
        # Off the loop: the first read opens /etc/resolv.conf.
        env.nameservers = list(await asyncio.to_thread(system_nameservers))
    if not env.nameservers:
        raise OSError("no nameserver configured in /etc/resolv.conf")
    return env.nameservers[0], 53


async def probe_dns(spec: MonitorSpec, env: ProbeEnv) -> ProbeResult:
    """Query spec.host for spec.record_type; DNS_RCODE, ANSWERS, IP, RESPONSE_TIME."""
    assert spec.host is not None
    where, port = await nameserver_for(spec, env)
    # The resolver is a target like any other: a UDP packet to the metadata address is refused.
    env.guard.refuse(where)
    rdtype = dns.rdatatype.from_text(spec.record_type or "A")
    query = dns.message.make_query(spec.host, rdtype)
    started = time.perf_counter()
    # dnspython's own timeout is per attempt; the caller's asyncio.timeout bounds the total.
    try:
        response, _ = await dns.asyncquery.udp_with_fallback(
            query, where, timeout=spec.timeout, port=port
        )
    except dns.exception.Timeout:
        raise TimeoutError from None
    except dns.exception.DNSException as exc:  # malformed or mismatched reply
        raise OSError(f"invalid DNS response: {exc}"[:200]) from None
    elapsed = (time.perf_counter() - started) * 1000
    answers = [
        rdata.to_text() for rrset in response.answer if rrset.rdtype == rdtype for rdata in rrset
    ]
    context: dict[str, Any] = {
        "CONNECTED": True,
        "DNS_RCODE": dns.rcode.to_text(response.rcode()),
        "ANSWERS": answers,
        "RESPONSE_TIME": elapsed,
    }
    if answers:
        context["IP"] = answers[0]
    return ProbeResult(context, latency_ms=elapsed)
