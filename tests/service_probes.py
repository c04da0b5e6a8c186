"""Helpers for the service probe tests (postgres, mysql, redis, mqtt, amqp, websocket, grpc).

Probes run through run_probe with a real session and guard; the secrets lookup is a plain
mapping of name to value, the same callable shape the app builds over the secrets store.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from aiohttp.abc import AbstractResolver

from dragonopsd.config import ProbesConfig
from dragonopsd.model.monitor import MonitorSpec
from dragonopsd.monitoring.probes import (
    AddressGuard,
    ProbeEnv,
    ProbeResult,
    make_session,
    run_probe,
)

Lookup = Callable[[str], Any]


def spec(kind: str, **fields: Any) -> MonitorSpec:
    """A monitor of kind with a short default timeout."""
    fields["given_timeout"] = fields.pop("timeout", 5.0)
    return MonitorSpec(name="service-probe", kind=kind, **fields)  # type: ignore[arg-type]


@asynccontextmanager
async def probe_env(
    secrets: dict[str, str] | None = None,
    *,
    ssl_context: ssl.SSLContext | None = None,
    resolver: AbstractResolver | None = None,
    **probes: Any,
) -> AsyncIterator[ProbeEnv]:
    """A ProbeEnv whose secrets store holds secrets; [probes] keys as keyword arguments."""
    cfg = msgspec.convert(probes, ProbesConfig)
    guard = AddressGuard(cfg)
    session = make_session(cfg, guard, ssl_context=ssl_context, resolver=resolver)
    store = dict(secrets or {})

    async def lookup(name: str) -> str | None:
        return store.get(name)

    try:
        yield ProbeEnv(session, guard, ssl_context=ssl_context, resolver=resolver, secrets=lookup)
    finally:
        await session.close()


async def probe(env: ProbeEnv, kind: str, **fields: Any) -> tuple[ProbeResult, float]:
    """Run one probe; (result, wall seconds)."""
    started = time.perf_counter()
    result = await run_probe(spec(kind, **fields), env)
    return result, time.perf_counter() - started


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class Silent:
    """A listener that accepts and never says a word; counts the connections the client ends."""

    def __init__(self) -> None:
        self.port = 0
        self.accepted = 0
        self.ended = 0

    async def all_ended(self, within: float = 2.0) -> bool:
        """Whether every accepted connection was closed by the prober (it must leave nothing
        open behind a timeout)."""
        async with asyncio.timeout(within):
            while self.ended < self.accepted or not self.accepted:
                await asyncio.sleep(0.02)
        return True


@asynccontextmanager
async def silent_server() -> AsyncIterator[Silent]:
    """A Silent listener on loopback, closed with every connection it still holds."""
    silent = Silent()
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        silent.accepted += 1
        writers.append(writer)
        try:
            while await reader.read(65536):  # whatever the client says goes unanswered
                pass
            silent.ended += 1
        except OSError:
            silent.ended += 1
        finally:
            writer.transport.abort()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    silent.port = server.sockets[0].getsockname()[1]
    try:
        yield silent
    finally:
        server.close()
        for writer in writers:
            writer.transport.abort()
        await asyncio.sleep(0)
        await server.wait_closed()
