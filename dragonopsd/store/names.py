"""Names along the inventory hierarchy, for labelling metrics: one snapshot, four statements."""

from __future__ import annotations

from dataclasses import dataclass, field

from .db import Database


@dataclass(frozen=True)
class HierarchyNames:
    """Each entity's name and parent link, keyed by id."""

    clients: dict[str, str] = field(default_factory=dict)  # id -> name
    projects: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (name, client)
    environments: dict[str, tuple[str, str]] = field(default_factory=dict)  # (name, project)
    # id -> (name, environment id, status)
    servers: dict[str, tuple[str, str, str]] = field(default_factory=dict)


async def hierarchy_names(db: Database) -> HierarchyNames:
    """Read every client, project, environment and server name in one consistent view."""
    async with db.read(snapshot=True) as conn:
        clients = await conn.execute_fetchall("SELECT id, name FROM clients")
        projects = await conn.execute_fetchall("SELECT id, name, client_id FROM projects")
        envs = await conn.execute_fetchall("SELECT id, name, project_id FROM environments")
        servers = await conn.execute_fetchall(
            "SELECT id, name, environment_id, status FROM servers"
        )
    return HierarchyNames(
        clients={r[0]: r[1] for r in clients},
        projects={r[0]: (r[1], r[2]) for r in projects},
        environments={r[0]: (r[1], r[2]) for r in envs},
        servers={r[0]: (r[1], r[2], r[3]) for r in servers},
    )
