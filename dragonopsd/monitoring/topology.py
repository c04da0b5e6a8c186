"""Where monitors sit in the inventory: scopes for routing, and root causes for suppression."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..monitor import Monitor, Scope

# A server in one of these states takes its dependent monitors' alerts with it.
SERVER_DOWN = frozenset({"stopped", "stopping", "unreachable"})


@dataclass
class Topology:
    """Snapshot of the inventory links, refreshed when the inventory changes."""

    # id -> (env id, status, name): the name is what an operator reads in a root cause.
    servers: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    environments: dict[str, str] = field(default_factory=dict)  # id -> project id
    projects: dict[str, str] = field(default_factory=dict)  # id -> client id

    def scope(self, monitor: Monitor) -> Scope:
        """The monitor's place: its server, environment, project and client."""
        env = monitor.environment_id
        if monitor.server_id and not env:
            env = self.servers.get(monitor.server_id, (None, "", ""))[0]
        project = self.environments.get(env) if env else None
        client = self.projects.get(project) if project else None
        return Scope(
            monitor_id=monitor.id,
            tags=tuple(monitor.tags),
            server_id=monitor.server_id,
            environment_id=env,
            project_id=project,
            client_id=client,
        )

    def server_down(self, server_id: str | None) -> str | None:
        """Why the server is down by inventory state, or None."""
        if not server_id or server_id not in self.servers:
            return None
        _, status, name = self.servers[server_id]
        return f"server {name} ({server_id}) is {status}" if status in SERVER_DOWN else None
