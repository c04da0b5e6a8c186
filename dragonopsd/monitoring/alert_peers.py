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
from ..model.sample import Sample
from .alert_rules import RULES_TOPIC
from .alerts import AlertService

log = logging.getLogger("dragonopsd.alerts")

PREFIX, SUFFIX = "servers.", ".metrics"


class AlertPeers:
    """Hands an AlertService the other cores' samples of the servers this core owns, reloads
    its rule book on their rule writes, and moves its servers when ownership moves."""

    def __init__(self, alerts: AlertService, core: Core, bus: Bus) -> None:
        self._alerts = alerts
        self._bus = bus
        self._decode = msgspec.json.Decoder(Sample).decode
        self.received = 0  # other cores' samples evaluated here (tests)
        core.on_change(alerts.rebalance)

    async def run(self) -> None:
        """Follow the bus until cancelled."""
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
        if event.kind == "server.metrics" and event.topic.endswith(SUFFIX):
            server = event.topic[len(PREFIX) : -len(SUFFIX)]
            if not self._alerts.owns(server):
                return  # decoded only by its owner
            try:
                sample = self._decode(data)
            except msgspec.DecodeError:
                return
            self.received += 1
            self._alerts.observe(sample)
        elif event.topic == RULES_TOPIC:
            await self._alerts.rules.load()
