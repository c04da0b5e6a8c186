"""The inventory hierarchy as the in-memory index holds it: every entity's name and parent link,
and each server's status and sampling source. One snapshot, four statements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from .sql import Database


class ServerLink(NamedTuple):
    """A server as its readers see it: named in root causes and labels, sampled by its source."""

    name: str
    environment_id: str
    status: str
    sampling: str


@dataclass(frozen=True)
class Hierarchy:
    """Each entity's name and parent link, keyed by id."""

    clients: dict[str, str] = field(default_factory=dict)  # id -> name
    projects: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (name, client)
    environments: dict[str, tuple[str, str]] = field(default_factory=dict)  # (name, project)
    servers: dict[str, ServerLink] = field(default_factory=dict)


async def read_hierarchy(db: Database) -> Hierarchy:
    """Read every client, project, environment and server in one consistent view."""
    async with db.read(snapshot=True) as conn:
        clients = await conn.execute_fetchall("SELECT id, name FROM clients")
        projects = await conn.execute_fetchall("SELECT id, name, client_id FROM projects")
        envs = await conn.execute_fetchall("SELECT id, name, project_id FROM environments")
        servers = await conn.execute_fetchall(
            "SELECT id, name, environment_id, status, sampling FROM servers"
        )
    return Hierarchy(
        clients={r[0]: r[1] for r in clients},
        projects={r[0]: (r[1], r[2]) for r in projects},
        environments={r[0]: (r[1], r[2]) for r in envs},
        servers={r[0]: ServerLink(r[1], r[2], r[3], r[4]) for r in servers},
    )
