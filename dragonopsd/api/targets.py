"""What incidents, maintenance windows and alert rules name, against a scoped caller's reach.

Each of them names monitors, servers, environments, projects or whole clients, and is in a
scoped caller's reach only when everything it names is: one that also named another client's
server would show that server's id (and the title would speak of it), and a write to it would
act on that client. An unscoped caller is never filtered and pays nothing here (``within``
answers None before anything is looked up).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from aiohttp import web

from ..appkeys import MONITOR_PLACES, PRINCIPAL
from ..problem import Problem
from ..store.placement import Within
from .access import reach

# (kind, id): kind is monitor, server, environment, project or client.
Target = tuple[str, str]
Places = dict[str, tuple[str | None, str | None]]


async def within(request: web.Request) -> Within | None:
    """The ids a scoped caller reaches, or None for an unscoped one (no filter at all)."""
    principal = request.get(PRINCIPAL)
    if principal is None or principal.scope is None:
        return None
    seen = await reach(request)
    return Within(
        clients=frozenset(c for c in principal.scope.clients if seen.client(c)),
        projects=seen.projects or frozenset(),
        environments=seen.environments or frozenset(),
        servers=seen.servers or frozenset(),
    )


async def places(request: web.Request, targets: Iterable[Target]) -> Places:
    """Where the monitors among targets are attached, in one query."""
    ids = {ident for kind, ident in targets if kind == "monitor"}
    return await request.app[MONITOR_PLACES].of(ids) if ids else {}


def first_outside(where: Within, targets: Sequence[Target], placed: Places) -> int | None:
    """The index of the first target out of reach (a monitor that does not exist is), else
    None; an empty list is out of reach (something on every client: global configuration)."""
    if not targets:
        return 0
    for n, (kind, ident) in enumerate(targets):
        if kind == "monitor":
            place = placed.get(ident)
            if place is None or not where.place(*place):
                return n
        elif not where.holds(kind, ident):
            return n
    return None


async def outside(request: web.Request, where: Within, targets: Sequence[Target]) -> int | None:
    """``first_outside``, looking up the monitors among targets."""
    return first_outside(where, targets, await places(request, targets))


def global_refused(request: web.Request, what: str) -> Problem:
    """403 for a scoped caller's write that would cover every client (a window on all
    monitors, an alert rule on every server), worded as authorize() refuses unscoped routes."""
    return Problem(
        403,
        f"this {request[PRINCIPAL].kind} is scoped to some clients; {what} covers every client "
        "and is global configuration (ask an admin, or use an unscoped token)",
    )
