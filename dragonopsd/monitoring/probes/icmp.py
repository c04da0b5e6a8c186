"""ICMP probe: echo requests with icmplib; packet loss and round-trip time."""

from __future__ import annotations

from typing import Any, NamedTuple

import icmplib  # type: ignore[import-untyped]  # ships no py.typed; wrapped by ping() below

from ...model.monitor import MonitorSpec
from .guard import allowed_addresses
from .result import ProbeEnv, ProbeResult

INTERVAL = 0.2  # seconds between echo requests: quick, yet not a flood


class Echo(NamedTuple):
    """The typed part of icmplib's Host that the probe reports."""

    received: int
    loss_percent: float
    avg_rtt_ms: float


async def ping(address: str, count: int, wait: float) -> Echo:
    """Ping an IP address, waiting up to wait seconds per reply; unprivileged socket first.

    Unprivileged (SOCK_DGRAM) ICMP needs the daemon's group inside net.ipv4.ping_group_range;
    when the kernel refuses it, a raw socket works as root or with CAP_NET_RAW.
    """
    options: dict[str, Any] = {"count": count, "interval": INTERVAL, "timeout": wait}
    try:
        try:
            host = await icmplib.async_ping(address, privileged=False, **options)
        except icmplib.SocketPermissionError:
            host = await icmplib.async_ping(address, privileged=True, **options)
    except icmplib.SocketPermissionError:
        raise OSError(
            "ICMP not permitted: allow the daemon's group in net.ipv4.ping_group_range "
            "or grant CAP_NET_RAW"
        ) from None
    except icmplib.ICMPLibError as exc:
        raise OSError(f"ICMP error: {exc}"[:200]) from None
    return Echo(int(host.packets_received), float(host.packet_loss) * 100, float(host.avg_rtt))


async def probe_icmp(spec: MonitorSpec, env: ProbeEnv) -> ProbeResult:
    """Ping spec.host spec.packets times; CONNECTED, PACKET_LOSS (%), RESPONSE_TIME (avg), IP."""
    assert spec.host is not None
    # Resolve here: icmplib's own lookup would block the loop, and the guard must see the
    # address that is actually pinged.
    address = (await allowed_addresses(env.guard, spec.host, 0, env.resolver))[0]
    count = spec.packets or 3
    # Each unanswered packet waits its timeout; fit all waits and gaps inside the budget so a
    # dead host reports 100% loss instead of a bare timeout.
    wait = max(0.05, (spec.timeout * 0.9 - (count - 1) * INTERVAL) / count)
    echo = await ping(address, count, wait)
    context: dict[str, Any] = {
        "CONNECTED": echo.received > 0,
        "PACKET_LOSS": echo.loss_percent,
        "IP": address,
    }
    if not echo.received:
        return ProbeResult(context, error=f"no reply from {address}")
    context["RESPONSE_TIME"] = echo.avg_rtt_ms
    return ProbeResult(context, latency_ms=echo.avg_rtt_ms)
