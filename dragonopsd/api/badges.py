"""Badges for READMEs: ``/api/badge/{id}/status.svg``, ``/uptime.svg`` and ``/response.svg``.

Public by design (no token), like the status pages, and only for the monitors a status page
lists: any other id, existing or not, gets the same 404, so badges tell nobody which monitors
exist. They show what the status page already shows (status, uptime) plus the last latency.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from ..appkeys import ENGINE_VIEW, HISTORY_QUERY, STATUS_PAGES
from ..problem import Problem, invalid
from . import badgerender
from .badgerender import STYLES, Style
from .codec import no_repeats
from .route import Param, Route

SVG: Final = "image/svg+xml"
# Short: a README image should follow the monitor within a minute, and image proxies (GitHub's
# camo) honour it, while a burst of views still costs us one render per minute per cache.
CACHE: Final = "public, max-age=60, s-maxage=60"
WINDOWS: Final = {"24h": 86_400.0, "7d": 7 * 86_400.0, "30d": 30 * 86_400.0}
STATUS_COLOURS: Final = {
    "up": "brightgreen",
    "down": "red",
    "pending": "yellow",
    "maintenance": "blue",
    "paused": "lightgrey",
}
# (lower bound, colour): the first bound the value reaches wins.
UPTIME_COLOURS: Final = ((99.9, "brightgreen"), (99.0, "green"), (97.0, "yellowgreen"))
UPTIME_COLOURS_LOW: Final = ((95.0, "yellow"), (90.0, "orange"), (0.0, "red"))
LATENCY_COLOURS: Final = ((200, "brightgreen"), (500, "green"), (1000, "yellow"), (2000, "orange"))


def _listed(request: web.Request) -> tuple[str, str]:
    """(id, name) of the monitor in the path, or the one 404 for anything a page does not list."""
    ident = request.match_info["id"].lower()
    name = request.app[STATUS_PAGES].listed(ident)
    if name is None:
        raise Problem(404, "no badge for this monitor")
    return ident, name


def _options(request: web.Request, allowed: frozenset[str]) -> tuple[str | None, Style]:
    """The ``label`` and ``style`` query parameters; 422 naming a bad or unknown one."""
    for name in request.query:
        if name not in allowed:
            known = ", ".join(sorted(allowed))
            raise invalid(name[:64], f"unknown query parameter (allowed: {known})")
    no_repeats(request)
    label = request.query.get("label")
    if label is not None and len(label) > badgerender.MAX_TEXT:
        raise invalid("label", f"at most {badgerender.MAX_TEXT} characters")
    style = request.query.get("style", "flat")
    for known_style in STYLES:
        if style == known_style:
            return label, known_style
    raise invalid("style", f"one of {', '.join(STYLES)}")


def _svg(label: str, value: str, colour: str, style: Style) -> web.Response:
    return web.Response(
        body=badgerender.render(label, value, colour, style),
        content_type=SVG,
        charset="utf-8",
        headers={"Cache-Control": CACHE},
    )


async def status_badge(request: web.Request) -> web.Response:
    """The monitor's current status."""
    ident, name = _listed(request)
    label, style = _options(request, frozenset({"label", "style"}))
    status = request.app[ENGINE_VIEW].status_of(ident)
    return _svg(name if label is None else label, status, STATUS_COLOURS.get(status, "grey"), style)


async def uptime_badge(request: web.Request) -> web.Response:
    """Uptime over the last 24h, 7d or 30d (maintenance does not count against it)."""
    ident, _ = _listed(request)
    label, style = _options(request, frozenset({"label", "style", "window"}))
    window = request.query.get("window", "24h")
    if window not in WINDOWS:
        raise invalid("window", f"one of {', '.join(WINDOWS)}")
    seq = request.app[ENGINE_VIEW].seq_of(ident)
    found = (
        await request.app[HISTORY_QUERY].uptime(seq, [WINDOWS[window]]) if seq is not None else []
    )
    share = found[0].uptime if found else None
    text = f"uptime {window}" if label is None else label
    if share is None:
        return _svg(text, "no data", "lightgrey", style)
    percent = share * 100
    colour = next(c for bound, c in UPTIME_COLOURS + UPTIME_COLOURS_LOW if percent >= bound)
    shown = "100%" if share >= 1 else f"{min(percent, 99.99):.2f}%"
    return _svg(text, shown, colour, style)


async def response_badge(request: web.Request) -> web.Response:
    """The latency of the last check."""
    ident, _ = _listed(request)
    label, style = _options(request, frozenset({"label", "style"}))
    state = request.app[ENGINE_VIEW].state(ident)
    latency = state.latency_ms if state is not None else None
    text = "response" if label is None else label
    if latency is None:
        return _svg(text, "no data", "lightgrey", style)
    colour = next((c for bound, c in LATENCY_COLOURS if latency <= bound), "red")
    return _svg(text, f"{latency:.0f} ms", colour, style)


def routes() -> list[Route]:
    """The three badges; public (see the module docstring for why that is safe)."""
    ident = Param(
        "id", "A monitor a status page lists", {"type": "string", "format": "uuid"}, "path"
    )
    label = Param("label", "Text of the left part (empty for none)", {"type": "string"})
    style = Param("style", "Look of the badge", {"type": "string", "enum": list(STYLES)})
    window = Param("window", "Uptime over this window", {"type": "string", "enum": list(WINDOWS)})
    rows = (
        ("status", status_badge, "Status badge (SVG)", (ident, label, style)),
        ("uptime", uptime_badge, "Uptime badge (SVG)", (ident, label, style, window)),
        ("response", response_badge, "Last response time badge (SVG)", (ident, label, style)),
    )
    return [
        Route(
            "GET",
            f"/api/badge/{{id}}/{name}.svg",
            handler,
            summary,
            "Badges",
            "public",
            params=params,
            errors=(404, 422),
            content_type=SVG,
            scope="global",
        )
        for name, handler, summary, params in rows
    ]
