"""This core of the deployment: its membership, what it owns, and its singleton leases.

Built in app.py when ``[redis] url`` is set and handed to the engine and the lifecycle; with
one core alive it owns every monitor and holds every lease, so one core with Redis behaves as
one core without it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Collection, Coroutine
from typing import Any

import msgspec

from ..bus import Bus, Subscription
from ..config import Config
from ..redislink.client import RedisLink
from .lease import Job, Lease
from .membership import Listener, Member, Membership
from .rendezvous import owner, shares

log = logging.getLogger("dragonopsd.cluster")

# The singleton jobs: one core of the deployment runs each.
SINGLETONS = ("history-maintenance", "sample-maintenance", "config-sync", "sampling")
# Bus topic of monitor writes, so every core's engine follows a write made on any of them.
CHANGES = "cluster.monitors"


class MonitorChange(msgspec.Struct, rename="camel"):
    """A monitor was created, changed or deleted on ``node``."""

    node: str
    monitor_id: str
    op: str  # upsert | delete | push (a push call taken here for the owner) | check (run now)
    # push: the call as the API read it (monitoring's PushCall, field by field), for the owner
    call: dict[str, Any] | None = None


def node_name(cfg: Config) -> str:
    """``[cluster] node``, else host:port (the host's name when bound to every address)."""
    if cfg.cluster.node:
        return cfg.cluster.node
    host = cfg.server.host
    if cfg.server.port == 0:  # a port chosen at bind time: the state directory (one serve
        # each, locked) tells cores apart and stays the same when the core restarts
        return f"{socket.gethostname()}:{os.path.abspath(cfg.state_dir())}"
    if host in ("0.0.0.0", "::", "127.0.0.1", "::1", "localhost"):  # noqa: S104  -- a name, not a bind
        host = socket.gethostname()
    return f"{host}:{cfg.server.port}"


class Core:
    """Membership, ownership by rendezvous hashing, and leases, for one core."""

    def __init__(self, link: RedisLink, bus: Bus, cfg: Config, version: str) -> None:
        self.node = node_name(cfg)
        self._bus = bus
        address = f"http://{cfg.server.host}:{cfg.server.port}"
        self.membership = Membership(
            link,
            node=self.node,
            address=address,
            version=version,
            dead_after=cfg.cluster.dead_after,
        )
        alone = self.alone
        self._leases = {
            name: Lease(link, name, self.node, cfg.cluster.dead_after, alone) for name in SINGLETONS
        }

    def alone(self) -> bool:
        """Whether this core is the only live one it knows of."""
        return self.membership.active() == (self.node,)

    @property
    def isolated(self) -> bool:
        """Cut off from Redis for dead_after with other cores about: owns nothing."""
        return self.membership.isolated

    def owns(self, key: str) -> bool:
        """Whether this core owns a monitor (schedules it) or a server (evaluates its resource
        alerts) now, by its id."""
        return owner(key, self.membership.active()) == self.node

    def cores(self) -> int:
        """Live cores as this core sees them (0 while isolated)."""
        return len(self.membership.active())

    def on_change(self, listener: Listener) -> None:
        """Call listener whenever ownership may have moved (a core joined, left or died)."""
        self.membership.on_change(listener)

    def announce(self, monitor_id: str, op: str, call: dict[str, Any] | None = None) -> None:
        """Tell the other cores a monitor was written here (they reload it from the store), or
        hand its owner a push call or a "check now" that arrived here."""
        change = MonitorChange(self.node, monitor_id, op, call)
        self._bus.publish(CHANGES, change, "monitor.changed")

    def changes(self) -> Subscription:
        """The monitor writes of every core (this one's too: skip those by node), and every
        monitor's status changes (the owner's, for the copies the other cores show)."""
        return self._bus.subscribe([CHANGES, "monitors"], maxsize=100_000)

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop receiving monitor writes."""
        self._bus.unsubscribe(sub)

    def change_of(self, data: Any) -> MonitorChange | None:
        """Another core's change from a bus event's payload (raw JSON from Redis); None for
        this core's own or a payload that is not one."""
        if isinstance(data, MonitorChange):
            return None  # published here: delivered locally as the Struct
        try:
            change = msgspec.json.decode(bytes(data), type=MonitorChange)
        except (msgspec.DecodeError, TypeError):
            return None
        return None if change.node == self.node else change

    async def members(self, monitor_ids: Collection[str]) -> list[Member]:
        """Every core (alive or recently gone) with its share of monitor_ids."""
        return await self.membership.members(lambda live: dict(shares(monitor_ids, live)))

    def singleton(self, name: str, job: Job) -> Callable[[], Coroutine[Any, Any, None]]:
        """job's task factory, run only while this core holds the lease ``name``."""
        lease = self._leases[name]

        async def guarded() -> None:
            await lease.guarded(job)

        return guarded

    async def hold(self, name: str) -> bool:
        """Take (or renew) one lease now: for one-off jobs run at start."""
        return await self._leases[name].hold()

    async def release(self, name: str) -> None:
        """Give one lease up (a one-off job is done)."""
        await self._leases[name].release()

    async def run(self) -> None:
        """Heartbeat until cancelled; leave the live set on the way out."""
        try:
            await self.membership.run()
        finally:
            await asyncio.shield(self.membership.leave())

    async def start(self) -> None:
        """The first heartbeat, before the engine decides what it owns."""
        await self.membership.beat()
        log.info(
            "cluster: core %s, %d live core(s)%s",
            self.node,
            self.cores(),
            "" if self.membership.live else " (redis not answering yet: owns everything)",
        )
