"""Resource alerts with several cores: the samples and rule writes of the other cores.

An agent pushes to whichever core it reaches, and the ``sampling`` lease holder samples every
simulated and local server; each publishes what it accepts on ``servers.<id>.metrics``. The
owner of a server (rendezvous over the live cores, as monitors) evaluates it from those bus
events, the ones it took itself straight from its sampler; the other cores skip it. No sample
travels twice: the events are already there for the websockets.
"""

from __future__ import annotations

import logging

import msgspec

from ..bus import Bus, Event
from ..cluster.core import Core
from ..cluster.rendezvous import owner
from ..model.sample import Sample
from .alert_rules import RULES_TOPIC
from .alerts import AlertService

log = logging.getLogger("dragonopsd.alerts")

PREFIX, SUFFIX = "servers.", ".metrics"


class AlertPeers:
    """Which servers this core judges, the other cores' samples of those, their rule writes."""

    def __init__(self, core: Core, bus: Bus) -> None:
        self._core = core
        self._bus = bus
        # The live cores as of the last rebalance, not the heartbeat's newest view: a server
        # gained counts as owned only once its stored incidents are being taken over.
        self._view = core.membership.active()
        self._alerts: AlertService | None = None
        self._decode = msgspec.json.Decoder(Sample).decode

    def owns(self, server: str) -> bool:
        """Whether this core evaluates the server's rules (AlertService's ``owns``)."""
        return owner(server, self._view) == self._core.node

    def follow(self, alerts: AlertService) -> None:
        """Move alerts' servers whenever the live cores change."""
        self._alerts = alerts
        self._core.on_change(self._rebalance)

    async def _rebalance(self) -> None:
        self._view = self._core.membership.active()
        if self._alerts is not None:
            await self._alerts.rebalance()  # drops and gates before its first await

    async def run(self) -> None:
        """Hand the followed AlertService the other cores' samples until cancelled."""
        sub = self._bus.subscribe([f"{PREFIX}*", RULES_TOPIC], maxsize=100_000)
        try:
            while True:
                event = await sub.queue.get()
                try:
                    await self._handle(event)
                except Exception:  # one bad event must not end the follower
                    log.exception("alert peer event on %s failed", event.topic)
        finally:
            self._bus.unsubscribe(sub)

    async def _handle(self, event: Event) -> None:
        data = event.data
        if not isinstance(data, msgspec.Raw):
            return  # published here: the sampler handed it over already / the book is loaded
        alerts = self._alerts
        if alerts is None:
            return
        if event.kind == "server.metrics" and event.topic.endswith(SUFFIX):
            server = event.topic[len(PREFIX) : -len(SUFFIX)]
            if not alerts.owns(server):
                return  # decoded only by its owner
            try:
                sample = self._decode(data)
            except msgspec.DecodeError:
                return
            alerts.observe(sample)
        elif event.topic == RULES_TOPIC:
            await alerts.rules.load()
