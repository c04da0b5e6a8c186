"""The topics websocket clients may subscribe to, and the frames the hub sends them.

A client topic is one of ``servers.{id}.metrics``, ``servers.*.metrics``, ``monitors``,
``monitors.{id}``, ``incidents``, ``actions`` and ``inventory``. Each is also a bus topic,
except the ``servers.*.metrics`` wildcard, which stands for every ``servers.{id}.metrics``.
A server's topic carries its ``server.metrics`` samples and its ``server.alert`` events.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

ALL_SERVERS = "servers.*.metrics"
FIXED = frozenset({"monitors", "incidents", "actions", "inventory", ALL_SERVERS})
# Bus patterns that cover every client topic; the hub subscribes to the bus once with these.
BUS_PATTERNS = ("servers.*", "monitors", "monitors.*", "incidents", "actions", "inventory")
# Latest-state kinds: a newer one makes a queued, unsent one worthless, so it replaces it.
# Everything else (status, incidents, actions, inventory) is delivered or the client is closed.
COALESCED = frozenset({"server.metrics", "monitor.heartbeat"})
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# A batch frame grows past this only by its first event (so any event fits): clients' message
# limits are finite (the ``websockets`` library's default is 1 MiB).
BATCH_BYTES = 64 * 1024


def template_of(topic: str) -> str | None:
    """The topic's template (``monitors.{id}``, ``servers.*.metrics``...), or None when no
    client may subscribe to it."""
    if topic in FIXED:
        return topic
    parts = topic.split(".")
    if len(parts) == 2 and parts[0] == "monitors" and _ID.fullmatch(parts[1]):
        return "monitors.{id}"
    if len(parts) == 3 and parts[0] == "servers" and parts[2] == "metrics":
        return "servers.{id}.metrics" if _ID.fullmatch(parts[1]) else None
    return None


def topic_id(topic: str) -> str | None:
    """The id in ``monitors.{id}`` or ``servers.{id}.metrics``, else None."""
    template = template_of(topic)
    if template in ("monitors.{id}", "servers.{id}.metrics"):
        return topic.split(".")[1]
    return None


def wildcard_of(topic: str) -> str | None:
    """The wildcard subscription that also covers a concrete topic, if any."""
    if topic.startswith("servers.") and topic.endswith(".metrics") and topic != ALL_SERVERS:
        return ALL_SERVERS
    return None


class Frame(msgspec.Struct, omit_defaults=True):
    """One server -> client text frame (DESIGN.md "Websocket frames").

    ``type`` is snapshot, event, ack or error (``batch_frame`` wraps event frames for a
    client that asked); ``event`` names the event kind (``monitor.status``...); ``seq`` counts
    per topic; ``ts`` is when it was produced.
    """

    type: str
    event: str | None = None
    topic: str | None = None
    seq: int | None = None
    ts: float | None = None
    data: Any = None


# Stateless and reused: msgspec encoders are meant to be built once.
_ENCODER = msgspec.json.Encoder()


def encode(frame: Frame) -> bytes:
    """The frame as JSON bytes, ready to go out as a text frame."""
    return _ENCODER.encode(frame)


def batch_frame(events: list[bytes]) -> bytes:
    """A ``batch`` frame: event frames, each whole (its own topic and seq), in order."""
    return b'{"type":"batch","events":[' + b",".join(events) + b"]}"


def ack(op: str, **data: Any) -> bytes:
    """An ``ack`` frame for a client op."""
    return encode(Frame("ack", data={"op": op, **data}))


def error(message: str, *, op: str | None = None, topic: str | None = None) -> bytes:
    """An ``error`` frame; the socket stays open."""
    data: dict[str, Any] = {"message": message}
    if op is not None:
        data["op"] = op
    return encode(Frame("error", topic=topic, data=data))
