"""The HTTP surface: route rows wrapped in the request front, the OpenAPI document, the pages.

A builder called once by the app factory, after the services the handlers reach through the
app's keys; everything here is read from the installed package at build time, before any request.
"""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from . import __version__
from .api import bundle, openapi, routes
from .api.bundle import WEB_BUNDLE
from .api.codec import encode
from .api.forwarded import PROXIES, Proxies
from .api.front import FRONT, Front
from .api.route import ROUTE_INDEX
from .appkeys import DOCS_ASSETS, OPENAPI, DocsAssets
from .config import Config
from .metrics.requests import RequestStats


def register(app: web.Application, cfg: Config, stats: RequestStats) -> None:
    """Register every route on app, each counted in stats, and what the docs pages serve."""
    table = routes.table()
    app[PROXIES] = Proxies(cfg.server.trusted_proxies)
    front = app[FRONT] = Front(cfg.server.cors_origins, stats)
    routes.register(app, table, front)
    app[ROUTE_INDEX] = {(r.method, r.path): r for r in table}
    app[OPENAPI] = encode(openapi.build(table, __version__))
    # A few KB: the API reference page and what it loads.
    web_dir = resources.files("dragonopsd.web")
    app[DOCS_ASSETS] = DocsAssets(
        html=web_dir.joinpath("docs.html").read_bytes(),
        css=web_dir.joinpath("docs.css").read_bytes(),
        js=web_dir.joinpath("docs.js").read_bytes(),
    )
    app[WEB_BUNDLE] = bundle.load()
