"""The sampler: one drift-corrected tick samples every simulated and local server.

Each sample goes to the history writer, to the latest-state map the websocket snapshot reads
(``latest`` / ``all_latest``), and to the bus (topic ``servers.<id>.metrics``, kind
``server.metrics``). Agent servers are sampled by their agent's pushes instead; one that
stays silent for three intervals is marked ``unreachable`` (and ``running`` on its next push).
Environments' ``resources`` JSON is rewritten from their servers' latest samples at most every
``environment_update_interval``, all environments in one transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from ..bus import Bus
from ..clock import now_iso
from ..config import SamplingConfig
from ..inventory.index import InventoryIndex
from ..inventory.service import InventoryService
from ..model.inventory import AnyEntity, ServerPatch, ServerStatus
from ..model.sample import Sample
from ..problem import Problem
from ..store.links import Hierarchy
from ..store.protocols import SampleReader, SampleSink
from ..store.resources import write_resources
from ..store.sql import Database
from . import simulated
from .local import LocalReader, LocalUnavailable

log = logging.getLogger("dragonopsd.sampling")

SILENT_INTERVALS = 3
# Servers in these states produce no samples of their own (a stopped machine has no load).
QUIET = frozenset({"stopped", "provisioning", "unreachable"})


@dataclass
class Target:
    """A server and what the sampler tracks about it."""

    id: str
    environment_id: str
    sampling: str
    status: str
    heard: float = 0.0  # loop time of the last push (agents), or when tracking started
    interval: float = 0.0  # seconds the agent said it pushes every (0: [sampling] interval)


class Sampler:
    """Produces, stores and announces server samples; aggregates them per environment."""

    def __init__(
        self,
        cfg: SamplingConfig,
        db: Database,
        bus: Bus,
        *,
        inventory: InventoryService,
        index: InventoryIndex,
        writer: SampleSink,
        query: SampleReader,
        local: LocalReader | None = None,
        watchers: Sequence[Callable[[Sample], None]] = (),
    ) -> None:
        self.cfg = cfg
        self.writer = writer
        self.query = query
        self._db = db
        self._bus = bus
        self._inventory = inventory
        self._index = index
        self._synced: Hierarchy | None = None  # the index snapshot _targets were made from
        self._local = local or LocalReader()
        self._local_failed = False
        # Handed each newest sample as it is accepted (resource alerts): the in-memory stream.
        self._watchers = tuple(watchers)
        self._targets: dict[str, Target] = {}
        self._latest: dict[str, Sample] = {}
        self._envs_written: set[str] = set()
        self._next_env_write = 0.0
        self.ticks = 0

    # -- what the API and the websocket hub read ------------------------------------------

    def latest(self, server_id: str) -> Sample | None:
        """The newest sample of a server, or None before its first."""
        self._sync()
        return self._latest.get(server_id)

    def all_latest(self) -> list[Sample]:
        """The newest sample of every server that has one (the websocket snapshot)."""
        self._sync()
        return list(self._latest.values())

    def sampling_of(self, server_id: str) -> str | None:
        """The server's sampling source as last loaded, or None for an unknown server."""
        target = self._sync().get(server_id)
        return target.sampling if target else None

    # -- inventory --------------------------------------------------------------------------

    def _sync(self) -> dict[str, Target]:
        """The targets, remade when the index has a new snapshot (keeping what is tracked
        about each server); otherwise one identity check."""
        tree = self._index.hierarchy
        if tree is self._synced:
            return self._targets
        now = asyncio.get_running_loop().time()
        fresh: dict[str, Target] = {}
        for ident, server in tree.servers.items():
            old = self._targets.get(ident)
            heard = old.heard if old and old.sampling == server.sampling else now
            interval = old.interval if old else 0.0
            fresh[ident] = Target(
                ident, server.environment_id, server.sampling, server.status, heard, interval
            )
        self._targets, self._synced = fresh, tree
        for gone in self._latest.keys() - fresh.keys():
            del self._latest[gone]
        return fresh

    # -- the tick -------------------------------------------------------------------------

    async def run(self) -> None:
        """Tick every interval on a fixed grid (missed ticks are skipped, not bunched)."""
        loop = asyncio.get_running_loop()
        interval = self.cfg.interval
        next_at = loop.time()
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("sampling tick failed")
            next_at += interval
            now = loop.time()
            if next_at < now:
                next_at += (now - next_at) // interval * interval + interval
            await asyncio.sleep(next_at - now)

    async def tick(self) -> None:
        """Sample every simulated and local server, check agents, update environments."""
        self.ticks += 1
        now = time.time()
        targets = list(self._sync().values())
        local = [t for t in targets if t.sampling == "local" and t.status not in QUIET]
        reading = await self._read_local() if local else None
        for t in targets:
            if t.status in QUIET:
                continue
            if t.sampling == "simulated":
                self._accept(simulated.sample(t.id, now))
            elif t.sampling == "local" and reading is not None:
                self._accept(msgspec.structs.replace(reading, server_id=t.id))
        await self._check_agents(targets)
        loop_now = asyncio.get_running_loop().time()
        if loop_now >= self._next_env_write:
            self._next_env_write = loop_now + self.cfg.environment_update_interval
            await self._write_environments(now)

    async def _read_local(self) -> Sample | None:
        try:
            reading = await self._local.sample("")
        except (LocalUnavailable, OSError, ValueError) as exc:
            if not self._local_failed:  # once, not every tick
                log.error("local sampling unavailable: %s", exc)
            self._local_failed = True
            return None
        self._local_failed = False
        return reading

    def _accept(self, sample: Sample) -> None:
        """Store, remember and announce one sample (the newest only is remembered/announced)."""
        self.writer.submit(sample)
        previous = self._latest.get(sample.server_id)
        if previous is None or sample.at >= previous.at:
            self._latest[sample.server_id] = sample
            self._bus.publish(f"servers.{sample.server_id}.metrics", sample, "server.metrics")
            for watch in self._watchers:
                watch(sample)

    # -- agents ---------------------------------------------------------------------------

    async def push(self, server_id: str, samples: list[Sample], interval: float | None) -> int:
        """Take an agent's samples; its server comes back to ``running`` if it was unreachable.

        409 when the server is not an agent server (its samples come from elsewhere).
        """
        await self._index.current()  # a write announced a moment ago (its sampling) counts
        target = self._sync().get(server_id)
        if target is None:  # made by another process: its event may still be on its way
            await self._index.refresh()
            target = self._sync().get(server_id)
        if target is None or target.sampling != "agent":
            source = target.sampling if target else "unknown"
            raise Problem(
                409,
                f'server {server_id} is sampled by the daemon (sampling "{source}"), not by an '
                f'agent; set its sampling to "agent" to push samples (PATCH /api/servers/'
                f'{server_id} {{"sampling": "agent"}})',
                kind="sampling-not-agent",
            )
        for sample in sorted(samples, key=lambda s: s.at):
            self._accept(sample)
        target.heard = asyncio.get_running_loop().time()
        if interval is not None:
            target.interval = interval
        if target.status == "unreachable":
            await self._set_status(target, "unreachable", "running")
        return len(samples)

    async def hear_peers(self) -> None:
        """With several cores: an agent pushes to whichever core it reaches, and the core that
        holds the ``sampling`` lease decides when an agent has gone silent. Samples accepted
        by another core reach this one as bus events (the websockets' ``servers.<id>.metrics``):
        each counts as hearing from that server's agent here too. Runs until cancelled."""
        sub = self._bus.subscribe(["servers.*"], maxsize=10_000)  # a prefix pattern
        try:
            while True:
                event = await sub.queue.get()
                if not event.remote or event.kind != "server.metrics":
                    continue  # accepted here (push() noted it already), or not a sample
                server = event.topic[len("servers.") : -len(".metrics")]
                target = self._targets.get(server)
                if target is not None and target.sampling == "agent":
                    target.heard = asyncio.get_running_loop().time()
        finally:
            self._bus.unsubscribe(sub)

    async def _check_agents(self, targets: Iterable[Target]) -> None:
        now = asyncio.get_running_loop().time()
        for t in targets:
            if t.sampling != "agent" or t.status != "running":
                continue
            period = max(self.cfg.interval, t.interval)
            if now - t.heard > SILENT_INTERVALS * period:
                log.warning("agent of server %s silent for %.0f s", t.id, now - t.heard)
                await self._set_status(t, "running", "unreachable")

    async def _set_status(self, target: Target, expected: str, status: ServerStatus) -> None:
        """Move a server from expected to status, unless someone changed it meanwhile."""

        def unchanged(current: AnyEntity) -> None:
            if getattr(current, "status", None) != expected:
                raise Problem(409, "status changed meanwhile")

        target.status = status  # at once: the next tick must not try again
        try:
            await self._inventory.update(
                "servers", target.id, ServerPatch(status=status), precondition=unchanged
            )
        except Problem:  # deleted or changed by someone else: their word wins
            return

    # -- environments ---------------------------------------------------------------------

    async def _write_environments(self, now: float) -> None:
        groups: dict[str, list[Sample]] = {}
        for t in self._targets.values():
            sample = self._latest.get(t.id)
            stale = SILENT_INTERVALS * max(self.cfg.interval, t.interval)
            if sample is not None and now - sample.at <= stale and t.status not in QUIET:
                groups.setdefault(t.environment_id, []).append(sample)
        stamp = now_iso()
        updates = {env: aggregate(samples, stamp) for env, samples in groups.items()}
        for env in self._envs_written - updates.keys():  # went quiet: say so, drop the figures
            updates[env] = aggregate([], stamp)
        envs = {t.environment_id for t in self._targets.values()}
        updates = {env: figures for env, figures in updates.items() if env in envs}
        if not updates:
            return
        await write_resources(self._db, updates)
        self._envs_written = set(groups)
        for env, figures in updates.items():
            self._bus.publish(
                f"environments.{env}.resources",
                {"environmentId": env, "resources": figures},
                "environment.resources",
            )


def aggregate(samples: list[Sample], stamp: str) -> dict[str, Any]:
    """An environment's figures: mean cpu/memory/disk/load, summed traffic, server count.

    With no samples the figures are null, which json_patch turns into "remove the key".
    """
    n = len(samples)
    if not n:
        empty: dict[str, Any] = dict.fromkeys(("cpu", "memory", "disk", "load", "netIn", "netOut"))
        return {**empty, "servers": 0, "updatedAt": stamp}
    return {
        "cpu": round(sum(s.cpu for s in samples) / n, 2),
        "memory": round(sum(s.memory for s in samples) / n, 2),
        "disk": round(sum(s.disk for s in samples) / n, 2),
        "load": round(sum(s.load for s in samples) / n, 2),
        "netIn": round(sum(s.net_in for s in samples)),
        "netOut": round(sum(s.net_out for s in samples)),
        "servers": n,
        "updatedAt": stamp,
    }
