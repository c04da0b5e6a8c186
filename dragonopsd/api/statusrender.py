"""The public status page as HTML and its incidents as an Atom feed, rendered on the server.

No script: the page works with JavaScript off and refreshes itself with a meta refresh. Every
string from the configuration or the store goes through ``html.escape`` (HTML) or ElementTree
(XML), so a monitor named ``<script>`` is text. Only the Structs of monitoring/statuspage.py
reach this module, and they carry no target, URL or address.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime
from html import escape

from ..monitoring.statuspage import (
    DAYS,
    DayBar,
    PublicIncident,
    PublicMaintenance,
    PublicMonitor,
    PublicPage,
    PublicUpdate,
)

ATOM = "http://www.w3.org/2005/Atom"
REFRESH_SECONDS = 60
NARROW_DAYS = 30  # the bars shown on a phone (status.css hides the older ones)

# Shape and words beside every colour: status is never told by colour alone.
STATUS_TEXT = {
    "up": ("\u25b2", "Operational"),
    "down": ("\u25bc", "Down"),
    "pending": ("\u25cf", "Pending"),
    "maintenance": ("\u25c6", "Maintenance"),
    "paused": ("\u2016", "Paused"),
}
OVERALL_TEXT = {
    "operational": ("\u2714", "All systems operational"),
    "degraded": ("\u26a0", "Some systems are down"),
    "outage": ("\u2716", "Major outage"),
    "maintenance": ("\u25c6", "Maintenance in progress"),
    "empty": ("\u25cb", "No services are published here yet"),
}


def percent(share: float | None) -> str:
    """0.99951 -> "99.95%"; never rounds a partial day up to 100%."""
    if share is None:
        return "no data"
    value = share * 100
    text = f"{value:.2f}"
    if text == "100.00" and share < 1:
        text = "99.99"
    return f"{text}%"


def _level(day: DayBar) -> str:
    if day.uptime is None:
        return "none"
    if day.uptime >= 1:
        return "full"
    if day.uptime >= 0.99:
        return "minor"
    if day.uptime >= 0.95:
        return "partial"
    return "major"


def _bars(monitor: PublicMonitor) -> str:
    bad = [d for d in monitor.days if d.uptime is not None and d.uptime < 1]
    summary = f"Daily uptime over {DAYS} days: {percent(monitor.uptime)}"
    if bad:
        listed = ", ".join(f"{d.date} {percent(d.uptime)}" for d in bad[-10:])
        summary += f"; days with downtime: {listed}"
    else:
        summary += "; no day with downtime"
    items = "".join(
        f'<li class="bar u-{_level(d)}" title="{escape(d.date)}: {escape(percent(d.uptime))}"></li>'
        for d in monitor.days
    )
    return f'<ol class="bars" role="img" aria-label="{escape(summary)}">{items}</ol>'


def _monitor(monitor: PublicMonitor) -> str:
    icon, word = STATUS_TEXT.get(monitor.status, ("\u25cf", monitor.status.title()))
    return (
        f'<li class="monitor s-{escape(monitor.status)}">'
        '<div class="row">'
        f"<h3>{escape(monitor.name)}</h3>"
        f'<span class="badge"><span class="icon" aria-hidden="true">{icon}</span> {word}</span>'
        "</div>"
        f"{_bars(monitor)}"
        '<p class="legend">'
        f'<span class="wide">{DAYS} days ago</span>'
        f'<span class="narrow">{NARROW_DAYS} days ago</span>'
        f"<span>{escape(percent(monitor.uptime))} uptime</span>"
        "<span>Today</span></p>"
        "</li>"
    )


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 1:
        return "under a minute"
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes / 60:.1f} h"


def _when(iso: str) -> str:
    return f'<time datetime="{escape(iso)}">{escape(iso[:16].replace("T", " "))} UTC</time>'


def _since(opened_at: str, now: str) -> float:
    """Seconds from opened_at to now (both ISO 8601), never negative."""
    start, end = (datetime.fromisoformat(t) for t in (opened_at, now))
    return max(0.0, (end - start).total_seconds())


def _update(u: PublicUpdate) -> str:
    return (
        f'<li><span class="state">{escape(u.state.capitalize())}</span>: '
        f"{escape(u.message)} · {_when(u.at)}</li>"
    )


def _incident(i: PublicIncident, now: str) -> str:
    """One incident: "X was down (resolved, 12 min)" or "X is down (ongoing, 3 min so far)";
    a manual one by its title, severity and state; then its updates, newest first."""
    name = f"<strong>{escape(i.monitor_name)}</strong>"
    if i.title is not None:
        state = escape((i.state or "").capitalize())
        text = (
            f"<strong>{escape(i.title)}</strong> ({escape(i.severity or '')}, {state}) "
            f"· affects {escape(i.monitor_name)}"
        )
    elif i.closed_at:
        lasted = _duration(i.duration_seconds or _since(i.opened_at, i.closed_at))
        text = f"{name} was down (resolved, {lasted})"
    else:
        text = f"{name} is down (ongoing, {_duration(_since(i.opened_at, now))} so far)"
    updates = ""
    if i.updates:
        updates = '<ol class="updates">' + "".join(map(_update, reversed(i.updates))) + "</ol>"
    return (
        f'<li class="incident {"closed" if i.closed_at else "open"}">'
        f"{text} · {_when(i.opened_at)}{updates}</li>"
    )


def _planned(m: PublicMaintenance) -> str:
    now = " (in progress)" if m.active else ""
    return (
        f'<li class="planned"><strong>{escape(m.name)}</strong> · '
        f"{_when(m.starts_at)} to {_when(m.ends_at)}{now}</li>"
    )


def html(page: PublicPage, *, css: str, icon: str, feed: str) -> bytes:
    """The whole page; css, icon and feed are this server's own paths."""
    mark, headline = OVERALL_TEXT.get(page.status, ("\u25cf", page.status))
    if page.monitors:
        services = '<ul class="monitors">' + "".join(map(_monitor, page.monitors)) + "</ul>"
    else:
        services = '<p class="empty">No services are published on this page yet.</p>'
    if page.incidents:
        items = "".join(_incident(i, page.updated_at) for i in page.incidents)
        incidents = f'<ol class="incidents">{items}</ol>'
    else:
        incidents = f'<p class="empty">No incidents in the last {DAYS} days.</p>'
    planned = ""
    if page.planned:
        planned = (
            '<section aria-labelledby="planned">\n<h2 id="planned">Planned maintenance</h2>\n'
            '<ul class="planned">' + "".join(map(_planned, page.planned)) + "</ul>\n</section>"
        )
    title = escape(page.title)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<title>{title}</title>
