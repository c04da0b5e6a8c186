"""Event bus protocol, its in-process implementation, and the Redis pub/sub one.

Publishers never wait for subscribers: each subscription owns a bounded queue, and a
subscriber that falls behind loses its oldest events (and is told how many) instead of
slowing the publisher down. With Redis, events also travel to and from every other process
of the deployment; local subscribers get local events directly, whether Redis is there or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from .redislink.client import ERRORS, RedisLink

log = logging.getLogger("dragonopsd.bus")
BATCH = 500  # events per Redis message at most
ROUTES_MAX = 50_000  # distinct topics remembered (a few per monitor and server)


@dataclass(frozen=True)
class Event:
    """One event: its topic, its type (``monitor.status``...), when it was produced, and its
    camelCase payload (a Struct)."""

    topic: str
    data: Any
    kind: str = ""
    ts: float = field(default_factory=time.time)
    # Received from another process of the deployment (its payload is raw JSON): what each
    # process does once for the whole deployment (the Redis state mirror) skips these.
    remote: bool = False


class Subscription:
    """A bounded queue of events whose topics match one of the patterns.

    A pattern is a topic, or a prefix ending in ``*`` (``servers.*`` matches every server topic).
    """

    def __init__(self, patterns: Iterable[str], maxsize: int = 1000) -> None:
        self.patterns = frozenset(patterns)
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self.dropped = 0

    def matches(self, topic: str) -> bool:
        """True when the topic is one of the patterns or under a ``prefix*`` pattern."""
        if topic in self.patterns:
            return True
        return any(p.endswith("*") and topic.startswith(p[:-1]) for p in self.patterns)

    def offer(self, event: Event) -> None:
        """Queue the event, dropping the oldest one when full."""
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)


class Bus(Protocol):
    """Where events are published and subscribed to."""

    def publish(self, topic: str, data: Any, kind: str = "") -> None:
        """Deliver an event to every matching subscription, without waiting."""
        ...

    def subscribe(self, patterns: Iterable[str], maxsize: int = 1000) -> Subscription:
        """Start receiving events whose topic matches."""
        ...

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop receiving events."""
        ...


