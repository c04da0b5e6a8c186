"""What a scoped caller can see: the ids a Scope reaches in one snapshot of the hierarchy.

A scope names clients (all of their projects, environments and servers) and single projects.
Everything outside it answers as if it did not exist (404, and left out of every list, search
and websocket stream), so a scoped token learns nothing about other clients, not even that
they exist. A monitor is reached when the server and environment it is attached to both are (those
it has); one attached to neither belongs to no client and is reached by unscoped callers only.

Reaches are derived from the in-memory index (inventory/index.py), never from a query, and
cached per (scope, snapshot): a request of a scoped caller costs a few set lookups.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model.principal import Principal, Scope
from ..store.links import Hierarchy

CACHE_MAX = 256  # distinct scopes remembered per snapshot; more only cost a rebuild


@dataclass(frozen=True)
class Reach:
    """The client, project, environment and server ids one scope sees (``None``: all)."""

    clients: frozenset[str] | None = None
    projects: frozenset[str] | None = None
    environments: frozenset[str] | None = None
    servers: frozenset[str] | None = None

    @property
    def everything(self) -> bool:
        """True for unscoped callers: no filter to apply anywhere."""
        return self.clients is None

    def client(self, ident: str | None) -> bool:
        """Whether the client is in reach."""
        return self.clients is None or ident in self.clients

    def project(self, ident: str | None) -> bool:
        """Whether the project is in reach."""
        return self.projects is None or ident in self.projects

    def environment(self, ident: str | None) -> bool:
        """Whether the environment is in reach."""
        return self.environments is None or ident in self.environments

    def server(self, ident: str | None) -> bool:
        """Whether the server is in reach."""
        return self.servers is None or ident in self.servers

    def monitor(self, server_id: str | None, environment_id: str | None) -> bool:
        """Whether a monitor attached to this server and/or environment is in reach: each link
        it has must be (one on an Acme server but a Globex environment would show that
        environment's id), and it needs one."""
        if self.servers is None:
            return True
        if server_id is None and environment_id is None:
            return False
        return (server_id is None or server_id in self.servers) and (
            environment_id is None or environment_id in (self.environments or ())
        )

    def entity(self, kind: str, ident: str) -> bool:
        """Whether an inventory entity of kind (``clients`` ... ``servers``) is in reach."""
        if kind == "clients":
            return self.client(ident)
        if kind == "projects":
            return self.project(ident)
        if kind == "environments":
            return self.environment(ident)
        return self.server(ident)


EVERYTHING = Reach()


def reach_of(scope: Scope, hierarchy: Hierarchy) -> Reach:
    """The ids a scope sees in one snapshot."""
    projects = {
        pid
        for pid, (_, client) in hierarchy.projects.items()
        if client in scope.clients or pid in scope.projects
    }
    environments = {eid for eid, (_, pid) in hierarchy.environments.items() if pid in projects}
    servers = {
        sid for sid, link in hierarchy.servers.items() if link.environment_id in environments
    }
    # A client is listed when it is scoped whole or one of its projects is: the caller needs
    # its name to place the project, and reads nothing else of it.
    clients = {c for c in scope.clients if c in hierarchy.clients}
    clients.update(hierarchy.projects[pid][1] for pid in projects)
    return Reach(
        frozenset(clients), frozenset(projects), frozenset(environments), frozenset(servers)
    )


class Reaches:
    """Reach per scope, rebuilt when the index swaps its snapshot."""

    def __init__(self) -> None:
        self._hierarchy: Hierarchy | None = None
        self._cache: dict[Scope, Reach] = {}

    def of(self, principal: Principal | None, hierarchy: Hierarchy) -> Reach:
        """What this caller sees in this snapshot (everything when it carries no scope)."""
        scope = principal.scope if principal is not None else None
        if scope is None:
            return EVERYTHING
        if hierarchy is not self._hierarchy:
            self._hierarchy = hierarchy
            self._cache = {}
        found = self._cache.get(scope)
        if found is None:
            if len(self._cache) >= CACHE_MAX:
                self._cache.clear()
            found = self._cache[scope] = reach_of(scope, hierarchy)
        return found
