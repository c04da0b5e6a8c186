"""Event bus protocol and its in-process implementation.

Publishers never wait for subscribers: each subscription owns a bounded queue, and a
subscriber that falls behind loses its oldest events (and is told how many) instead of
slowing the publisher down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Event:
    """One event: its topic, its type (``monitor.status``...), when it was produced, and its
    camelCase payload (a Struct)."""

    topic: str
    data: Any
    kind: str = ""
    ts: float = field(default_factory=time.time)


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

    def publish(self, topic: str, data: Any, kind: str = "") -> None:
        """Deliver an event to every matching subscription, without waiting."""
        event = Event(topic, data, kind)
        for sub in self._subs:
            if sub.matches(topic):
                sub.offer(event)

    def subscribe(self, patterns: Iterable[str], maxsize: int = 1000) -> Subscription:
        """Start receiving events whose topic matches."""
        sub = Subscription(patterns, maxsize)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop receiving events."""
        self._subs.discard(sub)
