"""grpc monitors against a grpcio health server started by the test on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc.aio  # type: ignore[import-untyped]
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped]
from grpc_health.v1.health import aio as health_aio  # type: ignore[import-untyped]
from service_probes import closed_port, probe, probe_env, silent_server

from dragonopsd.monitoring.conditions import evaluate_all, parse_all

Status = health_pb2.HealthCheckResponse


@pytest.fixture
async def health_server() -> AsyncIterator[int]:
    """A gRPC server whose health service says: '' and shop SERVING, stock NOT_SERVING."""
    server = grpc.aio.server()
    servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    await servicer.set("", Status.SERVING)
    await servicer.set("shop", Status.SERVING)
    await servicer.set("stock", Status.NOT_SERVING)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield port
    finally:
        await server.stop(None)


async def test_serving_not_serving_and_unknown(health_server: int) -> None:
    async with probe_env() as env:
        whole, _ = await probe(env, "grpc", host="127.0.0.1", port=health_server)
        shop, _ = await probe(env, "grpc", host="127.0.0.1", port=health_server, service="shop")
        stock, _ = await probe(env, "grpc", host="127.0.0.1", port=health_server, service="stock")
        unknown, _ = await probe(env, "grpc", host="127.0.0.1", port=health_server, service="nope")
    assert whole.error is None and whole.context["GRPC_STATUS"] == "SERVING"
    assert shop.context["GRPC_STATUS"] == "SERVING" and shop.context["IP"] == "127.0.0.1"
    serving = parse_all(["[GRPC_STATUS] == SERVING", "[RESPONSE_TIME] < 5s"])
    assert all(v.success for v in evaluate_all(serving, shop.context))
    assert stock.context["GRPC_STATUS"] == "NOT_SERVING"
    assert not evaluate_all(serving, stock.context)[0].success
    assert unknown.error == "health service does not know this service name"


async def test_port_closed_is_down() -> None:
    async with probe_env() as env:
        result, _ = await probe(env, "grpc", host="127.0.0.1", port=closed_port())
    assert result.error == "connection refused"


async def test_timeout_against_a_listener_that_never_answers() -> None:
    async with silent_server() as silent, probe_env() as env:
        result, wall = await probe(env, "grpc", host="127.0.0.1", port=silent.port, timeout=1.0)
    assert result.error == "timeout after 1.0s"
    assert wall < 2.5
    assert await silent.all_ended()  # the probe left no connection open behind it
