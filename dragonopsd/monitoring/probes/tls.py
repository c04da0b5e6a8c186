"""TLS probe: handshake with host:port, verify the chain, report the certificate's expiry."""

from __future__ import annotations

import asyncio
import ssl

from ...model.monitor import MonitorSpec
from .peer import expiry_fields, peer_certificate
from .result import ProbeEnv, ProbeResult, system_context
from .tcp import close, connect


def unverified_context() -> ssl.SSLContext:
    """A client context that completes the handshake whatever the certificate says."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def probe_tls(spec: MonitorSpec, env: ProbeEnv) -> ProbeResult:
    """Handshake with spec.host:spec.port; CONNECTED, RESPONSE_TIME, IP, CERTIFICATE_EXPIRATION.

    With verify_tls (the default) a bad chain, a wrong name or an expired certificate is the
    probe's error; without it the expiry is still reported from the unverified certificate.
    """
    assert spec.host is not None and spec.port is not None
    verify = spec.verify_tls is not False
    if not verify:
        ctx = unverified_context()
    else:
        if env.ssl_context is None:
            # Off the loop: loading the system store reads files (once per process, cached).
            env.ssl_context = await asyncio.to_thread(system_context)
        ctx = env.ssl_context
    (_, writer), ip, elapsed = await connect(env, spec.host, spec.port, ssl_context=ctx)
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        cert, expires_at = expiry_fields(peer_certificate(ssl_object))
        version = ssl_object.version() if ssl_object is not None else None
    finally:
        close(writer)
    context = {"CONNECTED": True, "RESPONSE_TIME": elapsed, "IP": ip, **cert}
    if version:
        context["TLS_VERSION"] = version
    return ProbeResult(context, latency_ms=elapsed, cert_expires_at=expires_at)
