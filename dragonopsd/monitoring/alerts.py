"""Resource alerts: the rule book applied to the in-memory stream of server samples.

``observe`` is handed every sample the sampler accepts (no query per sample): a threshold rule
starts counting when a sample goes above it and fires once samples have stayed above for its
``for``; the first sample at or below closes it. ``run`` ticks every second for the rules no
sample can trigger: ``no-samples`` on agent servers, and rules that stopped applying.

Firing opens an incident on the server, publishes ``server.alert`` on the server's topic
(``servers.<id>.metrics``) and notifies the channels whose routes match the server, the way a
monitor's DOWN does: a maintenance window covering the server (or its environment, project,
client) holds the firing back, and a root cause (the server's host check is down) keeps the
incident but suppresses the notification. Incident writes go through one queue in order, so
the sample path never waits for the database.

With several cores each server's rules are evaluated by one core, its owner (rendezvous over
the live cores, as monitors are; ``owns``), so one breach opens one incident and sends one
notification wherever its samples were pushed: samples taken on another core arrive as that
core's ``server.metrics`` events over the bus. A core that takes a server over adopts the
incidents left open for it in the store, and forgets what it tracked of servers it lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import msgspec

from ..bus import Bus, Event
from ..clock import iso_of, now_iso
from ..inventory.index import InventoryIndex
from ..model.monitor import Scope
from ..model.sample import Sample
from ..notify.dispatcher import Dispatcher
from ..problem import Problem
from ..store.alerts import AlertIncident, AlertRule
from ..store.links import Hierarchy
from ..store.protocols import AlertRepo
from .alert_notices import AlertEvent, AlertState, alert_event, alert_notification, closing
from .alert_rules import CHANGED, RuleBook
from .maintenance import MaintenanceService
from .runtime import Runtimes

log = logging.getLogger("dragonopsd.alerts")

TICK = 1.0
_sample_decode = msgspec.json.Decoder(Sample).decode
# Agent servers in these states are not expected to push (stopped on purpose, not yet built).
NOT_EXPECTED = frozenset({"stopped", "stopping", "provisioning"})
Key = tuple[str, str]  # (rule id, server id)


@dataclass(slots=True)
class _Track:
    """What is tracked of one rule on one server."""

    rule: AlertRule
    above_since: float | None = None  # sample time the current breach began
    value: float | None = None
    held: bool = False  # the breach is long enough, but a maintenance window holds it back
    incident: AlertIncident | None = None
    notified: bool = False


class AlertService:
    """Evaluates the rule book against the samples stream; owns the open alert incidents."""

    def __init__(
        self,
        rules: RuleBook,
        store: AlertRepo,
        *,
        index: InventoryIndex,
        maintenance: MaintenanceService,
        notifier: Dispatcher,
        bus: Bus,
        runtimes: Runtimes,
        owns: Callable[[str], bool] | None = None,
    ) -> None:
        self.rules = rules
        self._store = store
        self._index = index
        self._maintenance = maintenance
        self._notifier = notifier
        self._bus = bus
        self._runtimes = runtimes  # the server's host check may be the root cause
        # Several cores: whether this core evaluates a server's rules now (None: one core).
        self._owns = owns
        self._tracks: dict[Key, _Track] = {}
        self._heard: dict[str, float] = {}  # server -> loop time of its last sample
        self._writes: asyncio.Queue[tuple[str, AlertIncident]] = asyncio.Queue()

    async def start(self) -> None:
        """Load the rules and resume the incidents a previous run left open."""
        await self.rules.load()
        await self.adopt()

    async def adopt(self) -> None:
        """Resume the open incidents of the servers this core evaluates and does not track
        yet: at start, and when ownership moves (a core joined, left or died)."""
        for incident in await self._store.open_incidents():
            key = (incident.rule_id, incident.server_id)
            if key not in self._tracks and self._mine(incident.server_id):
                rule = self._rule_or_stub(incident)
                self._tracks[key] = _Track(rule, incident=incident, notified=True)

    def _mine(self, server: str) -> bool:
        return self._owns is None or self._owns(server)

    def _rule_or_stub(self, incident: AlertIncident) -> AlertRule:
        try:
            return self.rules.get(incident.rule_id)
        except Problem:  # gone meanwhile: the next tick closes what it opened
            stamp = incident.opened_at
            return AlertRule(
                id=incident.rule_id,
                name=incident.rule_name,
                metric=incident.metric,  # type: ignore[arg-type]
                threshold=None,
                for_=0,
                enabled=False,
                expression=incident.rule_name,
                created_at=stamp,
                updated_at=stamp,
            )

    # ---------------------------------------------------------------- the samples stream

    def observe(self, sample: Sample) -> None:
        """One accepted sample (the newest of its server): O(rules in force), no I/O."""
        try:
            # Heard whoever evaluates: a core taking the server over knows it is not silent.
            self._heard[sample.server_id] = asyncio.get_running_loop().time()
            if self._mine(sample.server_id):
                self._observe(sample)
        except Exception:  # the sampler must never pay for an alert bug
            log.exception("alert evaluation failed for server %s", sample.server_id)

    def _observe(self, sample: Sample) -> None:
        server = sample.server_id
        tree = self._index.hierarchy
        for rule in self.rules.for_server(tree, server):
            key = (rule.id, server)
            track = self._tracks.get(key)
            if track is None:
                track = self._tracks[key] = _Track(rule)
            track.rule = rule
            if rule.metric == "no-samples":
                if track.incident is not None:
                    self._resolve(track, server, tree, None, "samples again")
                continue
            value = float(getattr(sample, rule.metric))
            track.value = value
            threshold = rule.threshold if rule.threshold is not None else 0.0
            if value > threshold:
                if track.above_since is None:
                    track.above_since = sample.at
                if track.incident is None and sample.at - track.above_since >= rule.for_:
                    cause = (
                        f"{rule.metric} {value:g} above {threshold:g} for "
                        f"{sample.at - track.above_since:.0f}s"
                    )
                    self._fire(track, server, tree, value, cause)
            else:
                track.above_since = None
                track.held = False
                if track.incident is not None:
                    self._resolve(track, server, tree, value, None)

    # ---------------------------------------------------------------- the tick

    async def run(self) -> None:
        """Check silences and stale rules every second; write incidents as they come; with
        several cores, evaluate the samples other cores took as well."""
        tasks = [asyncio.create_task(self._write())]
        if self._owns is not None:
            tasks.append(asyncio.create_task(self._follow()))
        try:
            while True:
                try:
                    self.tick()
                except Exception:
                    log.exception("alert tick failed")
                await asyncio.sleep(TICK)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            while not self._writes.empty():  # what was decided before the stop still lands
                await self._persist(*self._writes.get_nowait())
                self._writes.task_done()

    async def _follow(self) -> None:
        """Feed the samples other cores took (their ``server.metrics`` events) to observe;
        reload the rules another core wrote."""
        sub = self._bus.subscribe(["servers.*", CHANGED], maxsize=50_000)
        try:
            while True:
                event = await sub.queue.get()
                if event.remote and event.topic == CHANGED:
                    await self._reload_rules()
                else:
                    self._remote(event)
        finally:
            self._bus.unsubscribe(sub)

    async def _reload_rules(self) -> None:
        try:
            await self.rules.load()
        except Exception:  # the store is away: the next rule event or restart reloads
            log.exception("could not reload the alert rules another core wrote")

    def _remote(self, event: Event) -> None:
        if not event.remote or event.kind != "server.metrics":
            return  # this core's samples reached observe() from the sampler
        try:
            sample = _sample_decode(bytes(event.data))
        except (msgspec.DecodeError, TypeError):
            log.warning("ignoring a malformed sample event on %s", event.topic)
            return
        self.observe(sample)

    def tick(self) -> None:
        """no-samples rules on agent servers; tracks of rules or servers that are gone."""
        now = asyncio.get_running_loop().time()
        tree = self._index.hierarchy
        for server, link in tree.servers.items():
            if link.sampling != "agent" or link.status in NOT_EXPECTED or not self._mine(server):
                continue
            heard = self._heard.setdefault(server, now)  # tracking starts: a grace period
            for rule in self.rules.for_server(tree, server):
                if rule.metric != "no-samples":
                    continue
                track = self._tracks.setdefault((rule.id, server), _Track(rule))
                track.rule = rule
                silent = now - heard
                if silent >= rule.for_:
                    if track.above_since is None:
                        track.above_since = time.time() - silent
                    if track.incident is None:
                        self._fire(track, server, tree, silent, f"no samples for {silent:.0f}s")
        self._sweep(tree)

    def _sweep(self, tree: Hierarchy) -> None:
        """Close what a rule no longer in force (deleted, disabled, outranked) had open."""
        for key, track in list(self._tracks.items()):
            rule_id, server = key
            if not self._mine(server):  # its owner now: it adopted what was open
                del self._tracks[key]
                continue
            link = tree.servers.get(server)
            in_force = link is not None and any(
                r.id == rule_id for r in self.rules.for_server(tree, server)
            )
            quiet = (
                track.rule.metric == "no-samples"
                and link is not None
                and (link.sampling != "agent" or link.status in NOT_EXPECTED)
            )
            if in_force and not quiet:
                continue
            if track.incident is not None:
                reason = "server deleted" if link is None else "rule no longer applies"
                self._resolve(track, server, tree, None, reason)
            del self._tracks[key]
        for server in self._heard.keys() - tree.servers.keys():
            del self._heard[server]

    # ---------------------------------------------------------------- transitions

    def _scope(self, tree: Hierarchy, server: str) -> Scope:
        link = tree.servers.get(server)
        env = link.environment_id if link else None
        project = tree.environments.get(env, (None, None))[1] if env else None
        client = tree.projects.get(project, (None, None))[1] if project else None
        return Scope(
            monitor_id="",
            server_id=server,
            environment_id=env,
            project_id=project,
            client_id=client,
        )

    def _root_cause(self, server: str) -> str | None:
        for rt in self._runtimes.all():
            monitor = rt.monitor
            if (
                monitor.server_id == server
                and monitor.kind == "icmp"
                and rt.machine.status == "down"
            ):
                return f"host check {monitor.name} ({monitor.id}) is down"
        return None

    def _fire(self, track: _Track, server: str, tree: Hierarchy, value: float, cause: str) -> None:
        scope = self._scope(tree, server)
        if self._maintenance.active_for(scope, time.time()) is not None:
            track.held = True  # fires when the window ends, if the breach lasts
            return
        track.held = False
        rule = track.rule
        root = self._root_cause(server)
        track.incident = incident = AlertIncident(
            id=str(uuid.uuid4()),
            server_id=server,
            rule_id=rule.id,
            rule_name=rule.name,
            metric=rule.metric,
            opened_at=now_iso(),
            cause=cause,
            root_cause=root,
        )
        self._writes.put_nowait(("open", incident))
        self._publish(track, incident, value)
        if root is None:
            track.notified = True
            self._notify(track, tree, scope, incident)

    def _resolve(
        self,
        track: _Track,
        server: str,
        tree: Hierarchy,
        value: float | None,
        resolution: str | None,
    ) -> None:
        opened = track.incident
        assert opened is not None
        closed = closing(opened, now_iso(), resolution)
        track.incident = None
        track.above_since = None
        self._writes.put_nowait(("close", closed))
        self._publish(track, closed, value)
        if track.notified:
            track.notified = False
            self._notify(track, tree, self._scope(tree, server), closed)

    def _publish(self, track: _Track, incident: AlertIncident, value: float | None) -> None:
        event = alert_event(track.rule, incident, value)
        self._bus.publish(f"servers.{incident.server_id}.metrics", event, "server.alert")

    def _notify(
        self, track: _Track, tree: Hierarchy, scope: Scope, incident: AlertIncident
    ) -> None:
        link = tree.servers.get(incident.server_id)
        name = link.name if link else incident.server_id
        self._notifier.publish(alert_notification(track.rule, incident, name, scope))

    async def _write(self) -> None:
        while True:
            op, incident = await self._writes.get()
            try:
                await self._persist(op, incident)
            finally:
                self._writes.task_done()

    async def _persist(self, op: str, incident: AlertIncident) -> None:
        try:
            if op == "open":
                await self._store.open(incident)
            else:
                await self._store.close(incident)
        except Exception:  # memory stays right; the incident row is what is lost
            log.exception("could not %s alert incident %s", op, incident.id)

    async def settled(self) -> None:
        """Wait until every decided incident is written (tests, and readers right after)."""
        await self._writes.join()

    # ---------------------------------------------------------------- reads

    async def states(self, server: str) -> list[AlertState]:
        """Every rule in force on a server with its state now (a server created a moment
        ago counts: the index is brought up to date first)."""
        tree = await self._index.current()
        out = []
        for rule in self.rules.for_server(tree, server):
            track = self._tracks.get((rule.id, server))
            state, since = "ok", None
            if track is not None:
                if track.incident is not None:
                    state, since = "firing", track.incident.opened_at
                elif track.held:
                    state = "maintenance"
                elif track.above_since is not None and rule.metric != "no-samples":
                    state, since = "pending", iso_of(track.above_since)
            out.append(
                AlertState(
                    rule=rule,
                    state=state,
                    since=since,
                    value=track.value if track else None,
                    incident=track.incident if track else None,
                )
            )
        return out

    async def incidents(self, server: str, limit: int) -> list[AlertIncident]:
        """A server's alert incidents, newest first."""
        return await self._store.incidents(server, limit)

    def firing(self) -> Iterator[tuple[str, AlertRule, bool]]:
        """(server id, rule, firing) for every rule in force on every server (the gauge)."""
        tree = self._index.hierarchy
        for server in tree.servers:
            for rule in self.rules.for_server(tree, server):
                track = self._tracks.get((rule.id, server))
                yield server, rule, track is not None and track.incident is not None

    def open_alerts(self, server: str) -> list[AlertEvent]:
        """The firing alerts of a server as ``server.alert`` events (the websocket snapshot)."""
        return [
            alert_event(track.rule, track.incident, track.value)
            for (_, srv), track in self._tracks.items()
            if srv == server and track.incident is not None
        ]
