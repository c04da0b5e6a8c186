"""What the sampler writes in the inventory: each environment's ``resources`` aggregate (what it
reads, each server's sampling source, comes from the inventory index)."""

from __future__ import annotations

from typing import Any

import msgspec

from .rollups import transact
from .sql import Connection, Database

_encode = msgspec.json.Encoder().encode

# A JSON merge patch: SQLite's json_patch; PostgreSQL's jsonb || drops no keys by itself, so
# the nulls (meaning "remove") are stripped after (the figures are one flat object).
_MERGE = {
    "sqlite": "json_patch(resources, ?)",
    "postgres": "jsonb_strip_nulls(resources::jsonb || ?::jsonb)::text",
}


async def write_resources(db: Database, updates: dict[str, dict[str, Any]]) -> int:
    """Merge each environment's figures into its resources JSON, all in one transaction.

    json_patch keeps keys someone else put there (an operator's notes on the hardware), and
    updated_at is left alone: it records edits, and the figures carry their own updatedAt.
    """
    if not updates:
        return 0
    rows = [(_encode(figures).decode(), env) for env, figures in updates.items()]

    sql = f"UPDATE environments SET resources = {_MERGE[db.dialect]} WHERE id = ?"

    async def work(conn: Connection) -> int:
        cur = await conn.executemany(sql, rows)
        return max(cur.rowcount, 0)

    return await transact(db, work)  # a shutdown mid-write lets the transaction finish
