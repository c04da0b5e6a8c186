"""Websocket gates for scoped subscribers: which events belong to a client in their reach.

An event is placed by its topic where the topic names the entity (``servers.{id}.metrics``,
``monitors.{id}``), else by its payload (a monitor, server or inventory entity id). A monitor
is placed through the server or environment it is attached to (the engine's runtimes hold
every monitor of the deployment), a manual incident by all of its targets; what cannot be
placed is not sent to scoped subscribers. Built by the app factory for the hub (live/gate.py).
"""

from __future__ import annotations

import logging
from typing import Any

from .inventory.index import InventoryIndex
from .inventory.reach import Reach
from .live.gate import Gate
from .model.principal import Principal
from .monitoring.views import EngineView

log = logging.getLogger("dragonopsd.live")
LEFT_MAX = 10_000  # ids remembered per table of what left a socket's reach

# inventory.changed names its entity in the singular; Reach.entity takes the table's name.
_TABLES = {
    "client": "clients",
    "project": "projects",
    "environment": "environments",
    "server": "servers",
}


def _field(data: Any, name: str, wire: str) -> Any:
    """A payload's field: a Struct's attribute, or a decoded event's camelCase key."""
    if isinstance(data, dict):
        return data.get(wire)
    return getattr(data, name, None)


class ScopeGate:
    """What one scoped principal may receive, judged on the inventory snapshot held now."""

    def __init__(self, principal: Principal, index: InventoryIndex, view: EngineView) -> None:
        self._principal = principal
        self._index = index
        self._view = view
        self._reach = index.reach_now(principal)
        # Entities that left the reach while the socket was open, by table: the event of a
        # deletion is judged after the entity has left the inventory, possibly several
        # re-reads later (other writes re-read it meanwhile), and its subscriber saw it until
        # then. The events name only the entity's id, which the subscriber knew.
        self._left: dict[str, set[str]] = {table: set() for table in _TABLES.values()}

    def _follow(self, reach: Reach) -> None:
        """Take a re-read's reach, remembering what left it."""
        for table, left in self._left.items():
            before, now = getattr(self._reach, table), getattr(reach, table)
            if before is not None and now is not None:
                left.update(before - now)
                if len(left) > LEFT_MAX:  # a socket open through many deletions: forget
                    left.clear()
        self._reach = reach

    def admits(self, topic: str, kind: str, data: Any) -> bool:
        """Whether topic's event (or snapshot item) belongs to an entity in reach."""
        reach = self._index.reach_now(self._principal)
        if reach is not self._reach:
            self._follow(reach)
        if topic.startswith("servers."):
            return reach.server(topic.split(".")[1])
        if topic.startswith("monitors."):
            return self._monitor(reach, topic[len("monitors.") :])
        if topic == "inventory":
            table = _TABLES.get(_field(data, "entity", "entity"))
            ident = _field(data, "id", "id")
            if table is None or not isinstance(ident, str):
                return False
            return reach.entity(table, ident) or ident in self._left[table]
        if topic == "actions":
            return reach.server(_field(data, "server_id", "serverId"))
        if topic in ("monitors", "incidents"):
            monitor = _field(data, "monitor_id", "monitorId")
            if isinstance(monitor, str):
                return self._monitor(reach, monitor)
            targets = _field(data, "targets", "targets")  # a manual incident
            return bool(targets) and all(self._target(reach, t) for t in targets)
        return False

    def _monitor(self, reach: Reach, monitor_id: str) -> bool:
        placed = self._view.placement(monitor_id)
        return placed is not None and reach.monitor(*placed)

    def _target(self, reach: Reach, target: Any) -> bool:
        kind, ident = _field(target, "kind", "kind"), _field(target, "id", "id")
        if not isinstance(ident, str):
            return False
        if kind == "monitor":
            return self._monitor(reach, ident)
        if kind == "client":  # whole clients only, as over HTTP (store/placement.py Within)
            scope = self._principal.scope
            return scope is not None and ident in scope.clients and reach.client(ident)
        table = _TABLES.get(kind)
        return table is not None and reach.entity(table, ident)


class ScopeGates:
    """The hub's gate builder (live/gate.py Gates) over the inventory index and the engine."""

    def __init__(self, index: InventoryIndex, view: EngineView) -> None:
        self._index = index
        self._view = view

    def of(self, principal: Principal) -> Gate | None:
        """A gate for a scoped principal; None for an unscoped one."""
        if principal.scope is None:
            return None
        return ScopeGate(principal, self._index, self._view)

    async def settle(self) -> None:
        """Re-read the inventory if a write was announced since the last read; on failure
        the gates judge by the snapshot held (logged: a placement may lag one write)."""
        try:
            await self._index.current()
        except Exception:
            log.exception("could not re-read the inventory for scoped websockets")
