"""check-config's look at ``[status_page]``: references that name no monitor, or a name
several monitors carry. Monitors live in the database as well as in ``[[monitors]]``, so the
database is read when it can be (never created, never migrated)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable

from ..config import Config
from ..monitoring.statuspage import reference_warnings
from ..store.backend import database_for

OPEN_TIMEOUT = 5.0


async def _stored(cfg: Config) -> list[tuple[str, str]] | None:
    """(id, name) of every stored monitor; None when the database cannot be read."""
    if not cfg.storage.url and not cfg.resolve(cfg.storage.path).exists():
        return []  # no database yet: every monitor is in the file
    db = database_for(cfg, readers=1)
    try:
        async with asyncio.timeout(OPEN_TIMEOUT):
            await db.open(migrate=False)
            async with db.read() as conn:
                rows = await conn.execute_fetchall("SELECT id, name FROM monitors")
        return [(str(r[0]), str(r[1])) for r in rows]
    except Exception:  # unreachable, locked, not migrated: the file's monitors must do
        return None
    finally:
        await db.close()


def page_warnings(cfg: Config, file_names: Iterable[str]) -> tuple[list[str], bool]:
    """The warnings, and whether the database's monitors were part of the check."""
    stored = asyncio.run(_stored(cfg))
    counts = Counter(name for _, name in stored or [])
    for name in file_names:
        counts[name] = counts[name] or 1  # declared, maybe not synced yet: one monitor
    ids = {ident for ident, _ in stored or []}
    section = cfg.status_page
    warnings = reference_warnings("status_page.monitors", tuple(section.monitors), counts, ids)
    for n, page in enumerate(section.pages):
        key = f"status_page.pages[{n}].monitors"
        warnings += reference_warnings(key, tuple(page.monitors), counts, ids)
    return warnings, stored is not None
