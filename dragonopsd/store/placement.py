"""Where monitors sit, and SQL conditions that keep only what a scoped caller reaches.

Incidents, maintenance windows and alert rules name monitors, servers, environments, projects
and clients. A scoped caller (model/principal.py) sees one only when every thing it names is
in its reach; the lists of them are paginated, so the filter is a condition of their query
(pages and cursors stay right), built here from the ids the caller reaches.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import msgspec

from .sql import Database

_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True)
class Within:
    """The ids a scoped caller reaches (inventory/reach.py), as queries filter on them.

    ``clients`` holds only the clients its scope names whole: a caller scoped to one project
    of a client knows that client's name, but an incident, window or rule on the whole client
    concerns its other projects too, so it stays out of reach.
    """

    clients: frozenset[str]
    projects: frozenset[str]
    environments: frozenset[str]
    servers: frozenset[str]

    def place(self, server_id: str | None, environment_id: str | None) -> bool:
        """Whether a monitor attached there is in reach (each link it has must be, as
        inventory/reach.py judges; a monitor attached to nothing is never in reach)."""
        if server_id is None and environment_id is None:
            return False
        return (server_id is None or server_id in self.servers) and (
            environment_id is None or environment_id in self.environments
        )

    def holds(self, kind: str, ident: str) -> bool:
        """Whether a client, project, environment or server (by kind) is in reach."""
        if kind == "client":
            return ident in self.clients
        if kind == "project":
            return ident in self.projects
        if kind == "environment":
            return ident in self.environments
        return kind == "server" and ident in self.servers


def _ids(ids: Collection[str]) -> str:
    return _encode(sorted(ids)).decode()


def monitors_within(within: Within, column: str) -> tuple[str, list[Any]]:
    """A condition: column names a monitor in reach (as ``Within.place`` judges)."""
    return (
        f"{column} IN (SELECT id FROM monitors WHERE "
        "(server_id IS NOT NULL OR environment_id IS NOT NULL) "
        "AND (server_id IS NULL OR server_id IN (SELECT value FROM json_each(?))) "
        "AND (environment_id IS NULL OR environment_id IN (SELECT value FROM json_each(?))))",
        [_ids(within.servers), _ids(within.environments)],
    )


def targets_within(within: Within, targets: str, owner: str) -> tuple[str, list[Any]]:
    """A condition: no row of the targets table (kind, target_id) whose incident_id is owner
    names something out of reach. An incident on several things is in reach only when all of
    them are: showing it would name the others."""
    monitors, monitor_args = monitors_within(within, "t.target_id")
    return (
        f"NOT EXISTS (SELECT 1 FROM {targets} t WHERE t.incident_id = {owner} AND NOT ("
        "(t.kind = 'client' AND t.target_id IN (SELECT value FROM json_each(?))) "
        "OR (t.kind = 'project' AND t.target_id IN (SELECT value FROM json_each(?))) "
        "OR (t.kind = 'environment' AND t.target_id IN (SELECT value FROM json_each(?))) "
        "OR (t.kind = 'server' AND t.target_id IN (SELECT value FROM json_each(?))) "
        f"OR (t.kind = 'monitor' AND {monitors})))",
        [
            _ids(within.clients),
            _ids(within.projects),
            _ids(within.environments),
            _ids(within.servers),
            *monitor_args,
        ],
    )


class MonitorPlaces:
    """Which server and environment each monitor is attached to, read in one query: the
    engine holds only the monitors its core runs, and this must answer for any."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def of(self, ids: Collection[str]) -> dict[str, tuple[str | None, str | None]]:
        """monitor id -> (server id, environment id), for those of ids that exist."""
        if not ids:
            return {}
        async with self.db.read() as conn:
            rows = await conn.execute_fetchall(
                "SELECT id, server_id, environment_id FROM monitors "
                "WHERE id IN (SELECT value FROM json_each(?))",
                (_ids(set(ids)),),
            )
        return {r[0]: (r[1], r[2]) for r in rows}
