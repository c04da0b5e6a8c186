"""Leases: one core of the deployment runs each singleton job (retention, config sync...).

A lease is one Redis key holding its holder's name, taken with ``SET NX PX`` and renewed by
its holder with a check-and-set script (only the holder extends it, so a core that paused past
the expiry cannot renew a lease another core has taken meanwhile). A holder that dies stops
renewing; the key expires after ``ttl`` and the next core to ask takes it over.

``guarded`` runs a job's task only while this core holds its lease: started when taken,
cancelled when lost. With Redis away the lease cannot be renewed; the job keeps running only
while this core is alone in the deployment (membership.py), as it would on one host.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from ..redislink.client import ERRORS, RedisLink
from ..redislink.tasks import cancel_and_wait

log = logging.getLogger("dragonopsd.cluster")

# KEYS[1] the lease, ARGV[1] the holder, ARGV[2] ttl in ms: extend it only if it is ours.
RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
# Give it up only if it is ours (it may have expired and been taken by another core).
RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""

Job = Callable[[], Coroutine[Any, Any, None]]


class Lease:
    """One named lease as seen by one core."""

    def __init__(
        self, link: RedisLink, name: str, holder: str, ttl: float, alone: Callable[[], bool]
    ) -> None:
        self._link = link
        self.name = name
        self.holder = holder
        self.ttl_ms = max(1000, int(ttl * 1000))
        self._key = link.keys.lease(name)
        self._alone = alone
        self.held = False

    async def hold(self) -> bool:
        """Take the lease if free, or renew it if ours; whether this core holds it now."""
        client = self._link.client
        try:
            if self.held:
                renewed = await client.eval(RENEW, 1, self._key, self.holder, self.ttl_ms)
                held = bool(renewed)
                if not held:  # expired and taken by another core (e.g. after a long pause)
                    held = bool(await client.set(self._key, self.holder, nx=True, px=self.ttl_ms))
            else:
                held = bool(await client.set(self._key, self.holder, nx=True, px=self.ttl_ms))
        except ERRORS as exc:
            self._link.failed(exc, f"lease {self.name}")
            held = self._alone()
        if held != self.held:
            log.info("cluster: lease %s %s", self.name, "taken" if held else "lost")
        self.held = held
        return held

    async def release(self) -> None:
        """Give the lease up (stopping), so another core takes it without waiting for ttl."""
        if not self.held:
            return
        self.held = False
        try:
            async with asyncio.timeout(self._link.cfg.connect_timeout):
                await self._link.client.eval(RELEASE, 1, self._key, self.holder)
        except ERRORS as exc:
            self._link.failed(exc, f"lease {self.name} release")

    async def guarded(self, job: Job) -> None:
        """Run job's task while the lease is held, checking every third of the ttl; until
        cancelled. The job is cancelled before the lease could lapse unrenewed."""
        task: asyncio.Task[None] | None = None
        try:
            while True:
                held = await self.hold()
                if held and (task is None or task.done()):
                    task = asyncio.create_task(job(), name=f"lease-{self.name}")
                elif not held and task is not None:
                    await cancel_and_wait(task)
                    task = None
                await asyncio.sleep(self.ttl_ms / 3000)
        finally:
            if task is not None:
                await cancel_and_wait(task)
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self.release())
