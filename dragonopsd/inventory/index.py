"""The inventory index: the hierarchy in memory, for the readers that look it up all the time.

The engine (root causes, notification scopes), the sampler (which servers to sample, from what
source) and the metric labels (client, project and environment names) read it on their hot
paths and never query the database. One subscription to ``inventory`` events keeps it current,
whichever process made the write. A write is read at once, and the writes that arrive while a
re-read runs are all answered by the one next re-read: one re-read at a time, one per burst,
so however fast the writes come the index keeps at most one reader connection busy (each write
costs its writer more, an fsync). A re-read that fails is logged and tried again after a pause
that grows, without waiting for the next write and without ending the loop.

Each refresh swaps ``hierarchy`` whole: a reader holding it sees one consistent snapshot, and
can tell a new one by identity (``is not``) to rebuild what it derives from it.
"""

from __future__ import annotations

import asyncio
import logging

from ..bus import Bus, Subscription
from ..model.principal import Principal
from ..store.links import Hierarchy, read_hierarchy
from ..store.sql import Database
from .reach import EVERYTHING, Reach, Reaches

log = logging.getLogger("dragonopsd.inventory")

RETRY_FIRST = 0.5  # after a failed re-read: 0.5 s, 1 s, 2 s ... up to RETRY_MAX
RETRY_MAX = 30.0


class InventoryIndex:
    """Every client, project, environment and server: names, parent links, server states."""

    def __init__(self, db: Database, bus: Bus) -> None:
        self._db = db
        self._bus = bus
        self._sub: Subscription | None = None
        # Re-reads one at a time: two at once would be wasted work, and the older one could
        # land last and put back what the newer one had replaced.
        self._lock = asyncio.Lock()
        self.hierarchy = Hierarchy()
        self._reading = False  # the loop took events and has not finished re-reading yet
        self._reaches = Reaches()

    async def start(self) -> None:
        """Subscribe, then load: a write in between is read twice, never missed."""
        self._sub = self._bus.subscribe(["inventory"], maxsize=100)
        try:
            await self.refresh()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop following inventory events."""
        if self._sub is not None:
            self._bus.unsubscribe(self._sub)
            self._sub = None

    @property
    def pending(self) -> bool:
        """True while a write was announced that ``hierarchy`` may not hold yet."""
        return self._reading or (self._sub is not None and not self._sub.queue.empty())

    async def current(self) -> Hierarchy:
        """The hierarchy holding every write announced so far, re-read first when one may be
        missing: for the rare reader that answers a request made just after a write."""
        if self.pending:
            await self.refresh()
        return self.hierarchy

    async def reach(self, principal: Principal | None) -> Reach:
        """What a caller may see: everything unless it carries a scope, then the ids its scope
        reaches in the hierarchy holding every write announced so far."""
        if principal is None or principal.scope is None:
            return EVERYTHING
        return self._reaches.of(principal, await self.current())

    def reach_now(self, principal: Principal | None) -> Reach:
        """As ``reach``, from the snapshot held now (for hot paths that cannot wait: the
        websocket fan-out; a write not yet read shows up at the next event)."""
        if principal is None or principal.scope is None:
            return EVERYTHING
        return self._reaches.of(principal, self.hierarchy)

    async def refresh(self) -> None:
        """Re-read the hierarchy now (the sampler asks when a server it does not know pushes)."""
        async with self._lock:
            self.hierarchy = await read_hierarchy(self._db)

    async def run(self) -> None:
        """Re-read after inventory writes until cancelled; start() first."""
        sub = self._sub
        if sub is None:
            raise RuntimeError("InventoryIndex.run() before start()")
        pause = RETRY_FIRST
        stale = False
        while True:
            if not stale:
                await sub.queue.get()
            self._reading = True
            while not sub.queue.empty():  # everything written so far: one re-read
                sub.queue.get_nowait()
            try:
                stale = not await self._try_refresh(pause)
            finally:
                self._reading = False
            if stale:  # tried again after the pause, whether or not anything is written
                await asyncio.sleep(pause)
                pause = min(pause * 2, RETRY_MAX)
            else:
                pause = RETRY_FIRST

    async def _try_refresh(self, pause: float) -> bool:
        try:
            await self.refresh()
        except Exception:  # a busy or changed store must not freeze the index for good
            log.exception("could not re-read the inventory; trying again in %g s", pause)
            return False
        return True
