"""Probes: one module per monitor kind, one entry point (run_probe) that never raises."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ...model.monitor import MonitorSpec
from .amqp import probe_amqp
from .dns import probe_dns
from .errors import describe
from .grpc import probe_grpc
from .guard import AddressGuard, AddressRefused, GuardedResolver, make_session
from .http import probe_http
from .icmp import probe_icmp
from .mqtt import probe_mqtt
from .mysql import probe_mysql
from .postgres import probe_postgres
from .redis import probe_redis
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
    "dns": probe_dns,
    "icmp": probe_icmp,
    "postgres": probe_postgres,
    "redis": probe_redis,
    "mysql": probe_mysql,
    "mqtt": probe_mqtt,
    "amqp": probe_amqp,
    "websocket": probe_websocket,
    "grpc": probe_grpc,
}


async def run_probe(spec: MonitorSpec, env: ProbeEnv) -> ProbeResult:
    """Probe spec once within spec.timeout. Never raises: every failure is ProbeResult.error.

    Cancellation from outside (scheduler shutdown) still propagates.
    """
    probe = PROBES.get(spec.kind)
    if probe is None:
        return ProbeResult({}, error=f"{spec.kind} monitors are not probed")
    try:
        async with asyncio.timeout(spec.timeout):
            return await probe(spec, env)
    except Exception as exc:  # a probe must never take the scheduler down
        return ProbeResult({"CONNECTED": False}, error=describe(exc, spec.timeout))
