"""Which cores are alive: each heartbeats in Redis, in Redis's clock, and reads the others'.

A core writes its name with the current time (``RedisLink.now()``, Redis's TIME, as probe
workers do) into ``<prefix>:cluster:alive`` every ``dead_after / 5`` seconds, and what it says
about itself into ``<prefix>:cluster:cores``; the same transaction reads back every core seen
within ``dead_after``. Those are the live cores, and ownership follows them.

Cut off from Redis, a core cannot tell whether the others have taken its monitors. Once its
last heartbeat is ``dead_after`` old they have (they no longer see it), so it stops owning
anything ("isolated") until Redis answers again. A core that was alone in its last view keeps
everything: nobody else exists to take over, and Redis stays optional for probing on one host.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable

import msgspec

from ..clock import iso_of, now_iso
from ..redislink.client import ERRORS, RedisLink

log = logging.getLogger("dragonopsd.cluster")

# Cores silent this long are dropped from the list /api/cluster shows as gone.
FORGET_AFTER = 3600.0

Listener = Callable[[], Awaitable[None]]


class CoreInfo(msgspec.Struct, rename="camel", forbid_unknown_fields=False):
    """What a core says about itself in Redis."""

    address: str
    version: str
    since: str
    instance: str  # per process: a second process under the same name is told apart


class Member(msgspec.Struct, rename="camel"):
    """One core as /api/cluster lists it."""

    node: str
    address: str
    status: str  # alive | gone
    since: str  # alive: when it started; gone: its last heartbeat
    owned_monitors: int
    version: str


class Membership:
    """This core's heartbeat and its view of the live cores."""

    def __init__(
        self, link: RedisLink, *, node: str, address: str, version: str, dead_after: float
    ) -> None:
        self._link = link
        self.node = node
        self.dead_after = dead_after
        self.every = max(0.5, dead_after / 5)
        self.info = CoreInfo(address, version, now_iso(), os.urandom(6).hex())
        self._encoded = msgspec.json.encode(self.info)
        self.live: tuple[str, ...] = ()  # sorted, as of the last heartbeat that got through
        self.isolated = False
        self._last_ok: float | None = None  # monotonic time of that heartbeat
        self._first = True
        self._listeners: list[Listener] = []
        self._active = self.active()
        self.name_clashes = 0  # heartbeats that found another process's under this name

    def on_change(self, listener: Listener) -> None:
        """Call listener (awaited, in order) whenever the active cores change."""
        self._listeners.append(listener)

    def active(self) -> tuple[str, ...]:
        """The cores ownership is computed over: the live ones; just this one while Redis has
        never answered or this core was alone; none while isolated."""
        if self.isolated:
            return ()
        if self.node not in self.live:
            return (self.node,)
        return self.live

    async def beat(self) -> None:
        """One heartbeat and read of the live cores; tells the listeners what changed."""
        link = self._link
        keys = link.keys
        try:
            now = link.now()
            async with link.client.pipeline(transaction=True) as pipe:
                pipe.hget(keys.cluster_cores, self.node)  # who wrote under this name last
                pipe.zadd(keys.cluster_alive, {self.node: now})
                pipe.hset(keys.cluster_cores, self.node, self._encoded)
                pipe.zrangebyscore(keys.cluster_alive, now - self.dead_after, "+inf")
                pipe.zremrangebyscore(keys.cluster_alive, "-inf", now - FORGET_AFTER)
                replies = await pipe.execute()
        except ERRORS as exc:
            link.failed(exc, "cluster heartbeat")
            self._silent()
        else:
            self._last_ok = time.monotonic()
            self._check_name(replies[0])
            live = tuple(sorted(n.decode() if isinstance(n, bytes) else n for n in replies[3]))
            if self.isolated:
                log.warning("cluster: redis answers again; core %s rejoins", self.node)
            self.isolated = False
            if live != self.live:
                log.info("cluster: live cores %s", ", ".join(live) or "none")
            self.live = live
        await self._tell()

    def _check_name(self, previous: bytes | None) -> None:
        """Two processes under one name would both own that name's share (double checks).
        At the first heartbeat another instance's entry is this core's predecessor (a
        restart); after it, another process wrote under this name since the last one."""
        if previous is None or self._first:
            self._first = False
            return
        try:
            instance = msgspec.json.decode(previous, type=CoreInfo).instance
        except msgspec.DecodeError:
            return
        if instance != self.info.instance:
            self.name_clashes += 1
            if self.name_clashes == 1 or self.name_clashes % 100 == 0:
                log.error(
                    "cluster: another process heartbeats as core %s: give each core its own "
                    "[cluster] node (both check the same monitors meanwhile)",
                    self.node,
                )

    def _silent(self) -> None:
        """A heartbeat failed: isolated once the last one that got through is dead_after old,
        unless this core was the only one it knew of."""
        if self.isolated or self._last_ok is None:
            return
        if time.monotonic() - self._last_ok < self.dead_after:
            return
        if self.live and self.live != (self.node,):
            self.isolated = True
            log.error(
                "cluster: no heartbeat through to redis for %.0fs; core %s stops scheduling "
                "(the other cores take its monitors) until redis answers",
                self.dead_after,
                self.node,
            )

    async def _tell(self) -> None:
        active = self.active()
        if active == self._active:
            return
        self._active = active
        for listener in self._listeners:
            try:
                await listener()
            except Exception:  # one listener's bug must not stop the heartbeat
                log.exception("cluster change listener failed")

    async def run(self) -> None:
        """Heartbeat until cancelled."""
        while True:
            await asyncio.sleep(self.every)
            await self.beat()

    async def leave(self) -> None:
        """Stopping: take this core out of the live set now, so its monitors move at once
        instead of after dead_after."""
        try:
            async with asyncio.timeout(self._link.cfg.connect_timeout):
                await self._link.client.zrem(self._link.keys.cluster_alive, self.node)
        except ERRORS as exc:
            self._link.failed(exc, "cluster leave")

    async def members(self, owned: Callable[[tuple[str, ...]], dict[str, int]]) -> list[Member]:
        """Every core seen in the last hour, alive ones first; owned() counts the monitors of
        each live core. Raises one of ERRORS when Redis does not answer."""
        link = self._link
        async with link.client.pipeline(transaction=False) as pipe:
            pipe.zrange(link.keys.cluster_alive, 0, -1, withscores=True)
            pipe.hgetall(link.keys.cluster_cores)
            seen, infos = await pipe.execute()
        cutoff = link.now() - self.dead_after
        decode = msgspec.json.Decoder(CoreInfo).decode
        rows: list[tuple[str, float]] = [(_text(n), float(t)) for n, t in seen]
        alive = tuple(sorted(n for n, t in rows if t >= cutoff))
        counts = owned(alive)
        members = []
        for name, at in rows:
            raw = infos.get(name.encode()) or infos.get(name)
            try:
                info = decode(raw) if raw else CoreInfo("", "", "", "")
            except msgspec.DecodeError:
                info = CoreInfo("", "", "", "")
            up = name in alive
            members.append(
                Member(
                    node=name,
                    address=info.address,
                    status="alive" if up else "gone",
                    since=info.since if up else iso_of(link.local(at)),
                    owned_monitors=counts.get(name, 0) if up else 0,
                    version=info.version,
                )
            )
        members.sort(key=lambda m: (m.status != "alive", m.node))
        return members


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
