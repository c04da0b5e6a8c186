"""``/`` and ``/assets/{build}/{name}``: the built-in dashboard (no build step, no CDN).

The page and its files are public: they hold no data. Everything the dashboard shows comes
from the API with the token the user pastes in, so an anonymous visitor sees a sign-in form.
"""

from __future__ import annotations

from aiohttp import web

from ..problem import Problem
from .bundle import IMMUTABLE, WEB_BUNDLE
from .route import Param, Route


async def index(request: web.Request) -> web.Response:
    """The dashboard's page; revalidated on every load, since it names the current build."""
    return web.Response(
        body=request.app[WEB_BUNDLE].index,
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": "no-cache"},
    )


async def asset(request: web.Request) -> web.Response:
    """A script, stylesheet or icon of the current build, cacheable forever."""
    bundle = request.app[WEB_BUNDLE]
    build, name = request.match_info["build"], request.match_info["name"]
    found = bundle.assets.get(name) if build == bundle.build else None
    if found is None:
        # An old build after an upgrade lands here too: its page reloads and names the new one.
        raise Problem(404, f"no asset {name!r} in build {build!r}")
    return web.Response(
        body=found.body,
        content_type=found.content_type,
        charset="utf-8" if found.content_type.startswith("text/") else None,
        headers={"Cache-Control": IMMUTABLE},
    )


def routes() -> list[Route]:
    """The dashboard's page and its versioned files."""
    return [
        Route(
            "GET",
            "/",
            index,
            "Built-in dashboard",
            "Dashboard",
            "public",
            content_type="text/html",
            scope="global",
        ),
        Route(
            "GET",
            "/assets/{build}/{name}",
            asset,
            "Dashboard file (ES module, stylesheet or icon), cached as immutable",
            "Dashboard",
            "public",
            content_type="text/javascript",
            params=(
                Param("build", "Content hash of the dashboard build", {"type": "string"}, "path"),
                Param("name", "File name, e.g. main.js", {"type": "string"}, "path"),
            ),
            errors=(404,),
            scope="global",
        ),
    ]
