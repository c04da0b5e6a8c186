"""Inventory labels for metrics: where each environment and server sits, by name, cached.

Scrapes never query the database: the names are read in one snapshot at start and again after
inventory writes (at most once per ``min_interval``, however many writes came in), and
``generation`` changes only when a monitor's labels would, so the per-monitor label text can
stay cached across scrapes.
"""

from __future__ import annotations

import asyncio
import logging

from ..bus import Bus
from ..store.db import Database
from ..store.names import HierarchyNames, hierarchy_names

log = logging.getLogger("dragonopsd.metrics")

Placement = tuple[str, str, str]  # (client, project, environment) names; "" when unknown
NOWHERE: Placement = ("", "", "")


class InventoryLabels:
    """Client, project and environment names of every environment and server."""

    def __init__(self, db: Database, bus: Bus, *, min_interval: float = 1.0) -> None:
        self._db = db
        self._bus = bus
        self._min_interval = min_interval
        self.names = HierarchyNames()
        self.generation = 0
        self._env_place: dict[str, Placement] = {}
        self._server_env: dict[str, str] = {}

    def placement(self, environment_id: str | None, server_id: str | None) -> Placement:
        """Where a monitor (or server) sits: its own environment, else its server's."""
        env = environment_id or (self._server_env.get(server_id) if server_id else None)
        return self._env_place.get(env, NOWHERE) if env else NOWHERE

    async def refresh(self) -> None:
        """Re-read the names (one read snapshot, four statements)."""
        names = await hierarchy_names(self._db)
        env_place: dict[str, Placement] = {}
        for env_id, (env_name, project_id) in names.environments.items():
            project_name, client_id = names.projects.get(project_id, ("", ""))
            env_place[env_id] = (names.clients.get(client_id, ""), project_name, env_name)
        server_env = {ident: server[1] for ident, server in names.servers.items()}
        if env_place != self._env_place or server_env != self._server_env:
            self.generation += 1
        self._env_place, self._server_env, self.names = env_place, server_env, names

    async def follow(self) -> None:
        """Refresh at start, then after inventory writes, until cancelled."""
        sub = self._bus.subscribe(["inventory"], maxsize=100)
        try:
            while True:
                try:
                    await self.refresh()
                except Exception:  # a busy store must not end label updates for good
                    log.exception("could not read inventory names for metric labels")
                await asyncio.sleep(self._min_interval)  # a burst of writes: one refresh
                await sub.queue.get()
                while not sub.queue.empty():
                    sub.queue.get_nowait()
        finally:
            self._bus.unsubscribe(sub)
