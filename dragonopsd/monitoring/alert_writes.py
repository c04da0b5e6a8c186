"""The alert incident writes: what the evaluator (alerts.py) decided, stored in order, and told
only when the write did it.

The sample path never waits for the database: it decides an opening or a closing in memory and
queues it here. The database is the arbiter between cores: a rule has at most one open incident
on a server (a unique index), so when two cores both take one breach for new (while the live
cores change both may judge a server) one opening goes in and the other meets that row. The
core whose opening went in publishes ``server.alert`` and notifies; the other carries on with
the row it met, silently. Only the write that closes a row tells of the closing. An opening of
a stored rule that another core deleted or disabled (this core's rule book has not reloaded
yet) is turned down: nothing to tell.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from ..clock import now_iso
from ..store.alerts import AlertIncident, AlertRule
from ..store.protocols import AlertRepo
from .alert_notices import closing

log = logging.getLogger("dragonopsd.alerts")


@dataclass(slots=True)
class Track:
    """What is tracked of one rule on one server."""

    rule: AlertRule
    above_since: float | None = None  # sample time the current breach began
    value: float | None = None
    held: bool = False  # the breach is long enough, but a maintenance window holds it back
    incident: AlertIncident | None = None
    notified: bool = False


@dataclass(slots=True)
class Write:
    """An opening or a closing decided on the sample path, to store and then to tell."""

    op: str  # "open" or "close"
    incident: AlertIncident
    track: Track
    value: float | None
    notify: bool  # the notification it sends if its write does the opening / the closing


# Tells of an opening or a closing that was stored: (track, incident, value, notify).
Tell = Callable[[Track, AlertIncident, float | None, bool], None]


class IncidentWrites:
    """One queue of incident writes, stored in order by one task."""

    def __init__(self, store: AlertRepo, tell: Tell) -> None:
        self._store = store
        self._tell = tell
        self._queue: asyncio.Queue[Write] = asyncio.Queue()
        # Openings the store turned down (another core's row was open first, or the rule or the
        # server is gone) that were closed here before the answer came, by id -> the open row
        # (None: there is none): their closing, queued behind, closes that row instead.
        self._lost: dict[str, AlertIncident | None] = {}
        # Closings told whose write failed, by (rule, server): their rows are still open in the
        # database, where the next opening of that rule on that server would meet one and
        # carry on with it silently (no "down" for a new breach). Written again before it.
        self._unwritten: dict[tuple[str, str], AlertIncident] = {}

    def put(self, write: Write) -> None:
        """Queue a decided opening or closing (no I/O)."""
        self._queue.put_nowait(write)

    async def run(self) -> None:
        """Store the writes as they come until cancelled; then what was queued still lands."""
        try:
            while True:
                write = await self._queue.get()
                try:
                    await self._persist(write)
                finally:
                    self._queue.task_done()
        finally:
            while not self._queue.empty():
                await self._persist(self._queue.get_nowait())
                self._queue.task_done()

    async def settled(self) -> None:
        """Wait until every queued write is stored and told of."""
        await self._queue.join()

    async def _persist(self, write: Write) -> None:
        if write.op == "open":
            await self._opened(write)
        else:
            await self._closed(write)

    async def _opened(self, write: Write) -> None:
        track, mine = write.track, write.incident
        key = (mine.rule_id, mine.server_id)
        unwritten = self._unwritten.pop(key, None)
        if unwritten is not None and not await self._close(unwritten):
            self._unwritten[key] = unwritten
        try:
            row, opened = await self._store.open(mine, stored_rule=track.rule.managed_by == "api")
        except Exception:  # memory stays right; the incident row is what is lost
            log.exception("could not open alert incident %s", mine.id)
            row, opened = mine, True  # nothing to arbitrate with: tell as decided
        stale = self._unwritten.get(key)
        if not opened and row is not None and stale is not None and row.id == stale.id:
            row, opened = mine, True  # met a row closed (and told) here: as for a failed write
        if opened:
            self._tell(track, mine, write.value, write.notify)
            return
        if track.incident is not mine:  # closed here already: its closing is queued behind
            self._lost[mine.id] = row
        elif row is None:
            # The rule or the server is gone (another core's write this core's book or index
            # has yet to follow): nothing opened, nothing to tell; the next sample asks again.
            track.incident = None
            track.notified = False
        else:
            # Another core opened this breach's row first and told of it: carry on with its
            # row. The "resolved" answers that "down", sent unless a root cause held it back.
            track.incident = row
            track.notified = row.root_cause is None

    async def _closed(self, write: Write) -> None:
        closed, notify = write.incident, write.notify
        if closed.id in self._lost:  # it never opened: close the row that did, if any
            adopted = self._lost.pop(closed.id)
            if adopted is None:
                return
            closed = closing(adopted, closed.closed_at or now_iso(), closed.resolution)
            notify = adopted.root_cause is None
        try:
            done = await self._store.close(closed)
        except Exception:  # memory stays right; written again before the next opening
            log.exception("could not close alert incident %s", closed.id)
            self._unwritten[(closed.rule_id, closed.server_id)] = closed
            done = True  # as for an opening: tell as decided
        if done:  # else another core closed the row first and told of it
            self._tell(write.track, closed, write.value, notify)

    async def _close(self, closed: AlertIncident) -> bool:
        """Write a closing again; False when it fails again."""
        try:
            await self._store.close(closed)
        except Exception:
            log.exception("could not close alert incident %s", closed.id)
            return False
        return True
