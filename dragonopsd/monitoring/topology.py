"""Where monitors sit in the inventory: scopes for routing, and root causes for suppression."""

from __future__ import annotations

from ..inventory.index import InventoryIndex
from ..model.monitor import Monitor, Scope

# A server in one of these states takes its dependent monitors' alerts with it.
SERVER_DOWN = frozenset({"stopped", "stopping", "unreachable"})


class Topology:
    """Inventory links looked up in the index's current snapshot (kept fresh by the index)."""

    def __init__(self, index: InventoryIndex) -> None:
        self._index = index

    def scope(self, monitor: Monitor) -> Scope:
        """The monitor's place: its server, environment, project and client."""
        tree = self._index.hierarchy
        env = monitor.environment_id
        if monitor.server_id and not env:
            server = tree.servers.get(monitor.server_id)
            env = server.environment_id if server else None
        env_link = tree.environments.get(env) if env else None
        project = env_link[1] if env_link else None
        project_link = tree.projects.get(project) if project else None
        client = project_link[1] if project_link else None
        return Scope(
            monitor_id=monitor.id,
            tags=tuple(monitor.tags),
            server_id=monitor.server_id,
            environment_id=env,
            project_id=project,
            client_id=client,
        )

    def place(self, kind: str, ident: str) -> Scope:
        """Where a server, environment, project or client sits (monitor_id empty): a manual
        incident on it reaches the channels and pages that cover any level above it."""
        tree = self._index.hierarchy
        server = env = project = client = None
        if kind == "server":
            server = ident
            link = tree.servers.get(ident)
            env = link.environment_id if link else None
        elif kind == "environment":
            env = ident
        elif kind == "project":
            project = ident
        elif kind == "client":
            client = ident
        if env:
            env_link = tree.environments.get(env)
            project = env_link[1] if env_link else None
        if project:
            project_link = tree.projects.get(project)
            client = project_link[1] if project_link else None
        return Scope(
            monitor_id="",
            server_id=server,
            environment_id=env,
            project_id=project,
            client_id=client,
        )

    def server_down(self, server_id: str | None) -> str | None:
        """Why the server is down by inventory state, or None."""
        server = self._index.hierarchy.servers.get(server_id) if server_id else None
        if server is None or server.status not in SERVER_DOWN:
            return None
        return f"server {server.name} ({server_id}) is {server.status}"
