"""Repeat notifications: an open incident nobody acknowledged is told again every
``[incidents] repeat_interval`` seconds, until it is acknowledged, closes or re-opens.

Automatic incidents are repeated by the core that owns their monitor (its runtime holds the
open incident and knows a DOWN went out); manual ones by the core that owns their id, so a
deployment of several cores repeats each incident once. Acknowledgements are read from the
store at each tick, so one given on any core stops the repeats everywhere.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from ..notify.dispatcher import Dispatcher
from .incident_desk import IncidentDesk
from .runtime import Runtimes

log = logging.getLogger("dragonopsd.incidents")
MANUAL_LIMIT = 1000  # open manual incidents looked at per tick (more would be a backlog, not news)


class Reminders:
    """The repeat loop; ``tick`` is one pass, ``run`` repeats it until cancelled."""

    def __init__(
        self,
        interval: float,
        *,
        desk: IncidentDesk,
        notifier: Dispatcher,
        runtimes: Runtimes,
        owns: Callable[[str], bool] = lambda _: True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self._desk = desk
        self._notifier = notifier
        self._runtimes = runtimes
        self._owns = owns
        self._clock = clock
        # incident id -> when it was last told (first seen: its DOWN or opening just went out).
        self._told: dict[str, float] = {}
        self.sent = 0

    async def run(self) -> None:
        """Tick a few times per interval (a repeat is at most a fifth of it late)."""
        if self.interval <= 0:
            return
        pause = min(5.0, max(0.1, self.interval / 5))
        while True:
            await asyncio.sleep(pause)
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # a store hiccup: the next tick tries again
                log.exception("repeat notifications")

    async def tick(self) -> None:
        """Repeat whatever is due."""
        now = self._clock()
        automatic = {
            rt.incident.id: rt.incident
            for rt in self._runtimes.all()
            if rt.incident is not None and rt.down_notified and self._owns(rt.monitor.id)
        }
        manual = {
            i.id: i
            for i in await self._desk.notes.manual_incidents(
                state="open", since=None, before=None, limit=MANUAL_LIMIT
            )
            if self._owns(i.id)
        }
        open_now = automatic.keys() | manual.keys()
        self._told = {k: v for k, v in self._told.items() if k in open_now}
        due = []
        for ident in open_now:
            last = self._told.setdefault(ident, now)
            if now - last >= self.interval:
                due.append(ident)
        if not due:
            return
        acked = await self._desk.notes.acknowledged(due)
        for ident in due:
            if ident in acked:
                continue
            self._told[ident] = now
            if ident in automatic:
                incident = automatic[ident]
                event = await self._desk.monitor_event(incident, "reminder", incident.cause)
            else:
                found = manual[ident]
                scopes = await self._desk.scopes(found)
                latest = found.updates[-1].message if found.updates else None
                event = self._desk.manual_event(found, "reminder", latest, scopes)
            self.sent += 1
            self._notifier.publish(event)
