"""Inventory labels for metrics: where each environment and server sits, by name.

Scrapes never query the database: names come from the inventory index, and what is derived
from them here is remade only when the index has a new snapshot. ``generation`` changes only
when a monitor's labels would, so the per-monitor label text can stay cached across scrapes.
"""

from __future__ import annotations

from ..store.links import Hierarchy
from .views import HierarchySource

Placement = tuple[str, str, str]  # (client, project, environment) names; "" when unknown
NOWHERE: Placement = ("", "", "")


class InventoryLabels:
    """Client, project and environment names of every environment and server."""

    def __init__(self, index: HierarchySource) -> None:
        self._index = index
        self._seen: Hierarchy | None = None
        self._generation = 0
        self._env_place: dict[str, Placement] = {}
        self._server_env: dict[str, str] = {}

    @property
    def names(self) -> Hierarchy:
        """The index's current snapshot (server names and states for the server series)."""
        return self._index.hierarchy

    @property
    def generation(self) -> int:
        """Changes whenever some environment's or server's placement changed."""
        self._sync()
        return self._generation

    def placement(self, environment_id: str | None, server_id: str | None) -> Placement:
        """Where a monitor (or server) sits: its own environment, else its server's."""
        self._sync()
        env = environment_id or (self._server_env.get(server_id) if server_id else None)
        return self._env_place.get(env, NOWHERE) if env else NOWHERE

    def _sync(self) -> None:
        names = self._index.hierarchy
        if names is self._seen:
            return
        env_place: dict[str, Placement] = {}
        for env_id, (env_name, project_id) in names.environments.items():
            project_name, client_id = names.projects.get(project_id, ("", ""))
            env_place[env_id] = (names.clients.get(client_id, ""), project_name, env_name)
        server_env = {ident: server.environment_id for ident, server in names.servers.items()}
        if env_place != self._env_place or server_env != self._server_env:
            self._generation += 1
        self._env_place, self._server_env, self._seen = env_place, server_env, names
