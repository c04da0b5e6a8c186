"""TCP probe: can a connection to host:port be opened, and how long does it take."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time

from ...model.monitor import MonitorSpec
from .guard import allowed_addresses
from .result import ProbeEnv, ProbeResult

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def connect(
    env: ProbeEnv,
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
) -> tuple[Stream, str, float]:
    """Open a stream to the first allowed address of host that accepts; (stream, ip, ms).

    Connecting by IP means the address the guard approved is the one dialled: no second
    resolution can swap it (DNS rebinding). Each allowed address is tried in resolver order,
    as a browser would, and the last failure is raised when none accepts.
    """
    addresses = await allowed_addresses(env.guard, host, port, env.resolver)
    failure: OSError | None = None
    for ip in addresses:
        started = time.perf_counter()
        try:
            stream = await asyncio.open_connection(
                ip,
                port,
                ssl=ssl_context,
                # SNI and certificate name checks use the name the user wrote, not the IP.
                server_hostname=host.strip("[]") if ssl_context is not None else None,
            )
        except ssl.SSLError:
            raise  # the server answered; another address would not change the verdict
        except OSError as exc:
            failure = exc
            continue
        return stream, ip, (time.perf_counter() - started) * 1000
    assert failure is not None  # allowed_addresses never returns an empty list
    raise failure


def close(writer: asyncio.StreamWriter) -> None:
    """Drop the connection without waiting on the peer (a TLS close_notify could stall)."""
    with contextlib.suppress(OSError):
        writer.transport.abort()


async def probe_tcp(spec: MonitorSpec, env: ProbeEnv) -> ProbeResult:
    """Connect to spec.host:spec.port; CONNECTED, RESPONSE_TIME (connect time), IP."""
    assert spec.host is not None and spec.port is not None
    (_, writer), ip, elapsed = await connect(env, spec.host, spec.port)
    close(writer)
    context = {"CONNECTED": True, "RESPONSE_TIME": elapsed, "IP": ip}
    return ProbeResult(context, latency_ms=elapsed)
