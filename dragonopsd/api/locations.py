"""GET /api/locations: the remote probe locations that have a live worker now.

A monitor's ``locations`` may name any of them (and ``local``, the core itself, which is not
listed: it is always there). The dashboard's monitor form offers them as choices.
"""

from __future__ import annotations

from aiohttp import web

from ..appkeys import REMOTE
from ..model.inventory import Wire
from ..problem import Problem
from ..redislink.client import ERRORS
from .codec import json_response
from .route import Route


class ProbeLocation(Wire, kw_only=True):
    """A location and how many live workers it has."""

    name: str
    workers: int


class LocationList(Wire, kw_only=True):
    """GET /api/locations, by name; empty without [redis] url (no remote workers)."""

    items: list[ProbeLocation]


async def list_locations(request: web.Request) -> web.Response:
    """Locations with a worker heard from in the last few seconds."""
    try:
        found = await request.app[REMOTE].locations()
    except ERRORS:
        raise Problem(
            503, "redis is not answering: the probe locations cannot be listed now"
        ) from None
    items = [ProbeLocation(name=name, workers=n) for name, n in found.items()]
    return json_response(LocationList(items=items))


def routes() -> list[Route]:
    """/api/locations."""
    return [
        Route(
            "GET",
            "/api/locations",
            list_locations,
            "Remote probe locations with a live worker",
            "Monitors",
            "viewer",
            response=LocationList,
            errors=(503,),
            # Deployment topology, nothing of any client's: answered as to anyone.
            scope="global",
        )
    ]
