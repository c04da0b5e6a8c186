"""Inventory context for a prompt: the project and environment it is about, as metadata.

Given ids must name real rows (422 naming the field otherwise, as for any dangling reference
in a body). Without ids, a project whose name the prompt spells out is used, when exactly one
is; its environment likewise. Nothing but names, technologies, URLs (without userinfo or
query) and server types and addresses is read: secrets live elsewhere and never come near
this module. A scoped caller's context comes from its reach alone: a project outside it is
not matched by name, and its id gets the answer a nonexistent one gets.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING

from ..inventory.reach import Reach
from ..model.inventory import AnyEntity, Environment, Project, Server, public_url
from ..problem import Problem, invalid
from ..store.inventory import ListQuery
from .model import Context, EnvironmentInfo, ProjectInfo, ServerInfo

if TYPE_CHECKING:
    from ..inventory.service import InventoryService

# Projects scanned for a name in the prompt; beyond this, pass projectId.
SCAN_LIMIT = 200
MIN_NAME = 3  # "QA" or "UI" as a project name would match too much prose


def _project(p: Project) -> ProjectInfo:
    return ProjectInfo(name=p.name, technology=list(p.technology))


def _environment(e: Environment) -> EnvironmentInfo:
    servers = e.servers if isinstance(e.servers, list) else []
    # The URL goes to a remote model: never with its user:password or a token in its query.
    url = public_url(e.url) if e.url else None
    return EnvironmentInfo(
        name=e.name, url=url, status=e.status, servers=[_server(s) for s in servers]
    )


def _server(s: Server) -> ServerInfo:
    return ServerInfo(name=s.name, type=s.type, status=s.status, private_ip=s.private_ip)


def _named(prompt: str, names: list[str]) -> list[int]:
    hits = []
    for i, name in enumerate(names):
        if len(name) >= MIN_NAME and re.search(
            rf"(?<!\w){re.escape(name)}(?!\w)", prompt, re.IGNORECASE
        ):
            hits.append(i)
    return hits


async def _get(
    inventory: InventoryService, table: str, ident: str, field: str, depth: int, *, reach: Reach
) -> AnyEntity:
    missing = invalid(field, f"{table[:-1]} {ident} does not exist")
    try:
        found = await inventory.get(table, ident, depth)
    except Problem as exc:
        if exc.status == 404:
            raise missing from None
        raise
    if not reach.entity(table, found.id):
        raise missing
    return found


async def from_ids(
    inventory: InventoryService,
    project_id: uuid.UUID | None,
    environment_id: uuid.UUID | None,
    reach: Reach,
) -> Context:
    """Context from the ids in the request (in the caller's reach)."""
    env: Environment | None = None
    if environment_id is not None:
        wanted = str(environment_id)
        found = await _get(inventory, "environments", wanted, "$.environmentId", 1, reach=reach)
        assert isinstance(found, Environment)
        env = found
    ident = str(project_id) if project_id is not None else env.project_id if env else None
    project: Project | None = None
    if ident is not None:
        found = await _get(inventory, "projects", ident, "$.projectId", 0, reach=reach)
        assert isinstance(found, Project)
        project = found
    if env is not None and project is not None and env.project_id != project.id:
        raise invalid("$.environmentId", f"environment {env.id} belongs to another project")
    return Context(
        project=_project(project) if project else None,
        environment=_environment(env) if env else None,
        found_by="request",
    )


async def from_prompt(inventory: InventoryService, prompt: str, reach: Reach) -> Context:
    """Context from a project (and environment) in reach the prompt names; empty when none or
    several."""
    # A scoped caller's projects are chosen in the query: filtered after it, the first
    # SCAN_LIMIT of every client's could hold none of them.
    query = ListQuery(limit=SCAN_LIMIT, ids=None if reach.everything else reach.projects)
    projects, _ = await inventory.list("projects", query)
    hits = _named(prompt, [p.name for p in projects])
    if len(hits) != 1:
        return Context()
    project = projects[hits[0]]
    assert isinstance(project, Project)
    full = await inventory.get("projects", project.id, 2)
    assert isinstance(full, Project)
    envs = full.environments if isinstance(full.environments, list) else []
    env_hits = _named(prompt, [e.name for e in envs])
    env = envs[env_hits[0]] if len(env_hits) == 1 else None
    return Context(
        project=_project(full),
        environment=_environment(env) if env else None,
        found_by="prompt",
    )
