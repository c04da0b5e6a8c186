"""Probes: one module per monitor kind, one entry point (run_probe) that never raises."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable
from typing import cast

from ...model.monitor import MonitorSpec
from .errors import describe
from .guard import AddressGuard, AddressRefused, GuardedResolver, make_session
from .http import probe_http
from .icmp import probe_icmp
from .result import ProbeEnv, ProbeResult
from .tcp import probe_tcp
from .tls import probe_tls
from .websocket import probe_websocket

__all__ = [
    "AddressGuard",
    "AddressRefused",
    "GuardedResolver",
    "ProbeEnv",
    "ProbeResult",
    "make_session",
    "run_probe",
]

Probe = Callable[[MonitorSpec, ProbeEnv], Awaitable[ProbeResult]]

PROBES: dict[str, Probe] = {
    "http": probe_http,
    "tcp": probe_tcp,
    "tls": probe_tls,
    "icmp": probe_icmp,
    "websocket": probe_websocket,
}

# Kinds whose client library is heavy (dnspython, grpcio, aiormq, aiomqtt, PyMySQL, asyncpg,
# redis-py: ~0.15 s of imports together) load on the first probe of that kind, so a daemon
# that never probes them does not pay for them at every start (issue 20: restart <= 2 s).
LAZY_PROBES: dict[str, str] = {
    "dns": "dns",
    "postgres": "postgres",
    "redis": "redis",
    "mysql": "mysql",
    "mqtt": "mqtt",
    "amqp": "amqp",
    "grpc": "grpc",
}


def probe_for(kind: str) -> Probe | None:
    """The probe of `kind`, importing its module on first use; None for a kind not probed."""
    probe = PROBES.get(kind)
    if probe is None and kind in LAZY_PROBES:
        module = importlib.import_module(f".{LAZY_PROBES[kind]}", __name__)
        probe = cast(Probe, getattr(module, f"probe_{kind}"))
        PROBES[kind] = probe
    return probe


async def run_probe(spec: MonitorSpec, env: ProbeEnv) -> ProbeResult:
    """Probe spec once within spec.timeout. Never raises: every failure is ProbeResult.error.

    Cancellation from outside (scheduler shutdown) still propagates.
    """
    probe = probe_for(spec.kind)
    if probe is None:
        return ProbeResult({}, error=f"{spec.kind} monitors are not probed")
    try:
        async with asyncio.timeout(spec.timeout):
            return await probe(spec, env)
    except Exception as exc:  # a probe must never take the scheduler down
        return ProbeResult({"CONNECTED": False}, error=describe(exc, spec.timeout))
