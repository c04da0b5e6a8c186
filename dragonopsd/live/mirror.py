"""The latest monitor and server state, mirrored into Redis hashes for other processes.

Once a second the newest ``monitor.heartbeat`` per monitor and ``server.metrics`` per server
go into ``<prefix>:state:monitors`` / ``<prefix>:state:servers`` (field = id, value = the
event's JSON) in one pipeline, and both hashes get a TTL, so state a dead core left behind
expires rather than lying. While Redis is away only the newest value per id is kept (bounded
by the number of monitors and servers) and written when it returns.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec

from ..bus import Bus
from ..redislink.client import ERRORS, RedisLink

log = logging.getLogger("dragonopsd.mirror")

INTERVAL = 1.0
TTL_SECONDS = 300  # a hash nobody refreshes for 5 minutes is gone
KINDS = {"monitor.heartbeat": "monitor", "server.metrics": "server"}


class StateMirror:
    """Follows the bus and writes the latest state per id to Redis."""

    def __init__(self, bus: Bus, link: RedisLink) -> None:
        self._bus = bus
        self._link = link
        self._monitors: dict[str, bytes] = {}
        self._servers: dict[str, bytes] = {}
        self._encode = msgspec.json.Encoder().encode
        self.written = 0

    async def run(self) -> None:
        """Collect and write every INTERVAL until cancelled."""
        sub = self._bus.subscribe(["monitors.*", "servers.*"], maxsize=50_000)
        try:
            while True:
                await asyncio.sleep(INTERVAL)
                while not sub.queue.empty():
                    event = sub.queue.get_nowait()
                    self._keep(event.topic, event.kind, event.data)
                if self._link.up and (self._monitors or self._servers):
                    await self._write()
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
