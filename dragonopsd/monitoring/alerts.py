"""Resource alerts: the rule book applied to the in-memory stream of server samples.

``observe`` is handed every sample the sampler accepts (no query per sample): a threshold rule
starts counting when a sample goes above it and fires once samples have stayed above for its
``for``; the first sample at or below closes it. ``run`` ticks every second for the rules no
sample can trigger: ``no-samples`` on agent servers, and rules that stopped applying.

Firing opens an incident on the server, publishes ``server.alert`` on the server's topic
(``servers.<id>.metrics``) and notifies the channels whose routes match the server, the way a
monitor's DOWN does: a maintenance window covering the server (or its environment, project,
client) holds the firing back, and a root cause (the server's host check is down) keeps the
incident but suppresses the notification. Incident writes go through one queue in order
(alert_writes.py), so the sample path never waits for the database; the event and the
notification of an opening or a closing go out once its write is done, and only when the write
did it.

With several cores each server's rules are evaluated by one: its owner (``owns``, the same
rendezvous ownership as monitors). The others skip its samples; alert_peers.py hands the owner
the samples other cores took. A core that gains a server continues from its stored open
incidents (``rebalance``). Two cores that still both judge a server while the live cores change
are kept apart by the database (alert_writes.py): so a breach opens one incident and notifies
once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterator

from ..bus import Bus
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
from .alert_rules import RuleBook
from .alert_writes import IncidentWrites, Track, Write
from .maintenance import MaintenanceService
from .runtime import Runtimes

log = logging.getLogger("dragonopsd.alerts")

TICK = 1.0
# Agent servers in these states are not expected to push (stopped on purpose, not yet built).
NOT_EXPECTED = frozenset({"stopped", "stopping", "provisioning"})
Key = tuple[str, str]  # (rule id, server id)


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
        self._tracks: dict[Key, Track] = {}
        self._heard: dict[str, float] = {}  # server -> loop time of its last sample
        self._writes = IncidentWrites(store, self._tell)
        # Whether this core evaluates a server's rules (None: one core, every server).
        self.owns: Callable[[str], bool] = owns or (lambda _server: True)
        self._owned: set[str] = set()  # servers owned as of start / the last rebalance
        self._taking: set[str] = set()  # gained servers whose stored incidents are being read
        self._started = False  # rebalancing before start: start reads the store itself

    async def start(self) -> None:
        """Load the rules and resume the open incidents (of the servers this core owns)."""
        await self.rules.load()
        self._started = True
        self._owned = {s for s in self._index.hierarchy.servers if self.owns(s)}
        for incident in await self._store.open_incidents():
            if self.owns(incident.server_id):
                self._adopt(incident)

    def _adopt(self, incident: AlertIncident) -> None:
        """Carry on with an incident an earlier run or another core opened (no second one)."""
        key = (incident.rule_id, incident.server_id)
        track = self._tracks.get(key)
        if track is not None and track.incident is not None:
            return  # opened here meanwhile
        # notified unless a root cause held its "down" back (then its "up" is not sent either).
        notified = incident.root_cause is None
        self._tracks[key] = Track(
            self._rule_or_stub(incident), incident=incident, notified=notified
        )

    async def rebalance(self) -> None:
        """The live cores changed: forget the servers owned elsewhere now, take the gained ones
        over from their stored open incidents (their samples are skipped until then)."""
        if not self._started:
            return
        for key in [k for k in self._tracks if not self.owns(k[1])]:
            del self._tracks[key]
        for server in [s for s in self._heard if not self.owns(s)]:
            del self._heard[server]  # a server owned again later starts a fresh grace period
        owned = {s for s in self._index.hierarchy.servers if self.owns(s)}
        gained, self._owned = owned - self._owned, owned
        if not gained:
            return
        self._taking |= gained
        try:
            await self.settled()  # this core's own closes land before the store is read
            incidents = await self._store.open_incidents()
        finally:
            self._taking -= gained
        for incident in incidents:
            if incident.server_id in gained and self.owns(incident.server_id):
                self._adopt(incident)
        log.info("cluster: took over the alerts of %d server(s)", len(gained))

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
            self._observe(sample)
        except Exception:  # the sampler must never pay for an alert bug
            log.exception("alert evaluation failed for server %s", sample.server_id)

    def _observe(self, sample: Sample) -> None:
        server = sample.server_id
        if server in self._taking or not self.owns(server):
            return  # another core's to judge (it gets the sample over the bus)
        self._heard[server] = asyncio.get_running_loop().time()
        tree = self._index.hierarchy
        for rule in self.rules.for_server(tree, server):
            key = (rule.id, server)
            track = self._tracks.get(key)
            if track is None:
                track = self._tracks[key] = Track(rule)
            track.rule = rule
            if rule.metric == "no-samples":
                if track.incident is not None:
                    self._resolve(track, None, "samples again")
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
                    self._resolve(track, value, None)

    # ---------------------------------------------------------------- the tick

    async def run(self) -> None:
        """Check silences and stale rules every second; write incidents as they come."""
        writer = asyncio.create_task(self._writes.run())
        try:
            while True:
                try:
                    self.tick()
                except Exception:
                    log.exception("alert tick failed")
                await asyncio.sleep(TICK)
        finally:
            writer.cancel()  # what was decided before the stop still lands
            await asyncio.gather(writer, return_exceptions=True)

    def tick(self) -> None:
        """no-samples rules on agent servers; tracks of rules or servers that are gone."""
        now = asyncio.get_running_loop().time()
        tree = self._index.hierarchy
        for server, link in tree.servers.items():
            if link.sampling != "agent" or link.status in NOT_EXPECTED:
                continue
            if server in self._taking or not self.owns(server):
                continue
            heard = self._heard.setdefault(server, now)  # tracking starts: a grace period
            for rule in self.rules.for_server(tree, server):
                if rule.metric != "no-samples":
                    continue
                track = self._tracks.setdefault((rule.id, server), Track(rule))
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
                self._resolve(track, None, reason)
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

    def _fire(self, track: Track, server: str, tree: Hierarchy, value: float, cause: str) -> None:
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
        track.notified = root is None
        self._writes.put(Write("open", incident, track, value, notify=root is None))

    def _resolve(self, track: Track, value: float | None, resolution: str | None) -> None:
        opened = track.incident
        assert opened is not None
        closed = closing(opened, now_iso(), resolution)
        track.incident = None
        track.above_since = None
        self._writes.put(Write("close", closed, track, value, notify=track.notified))
        track.notified = False

    def _tell(
        self, track: Track, incident: AlertIncident, value: float | None, notify: bool
    ) -> None:
        """An opening or a closing was stored: the event, and the notification if due."""
        event = alert_event(track.rule, incident, value)
        self._bus.publish(f"servers.{incident.server_id}.metrics", event, "server.alert")
        if notify:
            tree = self._index.hierarchy
            link = tree.servers.get(incident.server_id)
            name = link.name if link else incident.server_id
            scope = self._scope(tree, incident.server_id)
            self._notifier.publish(alert_notification(track.rule, incident, name, scope))

    async def settled(self) -> None:
        """Wait until every decided incident is written (tests, and readers right after)."""
        await self._writes.settled()

    # ---------------------------------------------------------------- reads

    async def states(self, server: str) -> list[AlertState]:
        """Every rule in force on a server with its state now (a server created a moment
        ago counts: the index is brought up to date first)."""
        tree = await self._index.current()
        tracks = self._tracks
        if not self.owns(server):  # judged by another core: what it stored is what is known
            recent = await self._store.incidents(server, 50)
            tracks = {
                (i.rule_id, server): Track(self._rule_or_stub(i), incident=i)
                for i in recent
                if i.closed_at is None
            }
        out = []
        for rule in self.rules.for_server(tree, server):
            track = tracks.get((rule.id, server))
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