class LocalBus:
    """In-process fan-out to subscription queues."""

    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        # topic -> the subscriptions it reaches: matching every pattern of every subscription
        # per event cost microseconds each on the hot path (thousands of events a second).
        # Emptied whenever the subscriptions change, and when it grows past ROUTES_MAX topics.
        self._routes: dict[str, tuple[Subscription, ...]] = {}
        # Topics reaching the same subscriptions share one tuple: a tuple of subscriptions is
        # a container the cyclic collector walks, and one per monitor topic (25,000 of them)
        # made every full collection walk 25,000 more objects.
        self._shared: dict[tuple[Subscription, ...], tuple[Subscription, ...]] = {}

    def publish(self, topic: str, data: Any, kind: str = "") -> None:
        """Deliver an event to every matching subscription, without waiting."""
        self.deliver(Event(topic, data, kind))

    def deliver(self, event: Event) -> None:
        """Hand one event (made here or received from elsewhere) to the matching subscriptions."""
        topic = event.topic
        subs = self._routes.get(topic)
        if subs is None:
            if len(self._routes) >= ROUTES_MAX:
                self._forget()
            subs = tuple(s for s in self._subs if s.matches(topic))
            subs = self._routes[topic] = self._shared.setdefault(subs, subs)
        for sub in subs:
            sub.offer(event)

    def subscribe(self, patterns: Iterable[str], maxsize: int = 1000) -> Subscription:
        """Start receiving events whose topic matches."""
        sub = Subscription(patterns, maxsize)
        self._subs.add(sub)
        self._forget()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop receiving events."""
        self._subs.discard(sub)
        self._forget()

    def _forget(self) -> None:
        """Drop the routes worked out so far (the subscriptions changed, or too many topics)."""
        self._routes.clear()
        self._shared.clear()


class _Outgoing(msgspec.Struct, array_like=True):
    origin: str
    topic: str
    kind: str
    ts: float
    data: Any


class _Incoming(msgspec.Struct, array_like=True):
    origin: str
    topic: str
    kind: str
    ts: float
    data: msgspec.Raw  # re-encoded as is into websocket frames: no decode, no schema needed


class RedisBus(LocalBus):
    """Local fan-out plus Redis pub/sub between the processes of a deployment.

    ``publish`` delivers locally at once and queues the encoded event (bounded; the oldest go
    when Redis is slow or away) for a publisher task that sends what is queued as one message
    (a JSON array of envelopes, up to BATCH). A reader task receives every process's messages
    and delivers the others' events locally, with their payload as raw JSON; its own messages
    are recognised by their first bytes and never decoded. Both reconnect with backoff on
    their own.

    One message per batch rather than one per event: each message costs every process of the
    deployment a pass through redis-py's reader (tens of microseconds of Python), so with one
    message per event every core paid that for every check of every core, a cost that grew
    with the deployment and kept two cores from doubling one's checks.
    """

    def __init__(self, link: RedisLink, *, max_pending: int = 10_000) -> None:
        super().__init__()
        self._link = link
        self.origin = os.urandom(6).hex()
        self._out: deque[bytes] = deque(maxlen=max_pending)
        self._wake = asyncio.Event()
        self._encoder = msgspec.json.Encoder()
        self._decoder = msgspec.json.Decoder(list[_Incoming])
        # A batch starts with its first envelope, which starts with the origin (array_like).
        self._own = b'[["' + self.origin.encode() + b'"'
        self.sent = 0
        self.received = 0
        self.dropped = 0  # not sent: Redis away, or the outgoing queue overflowed

    def publish(self, topic: str, data: Any, kind: str = "") -> None:
        """Deliver locally, and queue the event for the other processes."""
        event = Event(topic, data, kind)
        self.deliver(event)
        if not self._link.up:
            self.dropped += 1
            return
        try:
            payload = self._encoder.encode(_Outgoing(self.origin, topic, kind, event.ts, data))
        except (TypeError, ValueError):
            log.exception("cannot encode %s event on %s for redis", kind, topic)
            return
        if len(self._out) == self._out.maxlen:
            self.dropped += 1
        self._out.append(payload)
        self._wake.set()

    async def run_publisher(self) -> None:
        """Send queued events in pipelined batches until cancelled."""
        channel = self._link.keys.events
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._out:
                batch = [self._out.popleft() for _ in range(min(len(self._out), BATCH))]
                try:
                    await self._link.client.publish(channel, b"[" + b",".join(batch) + b"]")
                    self.sent += len(batch)
                except ERRORS as exc:  # pub/sub is fire-and-forget: these events are gone
                    self.dropped += len(batch)
                    self._link.failed(exc, "publish")

    async def run_reader(self) -> None:
        """Receive the other processes' events until cancelled; resubscribe after an outage."""
        backoff = 0.2
        while True:
            await self._link.wait_up()
            pubsub = self._link.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._link.keys.events)
                backoff = 0.2
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        try:
                            self._receive(message["data"])
                        except Exception:  # a subscriber's bug must not end the reader
                            log.exception("delivering an event from redis failed")
            except ERRORS as exc:
                self._link.failed(exc, "subscribe")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                with contextlib.suppress(*ERRORS):
                    await pubsub.aclose()

    def _receive(self, payload: bytes) -> None:
        if payload.startswith(self._own):
            return  # ours: local subscribers already have them
        try:
            batch = self._decoder.decode(payload)
        except msgspec.DecodeError:  # not JSON, or not a batch of event envelopes
            log.warning("ignoring a malformed event batch from redis (%d bytes)", len(payload))
            return
        for msg in batch:
            if msg.origin == self.origin:
                continue
            self.received += 1
            self.deliver(Event(msg.topic, msg.data, msg.kind, msg.ts, remote=True))
