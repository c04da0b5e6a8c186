"""The inventory hierarchy as table specs: clients -> projects -> environments -> servers.

The four tables share one shape, so one spec per level drives every query the store makes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, get_args

import msgspec

from ..model.inventory import (
    AnyEntity,
    Client,
    ClientStatus,
    Environment,
    EnvironmentStatus,
    Project,
    ProjectStatus,
    Server,
    ServerStatus,
)
from ..problem import invalid

_json_decode = msgspec.json.Decoder().decode

COMMON = ("id", "name", "description", "tags", "created_at", "updated_at")


@dataclass(frozen=True)
class Level:
    """One level of the hierarchy: its table, columns, parent link and derived child count."""

    table: str
    singular: str
    struct: type[Client | Project | Environment | Server]
    own: tuple[str, ...]
    json_columns: frozenset[str]
    parent_column: str | None = None
    parent_table: str | None = None
    child_table: str | None = None
    statuses: tuple[str, ...] = ()
    columns: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", COMMON + self.own)

    @property
    def count_field(self) -> str | None:
        """Name of the derived child count (``project_count``), if the level has children."""
        return f"{self.child_table[:-1]}_count" if self.child_table else None

    def select(self) -> str:
        """SELECT list with the derived child count computed in the same statement."""
        cols = ", ".join(f"t.{c}" for c in self.columns)
        if self.child_table:
            child = LEVELS[self.child_table]
            cols += (
                f", (SELECT COUNT(*) FROM {self.child_table} c "
                f"WHERE c.{child.parent_column} = t.id)"
            )
        return f"SELECT {cols} FROM {self.table} t"

    def from_row(self, row: Sequence[Any]) -> AnyEntity:
        """Build the entity Struct from a row of select()."""
        values = {
            name: (_json_decode(v) if name in self.json_columns else v)
            for name, v in zip(self.columns, row, strict=False)
        }
        if self.count_field:
            values[self.count_field] = row[len(self.columns)]
        return self.struct(**values)


LEVELS: dict[str, Level] = {
    "clients": Level(
        "clients",
        "client",
        Client,
        ("status",),
        frozenset({"tags"}),
        child_table="projects",
        statuses=get_args(ClientStatus),
    ),
    "projects": Level(
        "projects",
        "project",
        Project,
        ("client_id", "status", "technology"),
        frozenset({"tags", "technology"}),
        parent_column="client_id",
        parent_table="clients",
        child_table="environments",
        statuses=get_args(ProjectStatus),
    ),
    "environments": Level(
        "environments",
        "environment",
        Environment,
        ("project_id", "status", "url", "resources"),
        frozenset({"tags", "resources"}),
        parent_column="project_id",
        parent_table="projects",
        child_table="servers",
        statuses=get_args(EnvironmentStatus),
    ),
    "servers": Level(
        "servers",
        "server",
        Server,
        ("environment_id", "type", "status", "private_ip", "sampling"),
        frozenset({"tags"}),
        parent_column="environment_id",
        parent_table="environments",
        statuses=get_args(ServerStatus),
    ),
}

# column -> wire name, for sort keys and error paths
SORTS = {"name": "name", "createdAt": "created_at", "updatedAt": "updated_at", "status": "status"}


def camel(name: str) -> str:
    """snake_case column name -> camelCase wire name."""
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def includes_for(table: str) -> set[str]:
    """Every valid ``include=`` path below a level (``projects.environments.servers``...)."""
    paths: set[str] = set()
    prefix = ""
    child = LEVELS[table].child_table
    while child:
        prefix = f"{prefix}.{child}" if prefix else child
        paths.add(prefix)
        child = LEVELS[child].child_table
    return paths


def include_depth(table: str, include: Iterable[str]) -> int:
    """How many levels below ``table`` to embed; raises 422 naming ``include`` if unknown."""
    valid = includes_for(table)
    depth = 0
    for path in include:
        if path not in valid:
            options = ", ".join(sorted(valid)) or "nothing"
            raise invalid("include", f"unknown include '{path}' (valid here: {options})")
        depth = max(depth, path.count(".") + 1)
    return depth
