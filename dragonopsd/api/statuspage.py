"""The public status pages: ``/status`` (and ``/status/{slug}``), their Atom feeds and JSON.

Public by design (no token): they show only what monitoring/statuspage.py lets out, which is
names, statuses, daily uptime and incident times, for the monitors ``[status_page]`` lists.
"""

from __future__ import annotations

from aiohttp import web

from ..appkeys import STATUS_PAGES
from ..monitoring.statuspage import PublicPage
from ..problem import Problem
from . import statusrender
from .bundle import WEB_BUNDLE
from .codec import json_response
from .route import Param, Route

FEED_TYPE = "application/atom+xml"


async def _page(request: web.Request) -> PublicPage:
    slug = request.match_info.get("slug", "")
    page = await request.app[STATUS_PAGES].view(slug)
    if page is None:
        raise Problem(404, f"no status page {slug!r}")
    return page


def _paths(slug: str) -> tuple[str, str]:
    page = f"/status/{slug}" if slug else "/status"
    return page, f"{page}/feed.atom"


async def status_html(request: web.Request) -> web.Response:
    """The status page, rendered on the server (works without JavaScript)."""
    page = await _page(request)
    bundle = request.app[WEB_BUNDLE]
    body = statusrender.html(
        page,
        css=bundle.url("status.css"),
        icon=bundle.url("icon.svg"),
        feed=_paths(page.slug)[1],
    )
    return web.Response(
        body=body, content_type="text/html", charset="utf-8", headers={"Cache-Control": "no-cache"}
    )


async def status_feed(request: web.Request) -> web.Response:
    """The page's recent incidents as an Atom feed."""
    page = await _page(request)
    page_path, feed_path = _paths(page.slug)
    body = statusrender.atom(
        page, origin=str(request.url.origin()), page_path=page_path, feed_path=feed_path
    )
    return web.Response(
        body=body, content_type=FEED_TYPE, charset="utf-8", headers={"Cache-Control": "no-cache"}
    )


async def status_json(request: web.Request) -> web.Response:
    """The page's data as JSON (what the HTML shows, for other front ends)."""
    return json_response(await _page(request), headers={"Cache-Control": "no-cache"})


def routes() -> list[Route]:
    """Status pages, feeds and their JSON; the fixed feed paths come before ``{slug}``."""
    slug = Param("slug", "The page's slug from [[status_page.pages]]", {"type": "string"}, "path")
    tag = "Status page"
    return [
        Route(
            "GET",
            "/status",
            status_html,
            "Public status page",
            tag,
            "public",
            content_type="text/html",
            scope="global",
        ),
        Route(
            "GET",
            "/status/feed.atom",
            status_feed,
            "Incidents of the status page (Atom)",
            tag,
            "public",
            content_type=FEED_TYPE,
            scope="global",
        ),
        Route(
            "GET",
            "/status/{slug}",
            status_html,
            "Another public status page",
            tag,
            "public",
            content_type="text/html",
            params=(slug,),
            errors=(404,),
            scope="global",
        ),
        Route(
            "GET",
            "/status/{slug}/feed.atom",
            status_feed,
            "Incidents of another status page (Atom)",
            tag,
            "public",
            content_type=FEED_TYPE,
            params=(slug,),
            errors=(404,),
            scope="global",
        ),
        Route(
            "GET",
            "/api/status-page",
            status_json,
            "The status page's data",
            tag,
            "public",
            response=PublicPage,
            scope="global",
        ),
        Route(
            "GET",
            "/api/status-page/{slug}",
            status_json,
            "Another status page's data",
            tag,
            "public",
            response=PublicPage,
            params=(slug,),
            errors=(404,),
            scope="global",
        ),
    ]
