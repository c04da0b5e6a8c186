"""GET /api/cluster: the cores of the deployment and how many monitors each owns."""

from __future__ import annotations

from aiohttp import web

from .. import __version__
from ..appkeys import CLUSTER, CONFIG, ENGINE_VIEW, MONITORS
from ..cluster.core import node_name
from ..cluster.membership import Member
from ..model.inventory import Wire
from ..problem import Problem
from ..redislink.client import ERRORS
from .access import reach
from .codec import json_response
from .route import Route


class ClusterPage(Wire, kw_only=True):
    """GET /api/cluster: every core (alive, or gone within the last hour) and this one's name."""

    items: list[Member]
    self: str


async def cluster(request: web.Request) -> web.Response:
    """The cores; without [redis] url, this process alone, owning every monitor."""
    core = request.app[CLUSTER]
    view = request.app[ENGINE_VIEW]
    ids = view.ids()
    seen = await reach(request)
    if not seen.everything:  # a scoped caller counts its own monitors, not other clients'
        ids = [i for i in ids if (at := view.placement(i)) is not None and seen.monitor(*at)]
    if core is None:
        cfg = request.app[CONFIG]
        alone = Member(
            node=node_name(cfg),
            address=f"http://{cfg.server.host}:{cfg.server.port}",
            status="alive",
            since=request.app[MONITORS].engine.started,
            owned_monitors=len(ids),
            version=__version__,
        )
        return json_response(ClusterPage(items=[alone], self=alone.node))
    try:
        members = await core.members(list(ids))
    except ERRORS:
        raise Problem(503, "redis is not answering: the cores cannot be listed now") from None
    return json_response(ClusterPage(items=members, self=core.node))


def routes() -> list[Route]:
    """/api/cluster."""
    return [
        Route(
            "GET",
            "/api/cluster",
            cluster,
            "The cores of the deployment and what each owns",
            "System",
            "viewer",
            response=ClusterPage,
            errors=(503,),
            # Cores and how many monitors each runs: a scoped caller's counts are of the
            # monitors in its reach (another client's would show that it exists).
            scope="filtered",
        )
    ]
