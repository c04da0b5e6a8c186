"""What a subscriber limited to some clients may receive (a scoped token or profile).

The hub knows topics, not inventory: whoever knows where a server or a monitor belongs (the
app factory wires one, ``livescope.py``) decides per event. Unscoped subscribers have no gate
and never meet this module: their events take the hub's one path, untouched.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..model.principal import Principal


class Gate(Protocol):
    """One scoped subscriber's filter."""

    def admits(self, topic: str, kind: str, data: Any) -> bool:
        """Whether an event (or a snapshot item) of topic belongs to an entity in reach.
        ``data`` is the payload: a Struct, or a dict of camelCase keys (another process's
        event). What cannot be placed in reach is not admitted."""
        ...


class Gates(Protocol):
    """Builds gates; knows when the inventory it judges by is current."""

    def of(self, principal: Principal) -> Gate | None:
        """The principal's gate; None when it carries no scope (it receives everything)."""
        ...

    async def settle(self) -> None:
        """Wait until every announced inventory write is in what gates judge by (a server
        created a moment ago is placed before its ``inventory.changed`` event is judged)."""
        ...
