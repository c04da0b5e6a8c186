"""gRPC probe: the standard grpc.health.v1.Health/Check for a service name, with grpcio."""

from __future__ import annotations

import ssl
import time
from typing import Any

import grpc  # type: ignore[import-untyped]  # ships no py.typed; used through a few calls
import grpc.aio  # type: ignore[import-untyped]
from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped]

from ...model.monitor import MonitorSpec
from .guard import allowed_addresses
from .login import AuthenticationFailed
from .result import ProbeEnv, ProbeResult

_OPTIONS: list[tuple[str, Any]] = [
    # Never through a proxy picked up from the environment, as with HTTP probes.
    ("grpc.enable_http_proxy", 0),
    ("grpc.primary_user_agent", "dragonopsd"),
]


def _credentials(env: ProbeEnv) -> Any:
    """TLS credentials: the configured CA ([probes]) if any, else grpc's own root store."""
    roots = None
    if env.ssl_context is not None:
        pems = [ssl.DER_cert_to_PEM_cert(d) for d in env.ssl_context.get_ca_certs(True)]
        roots = "".join(pems).encode() or None
    return grpc.ssl_channel_credentials(root_certificates=roots)


def _failure(exc: Any) -> Exception:
    """An RPC error as the exception describe() reads; grpc's details can be long."""
    code, details = exc.code(), str(exc.details() or "")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return TimeoutError()
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return AuthenticationFailed()
    if code == grpc.StatusCode.UNAVAILABLE and "Connection refused" in details:
        return ConnectionRefusedError(111, "Connection refused")
    if code == grpc.StatusCode.NOT_FOUND:
        return OSError("health service does not know this service name")
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return OSError("the server does not implement grpc.health.v1.Health")
    return OSError(f"grpc {code.name}: {details}"[:200])


async def probe_grpc(spec: MonitorSpec, env: ProbeEnv) -> ProbeResult:
    """Health/Check spec.service on spec.host:spec.port; GRPC_STATUS, RESPONSE_TIME, IP."""
    assert spec.host is not None and spec.port is not None
    ip = (await allowed_addresses(env.guard, spec.host, spec.port, env.resolver))[0]
    target = f"[{ip}]:{spec.port}" if ":" in ip else f"{ip}:{spec.port}"
    if spec.tls:
        # Dial the judged IP; name the host for SNI and the certificate check.
        options = [*_OPTIONS, ("grpc.ssl_target_name_override", spec.host.strip("[]"))]
        channel = grpc.aio.secure_channel(target, _credentials(env), options=options)
    else:
        channel = grpc.aio.insecure_channel(target, options=_OPTIONS)
    started = time.perf_counter()
    try:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service=spec.service or "")
        try:
            response = await stub.Check(request, timeout=spec.timeout)
        except grpc.aio.AioRpcError as exc:
            raise _failure(exc) from None
    finally:
        await channel.close()
    elapsed = (time.perf_counter() - started) * 1000
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    context = {"CONNECTED": True, "RESPONSE_TIME": elapsed, "IP": ip, "GRPC_STATUS": status}
    return ProbeResult(context, latency_ms=elapsed)
