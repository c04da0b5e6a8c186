"""The latest monitor and server state, mirrored into Redis hashes for other processes.

Once a second the newest ``monitor.heartbeat`` per monitor and ``server.metrics`` per server made in
this process (each core mirrors what it made: the monitors it owns, the samples it took; the hashes
hold the whole deployment's) go into ``<prefix>:state:monitors`` / ``<prefix>:state:servers`` (field
= id, value = the event's JSON) in one pipeline, and both hashes get a TTL, so state a dead core
left behind expires rather than lying. While Redis is away only the newest value per id is kept
(bounded by the number of monitors and servers) and written when it returns. Every PRUNE_EVERY
ticks, and after any inventory deletion, fields of monitors and servers that no longer exist go.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from typing import Any

import msgspec

from ..bus import Bus
from ..redislink.client import ERRORS, RedisLink

log = logging.getLogger("dragonopsd.mirror")

INTERVAL = 1.0
TTL_SECONDS = 300  # a hash nobody refreshes for 5 minutes is gone
PRUNE_EVERY = 10
KINDS = {"monitor.heartbeat": "monitor", "server.metrics": "server"}


class StateMirror:
    """Follows the bus and writes the latest state per id to Redis."""

    def __init__(
        self,
        bus: Bus,
        link: RedisLink,
        *,
        monitors: Callable[[], Collection[str]],
        servers: Callable[[], Collection[str]],
    ) -> None:
        self._bus = bus
        self._link = link
        self._known = {"monitor": monitors, "server": servers}
        self.pruned = 0
        self._monitors: dict[str, bytes] = {}
        self._servers: dict[str, bytes] = {}
        self._encode = msgspec.json.Encoder().encode
        self.written = 0

    async def run(self) -> None:
        """Collect and write every INTERVAL until cancelled."""
        sub = self._bus.subscribe(["monitors.*", "servers.*", "inventory"], maxsize=50_000)
        ticks = 0
        try:
            while True:
                await asyncio.sleep(INTERVAL)
                ticks += 1
                while not sub.queue.empty():
                    event = sub.queue.get_nowait()
                    if event.kind == "inventory.changed" and '"deleted"' in _json(event.data):
                        ticks = PRUNE_EVERY  # a server may have gone: prune on this tick
                    if not event.remote:  # the process that made it mirrors it
                        self._keep(event.topic, event.kind, event.data)
                if not self._link.up:
                    continue
                if self._monitors or self._servers:
                    await self._write()
                if ticks >= PRUNE_EVERY:
                    ticks = 0
                    await self._prune()
        finally:
            self._bus.unsubscribe(sub)

    def _keep(self, topic: str, kind: str, data: Any) -> None:
        which = KINDS.get(kind)
        if which is None:
            return
        ident = topic.split(".")[1]
        try:
            value = self._encode(data)
        except (TypeError, ValueError):
            return
        (self._monitors if which == "monitor" else self._servers)[ident] = value

    async def _prune(self) -> None:
        keys = self._link.keys
        client = self._link.client
        try:
            for which, key in (("monitor", keys.monitor_state), ("server", keys.server_state)):
                known = set(self._known[which]())
                names: list[bytes] = await client.hkeys(key)  # type: ignore[assignment]
                fields = [f for f in names if f.decode() not in known]
                if fields:
                    await client.hdel(key, *fields)
                    self.pruned += len(fields)
        except ERRORS as exc:
            self._link.failed(exc, "state prune")

    async def _write(self) -> None:
        keys = self._link.keys
        monitors, servers = self._monitors, self._servers
        self._monitors, self._servers = {}, {}
        try:
            pipe = self._link.client.pipeline(transaction=False)
            for key, values in ((keys.monitor_state, monitors), (keys.server_state, servers)):
                if values:
                    pipe.hset(key, mapping=values)  # type: ignore[arg-type]
                    pipe.expire(key, TTL_SECONDS)
            await pipe.execute()
            self.written += len(monitors) + len(servers)
        except ERRORS as exc:
            self._link.failed(exc, "state mirror")
            # keep what is newer than the failed batch, and retry the rest next time
            self._monitors = monitors | self._monitors
            self._servers = servers | self._servers


def _json(data: Any) -> str:
    """An event payload as JSON text (local Structs and raw JSON from other processes)."""
    try:
        return msgspec.json.encode(data).decode()
    except (TypeError, ValueError):
        return ""