<link rel="stylesheet" href="{escape(css)}">
<link rel="icon" type="image/svg+xml" href="{escape(icon)}">
<link rel="alternate" type="application/atom+xml" title="Incidents" href="{escape(feed)}">
</head>
<body>
<header class="banner o-{escape(page.status)}">
<h1>{title}</h1>
<p class="overall" role="status"><span class="icon" aria-hidden="true">{mark}</span> {headline}</p>
<p class="updated">Updated {_when(page.updated_at)} ·
<a href="{escape(feed)}">Incident feed (Atom)</a></p>
</header>
<main>
<section aria-labelledby="services">
<h2 id="services">Services</h2>
{services}
</section>
{planned}
<section aria-labelledby="history">
<h2 id="history">Recent incidents</h2>
{incidents}
</section>
</main>
<footer><p>Served by dragonopsd</p></footer>
</body>
</html>
""".encode()


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    node = ET.SubElement(parent, tag, attrs)
    node.text = text
    return node


def atom(page: PublicPage, *, origin: str, page_path: str, feed_path: str) -> bytes:
    """The page's incidents as an Atom 1.0 feed, newest first."""
    feed = ET.Element("feed", {"xmlns": ATOM})
    _sub(feed, "title", f"{page.title}: incidents")
    _sub(feed, "id", origin + feed_path)
    newest = max((i.closed_at or i.opened_at for i in page.incidents), default=page.updated_at)
    _sub(feed, "updated", newest)
    _sub(feed, "link", rel="self", type="application/atom+xml", href=origin + feed_path)
    _sub(feed, "link", rel="alternate", type="text/html", href=origin + page_path)
    author = _sub(feed, "author")
    _sub(author, "name", page.title)
    for i in page.incidents:
        entry = _sub(feed, "entry")
        _sub(entry, "id", f"urn:uuid:{i.id}")
        if i.title is not None:
            title = f"{(i.state or '').capitalize()}: {i.title}"
        elif i.closed_at:
            lasted = _duration(i.duration_seconds or _since(i.opened_at, i.closed_at))
            title = f"Resolved: {i.monitor_name} was down for {lasted}"
        else:
            title = f"{i.monitor_name} is down"
        _sub(entry, "title", title)
        _sub(entry, "published", i.opened_at)
        _sub(entry, "updated", i.closed_at or i.opened_at)
        _sub(entry, "link", rel="alternate", type="text/html", href=origin + page_path)
        summary = f"{i.monitor_name} went down at {i.opened_at}"
        summary += f" and recovered at {i.closed_at}." if i.closed_at else "; not yet recovered."
        if i.updates:
            summary += " " + " ".join(f"[{u.state}] {u.message}" for u in i.updates)
        _sub(entry, "summary", summary, type="text")
    body: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return body
