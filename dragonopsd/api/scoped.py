"""A monitor as a scoped caller may name it: in its reach, or the 404 of a missing one.

Monitors belong to a client through the server or environment they are attached to
(inventory/reach.py); the monitor routes, their history and their pings all look one up by
the ``{id}`` in the path and answer alike for one outside the reach and one that is not there.
"""

from __future__ import annotations

from aiohttp import web

from ..appkeys import MONITORS
from ..problem import not_found
from ..store.monitors import MonitorRow
from .access import reach


async def monitor_row(request: web.Request, ident: str) -> MonitorRow:
    """The monitor, or 404 when it does not exist or is outside the caller's reach."""
    row = await request.app[MONITORS].store.get(ident)
    seen = await reach(request)
    if not seen.monitor(row.monitor.server_id, row.monitor.environment_id):
        raise not_found("monitor", ident)
    return row


async def check_monitor_reach(request: web.Request, ident: str) -> None:
    """monitor_row for a handler that reads the row itself: nothing more for unscoped
    callers, one lookup for scoped ones."""
    if not (await reach(request)).everything:
        await monitor_row(request, ident)
