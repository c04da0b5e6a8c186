"""The websocket hub: one bus subscription, fanned out to every subscribed client.

Each bus event is stamped with its topic's next ``seq``, encoded once, and offered to every
interested client's queue without waiting; each client's own writer task sends it (see
``client.py``), so one slow socket never delays another. A client that subscribed with
``"batch": true`` gets all the events of one pass over the bus queue in one ``batch`` frame.

Snapshot providers: a subscription first gets the latest state, then live events. Whoever owns
a topic's state registers how to read it, in ``snapshots.py`` (called by the app factory)::

    async def metrics_snapshot(topic: str) -> list[Item]:
        # topic is what the client asked for: "servers.*.metrics" or "servers.<id>.metrics"
        wanted = topic_id(topic)  # None for the wildcard
        return [(f"servers.{s.server_id}.metrics", "server.metrics", s) for s in latest(wanted)]

    hub.register_snapshot("servers.*.metrics", metrics_snapshot)
    hub.register_snapshot("servers.{id}.metrics", metrics_snapshot)

An item is ``(topic, kind, data)``: the concrete bus topic the state belongs to (the frame
carries that topic and its current ``seq``), the event kind, and the camelCase payload (a
Struct or a dict). The key is a client topic or a template with ``{id}``; a topic without a
provider gets an empty snapshot. Providers run on the loop (no blocking calls) and get
``snapshot_timeout`` seconds; a failing one costs the client an error frame, not the socket.

Scoped subscribers (a token or profile limited to some clients) carry a gate (``gate.py``)
and sit in an index of their own: the fan-out above never looks at them, beyond handing each
pass's stamped events to a second task that offers each of them only what its gate admits,
snapshots included. That task may wait for the inventory to be re-read (a server created a
moment ago is placed before its event is judged) without holding anyone else's events back.
Seqs stay the hub's, per topic: on a topic shared by every client (``monitors``, ``incidents``,
``actions``, ``inventory``) a scoped socket sees the numbers of the events it was not sent
skipped, which is not a loss (a loss closes the socket with 1013).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import msgspec

from ..bus import Bus, Event
from ..model.principal import Principal
from .caps import SocketCaps
from .client import DROP_REASONS, GOING_AWAY, TRY_AGAIN_LATER, Client, Live, Socket
from .gate import Gate, Gates
from .topics import (
    ALL_SERVERS,
    BUS_PATTERNS,
    COALESCED,
    Frame,
    ack,
    encode,
    error,
    template_of,
    wildcard_of,
)

log = logging.getLogger("dragonopsd.live")

Item = tuple[str, str, Any]
Provider = Callable[[str], Awaitable[Iterable[Item]]]
UNAUTHORIZED = 4401  # private-use close code: authenticate again (401's meaning)
TOPIC_HELP = (
    "topics are servers.{id}.metrics, servers.*.metrics, monitors, monitors.{id}, "
    "incidents, actions, inventory"
)


@dataclass
class HubSettings:
    """Limits and waits; tests shorten the waits."""

    queue_size: int = 1024  # frames queued per client before a must-deliver one closes it
    auth_timeout: float = 5.0  # for the first-frame {"op":"auth"} when no header came
    check_interval: float = 1.0  # how often open sockets' tokens are re-checked
    heartbeat: float = 30.0  # websocket ping interval; no pong within half of it closes
    close_timeout: float = 2.0  # for the close handshake before the connection is dropped
    snapshot_timeout: float = 5.0
    max_topics: int = 256  # per socket
    bus_queue: int = 10_000  # events between the bus and the fan-out


class Hub:
    """Owns the clients, their topic index, the per-topic seq counters and the snapshots."""

    def __init__(
        self,
        bus: Bus,
        caps: SocketCaps,
        settings: HubSettings | None = None,
        gates: Gates | None = None,
    ) -> None:
        self.settings = settings or HubSettings()
        # The handler claims and releases these slots around each socket's life (api/ws.py).
        self.caps = caps
        self._bus = bus
        # Weak: a handler that died without detaching must not keep its client alive here.
        self.clients: weakref.WeakSet[Client] = weakref.WeakSet()
        self._index: dict[str, set[Client]] = {}
        self._seq: dict[str, int] = {}
        self._providers: dict[str, Provider] = {}
        # Scoped subscribers: their own topic index, fed by the task in _run_scoped with the
        # passes _fan_out hands over (only while one is subscribed).
        self._gates = gates
        self._scoped: dict[str, set[Client]] = {}
        self._handoff: asyncio.Queue[list[tuple[Event, int]]] = asyncio.Queue()
        self.drops = dict.fromkeys(DROP_REASONS, 0)  # frames lost, by reason (client.py)

    def register_snapshot(self, topic: str, provider: Provider) -> None:
        """Serve the snapshot of a client topic (or ``{id}`` template) from provider."""
        if template_of(topic.replace("{id}", "x")) != topic:
            raise ValueError(f"not a websocket topic or template: {topic!r}; {TOPIC_HELP}")
        self._providers[topic] = provider

    def seq(self, topic: str) -> int:
        """The seq of the topic's last event (0 before the first)."""
        return self._seq.get(topic, 0)

    # -- clients ---------------------------------------------------------------------------

    def attach(
        self, socket: Socket, still_valid: Callable[[], bool], principal: Principal | None = None
    ) -> Client:
        """A new authenticated socket; ``still_valid`` is polled to close it on revocation.
        A principal with a scope gets only what its gate admits."""
        s = self.settings
        gate: Gate | None = None
        if principal is not None and principal.scope is not None:
            gate = self._gates.of(principal) if self._gates is not None else None
            gate = gate or _NOTHING  # a scope nobody can judge sees nothing
        client = Client(
            socket,
            still_valid,
            queue_size=s.queue_size,
            close_timeout=s.close_timeout,
            drops=self.drops,
            gate=gate,
        )
        self.clients.add(client)
        return client

    async def detach(self, client: Client) -> None:
        """The socket's read side ended: forget the client and let its close complete."""
        for topic in client.topics | client.pending:
            self._unindex(topic, client)
        self.clients.discard(client)
        await client.finish()

    async def subscribe(self, client: Client, topics: Iterable[str]) -> None:
        """Snapshot then live events for each topic; unknown topics get error frames."""
        wanted: list[str] = []
        for topic in dict.fromkeys(topics):
            if template_of(topic) is None:
                client.send(error(f"unknown topic; {TOPIC_HELP}", op="subscribe", topic=topic))
            else:
                wanted.append(topic)
        fresh = [t for t in wanted if t not in client.topics]
        room = max(0, self.settings.max_topics - len(client.topics))
        if len(fresh) > room:
            limit = self.settings.max_topics
            client.send(error(f"at most {limit} topics per socket", op="subscribe"))
            dropped = set(fresh[room:])
            fresh, wanted = fresh[:room], [t for t in wanted if t not in dropped]
        # Indexed before the snapshot is read: events published meanwhile are held for it.
        index = self._index if client.gate is None else self._scoped
        for topic in fresh:
            client.pending.add(topic)
            index.setdefault(topic, set()).add(client)
        for topic in fresh:
            for frame in await self._snapshot(client, topic):
                client.send(frame)
            if client.closing:
                return
            client.activate(topic)
        client.send(ack("subscribe", topics=wanted))

    def unsubscribe(self, client: Client, topics: Iterable[str]) -> None:
        """Stop live events for each topic."""
        gone: list[str] = []
        for topic in dict.fromkeys(topics):
            if topic in client.topics:
                client.topics.discard(topic)
                self._unindex(topic, client)
                gone.append(topic)
            elif template_of(topic) is None:
                client.send(error(f"unknown topic; {TOPIC_HELP}", op="unsubscribe", topic=topic))
        client.send(ack("unsubscribe", topics=gone))

    async def close_all(self, code: int = GOING_AWAY, reason: str = "server shutting down") -> None:
        """Close every socket (GOING_AWAY at shutdown) and wait, bounded, for the closes."""
        clients = list(self.clients)
        for client in clients:
            client.shutdown(code, reason)
        await asyncio.gather(*(c.finish() for c in clients))

    # -- background tasks (run by lifecycle.hub_ctx) ---------------------------------------

    async def run(self) -> None:
        """Fan bus events out to clients until cancelled."""
        sub = self._bus.subscribe(BUS_PATTERNS, maxsize=self.settings.bus_queue)
        scoped = asyncio.create_task(self._run_scoped())
        dropped = 0
        try:
            while True:
                events = [await sub.queue.get()]
                # Everything already queued goes out in the same pass: no await per event, and
                # a batching client gets the pass (a sampling tick's samples) in one frame.
                while not sub.queue.empty():
                    events.append(sub.queue.get_nowait())
                self._fan_out(events)
                if sub.dropped != dropped:
                    self.drops["bus_lag"] += sub.dropped - dropped
                    log.warning(
                        "websocket hub fell %d events behind the bus; all clients resync",
                        sub.dropped - dropped,
                    )
                    dropped = sub.dropped
                    for client in list(self.clients):
                        client.shutdown(TRY_AGAIN_LATER, "events were lost: resubscribe")
        finally:
            self._bus.unsubscribe(sub)
            scoped.cancel()
            await asyncio.wait([scoped])

    async def watch_credentials(self) -> None:
        """Close sockets whose token expired or was revoked, or whose profile changed (until
        cancelled)."""
        while True:
            await asyncio.sleep(self.settings.check_interval)
            for client in list(self.clients):
                if not client.closing and not client.still_valid():
                    client.shutdown(UNAUTHORIZED, "token expired, revoked or its access changed")

    # -- internals -------------------------------------------------------------------------

    def _fan_out(self, events: list[Event]) -> None:
        routed: list[tuple[Live, set[Client]]] = []
        handoff: list[tuple[Event, int]] | None = [] if self._scoped else None
        for event in events:
            topic = event.topic
            seq = self._seq.get(topic)
            if seq is None:  # a topic seen for the first time: only client topics get counted
                if topic == ALL_SERVERS or template_of(topic) is None:
                    continue  # another servers.* topic, not one clients may follow
                seq = 0
            seq = self._seq[topic] = seq + 1
            if handoff is not None:
                handoff.append((event, seq))
            exact = self._index.get(topic)
            wild = self._index.get(ALL_SERVERS) if wildcard_of(topic) else None
            targets = exact | wild if exact and wild else exact or wild
            if not targets:
                continue
            try:
                frame = encode(Frame("event", event.kind, topic, seq, event.ts, event.data))
            except (TypeError, ValueError):  # a publisher's bug must not end the fan-out
                log.exception("cannot encode %s event on %s", event.kind, topic)
                continue
            routed.append(((topic, seq, frame, event.kind in COALESCED), targets))
        if handoff:
            self._handoff.put_nowait(handoff)
        if not routed:
            return
        joined: dict[tuple[int, ...], bytes] = {}  # one batch encoding per set of events
        first = routed[0][1]
        if all(targets is first for _, targets in routed):
            # The usual pass (a tick's samples, each to the servers.*.metrics subscribers):
            # one step per client, not per client and event (12,000 of those per tick).
            lives = [live for live, _ in routed]
            for client in first:
                if client.batch:
                    client.offer_batch(lives, joined)
                else:
                    for live in lives:
                        client.offer(*live)
            return
        batches: dict[Client, list[Live]] = {}
        for live, targets in routed:
            for client in targets:
                if not client.batch:
                    client.offer(*live)
                elif (pending := batches.get(client)) is None:
                    batches[client] = [live]
                else:
                    pending.append(live)
        for client, mine in batches.items():
            client.offer_batch(mine, joined)

    async def _snapshot(self, client: Client, topic: str) -> list[bytes]:
        provider = self._providers.get(topic)
        if provider is None:
            template = template_of(topic)
            provider = self._providers.get(template) if template else None
        if provider is None:
            return []
        gate = client.gate
        try:
            async with asyncio.timeout(self.settings.snapshot_timeout):
                if gate is not None and self._gates is not None:
                    await self._gates.settle()
                items = list(await provider(topic))
            if gate is not None:
                items = [item for item in items if gate.admits(*item)]
            # A snapshot is as of just before the first event held back while it was read.
            first = client.held_seqs()
            ts = time.time()
            return [
                encode(Frame("snapshot", kind, t, first.get(t, self.seq(t) + 1) - 1, ts, data))
                for t, kind, data in items
            ]
        except Exception:  # the provider's failure is logged; the client hears of it
            log.exception("snapshot of %s failed", topic)
            return [error("snapshot unavailable; live events follow", op="subscribe", topic=topic)]

    def _unindex(self, topic: str, client: Client) -> None:
        index = self._index if client.gate is None else self._scoped
        subscribers = index.get(topic)
        if subscribers is not None:
            subscribers.discard(client)
            if not subscribers:
                del index[topic]

    async def _run_scoped(self) -> None:
        """Offer scoped subscribers what their gates admit of each pass, in order."""
        while True:
            stamped = await self._handoff.get()
            while not self._handoff.empty():
                stamped += self._handoff.get_nowait()
            if self._gates is not None and any(e.topic == "inventory" for e, _ in stamped):
                await self._gates.settle()
            try:
                self._fan_out_scoped(stamped)
            except Exception:  # a gate's bug costs this pass, not every later one
                log.exception("scoped websocket fan-out failed; %d events not sent", len(stamped))

    def _fan_out_scoped(self, stamped: list[tuple[Event, int]]) -> None:
        batches: dict[Client, list[Live]] = {}
        for event, seq in stamped:
            topic = event.topic
            exact = self._scoped.get(topic)
            wild = self._scoped.get(ALL_SERVERS) if wildcard_of(topic) else None
            targets = exact | wild if exact and wild else exact or wild
            if not targets:
                continue
            data = event.data
            if isinstance(data, msgspec.Raw):  # another process's event: gates read a dict
                data = _DECODE(data)
            live: Live | None = None
            for client in targets:
                gate = client.gate
                if gate is None or not gate.admits(topic, event.kind, data):
                    continue
                if live is None:
                    try:
                        frame = encode(Frame("event", event.kind, topic, seq, event.ts, event.data))
                    except (TypeError, ValueError):
                        log.exception("cannot encode %s event on %s", event.kind, topic)
                        break
                    live = (topic, seq, frame, event.kind in COALESCED)
                if not client.batch:
                    client.offer(*live)
                else:
                    batches.setdefault(client, []).append(live)
        joined: dict[tuple[int, ...], bytes] = {}
        for client, mine in batches.items():
            client.offer_batch(mine, joined)


class _Nothing:
    """The gate of a scoped subscriber when no Gates were wired: it admits nothing."""

    def admits(self, topic: str, kind: str, data: Any) -> bool:
        return False


_NOTHING = _Nothing()
_DECODE = msgspec.json.Decoder().decode
