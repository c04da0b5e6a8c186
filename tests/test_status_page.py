"""The public status pages: only the listed monitors, no targets, escaped, with an Atom feed.

(test_dashboard.py loads /status in a real browser too.)
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from conftest import Client, post

from dragonopsd.api.front import HTML_CSP
from dragonopsd.appkeys import STATUS_PAGES
from dragonopsd.config import ConfigError, StatusPageConfig, from_mapping

# Every test here that starts the app runs on SQLite and on PostgreSQL (conftest.py).
pytestmark = pytest.mark.backends

MakeClient = Callable[..., Awaitable[Client]]
ANON = {"Authorization": ""}
ATOM = "{http://www.w3.org/2005/Atom}"
SHOP = "<b>Shop</b> & co"
# What must never leave the daemon through a status page: the target's port, path and query.
LEAKS = ("127.0.0.1:1/", "secret-path", "token=abc")


async def scene(make_client: MakeClient) -> tuple[Client, dict[str, Any]]:
    """Three monitors, two of them listed; the push one goes down and up (one incident)."""
    client = await make_client(
        status_page={
            "title": "Acme <status>",
            "monitors": [SHOP, "cron"],
            "cache_seconds": 0,
            "pages": [{"slug": "team", "title": "Team", "monitors": ["cron"]}],
        }
    )
    made = {
        "shop": await post(
            client,
            "/api/monitors",
            {
                "name": SHOP,
                "kind": "http",
                "url": "http://127.0.0.1:1/secret-path?token=abc",
                "enabled": False,
            },
        ),
        "hidden": await post(
            client,
            "/api/monitors",
            {"name": "Hidden", "kind": "tcp", "host": "127.0.0.1", "port": 1, "enabled": False},
        ),
        "cron": await post(
            client, "/api/monitors", {"name": "cron", "kind": "push", "interval": 60, "timeout": 1}
        ),
    }
    token = made["cron"]["pushToken"]
    for status in ("down", "up"):
        assert (await client.get(f"/api/push/{token}?status={status}", headers=ANON)).status == 200
    for _ in range(100):
        rows = (await (await client.get("/api/incidents?status=closed")).json())["items"]
        if rows:
            break
        await asyncio.sleep(0.05)
    return client, made


def no_leaks(text: str) -> None:
    for leak in LEAKS:
        assert leak not in text, f"{leak!r} leaked"
    assert "Hidden" not in text, "a monitor that is not listed leaked"


async def test_html_page_lists_only_configured_monitors(make_client: MakeClient) -> None:
    client, _ = await scene(make_client)
    resp = await client.get("/status", headers=ANON)
    assert resp.status == 200
    assert resp.content_type == "text/html"
    assert resp.headers["Content-Security-Policy"] == HTML_CSP
    assert resp.headers["Cache-Control"] == "no-cache"
    page = await resp.text()
    no_leaks(page)
    assert "Acme &lt;status&gt;" in page and "<status>" not in page
    assert "&lt;b&gt;Shop&lt;/b&gt; &amp; co" in page and "<b>Shop" not in page
    assert page.count('class="monitor ') == 2
    assert page.count('<li class="bar ') == 180, "90 daily bars per monitor"
    assert "<script" not in page
    assert "Paused" in page and "Operational" in page, "statuses in words, not only colour"
    assert "cron</strong> was down (resolved, under a minute)" in page


async def test_an_open_incident_reads_ongoing_once(make_client: MakeClient) -> None:
    client = await make_client(status_page={"monitors": ["cron"], "cache_seconds": 0})
    made = await post(client, "/api/monitors", {"name": "cron", "kind": "push", "interval": 600})
    token = made["pushToken"]
    assert (await client.get(f"/api/push/{token}?status=down", headers=ANON)).status == 200
    for _ in range(100):  # the incident is committed just after the status flips
        if (await (await client.get("/api/incidents?status=open")).json())["items"]:
            break
        await asyncio.sleep(0.05)
    page = await (await client.get("/status", headers=ANON)).text()
    assert "cron</strong> is down (ongoing, under a minute so far)" in page, page
    assert page.lower().count("ongoing") == 1 and "was down" not in page
    feed = ET.fromstring(await (await client.get("/status/feed.atom", headers=ANON)).read())
    [entry] = feed.findall(f"{ATOM}entry")
    assert entry.findtext(f"{ATOM}title") == "cron is down"


async def test_json_and_feed(make_client: MakeClient) -> None:
    client, _ = await scene(make_client)
    resp = await client.get("/api/status-page", headers=ANON)
    text = await resp.text()
    no_leaks(text)
    data = await resp.json()
    assert [m["name"] for m in data["monitors"]] == [SHOP, "cron"]
    assert [m["status"] for m in data["monitors"]] == ["paused", "up"]
    assert data["status"] == "operational"
    assert all(
        len(m["days"]) == 90 and set(m) == {"name", "status", "uptime", "days"}
        for m in data["monitors"]
    )
    incident = data["incidents"][0]
    assert set(incident) == {"id", "monitorName", "openedAt", "closedAt", "durationSeconds"}
    assert incident["monitorName"] == "cron" and incident["closedAt"]

    resp = await client.get("/status/feed.atom", headers=ANON)
    assert resp.status == 200
    assert resp.content_type == "application/atom+xml"
    body = await resp.read()
    no_leaks(body.decode())
    feed = ET.fromstring(body)
    assert feed.tag == f"{ATOM}feed"
    assert feed.findtext(f"{ATOM}title") == "Acme <status>: incidents"
    self_link = feed.find(f"{ATOM}link[@rel='self']")
    assert self_link is not None and self_link.get("href", "").endswith("/status/feed.atom")
    entries = feed.findall(f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}id") for e in entries] == [f"urn:uuid:{incident['id']}"]
    assert (entries[0].findtext(f"{ATOM}title") or "").startswith("Resolved: cron was down")


async def test_more_pages_and_unknown_slugs(make_client: MakeClient) -> None:
    client, made = await scene(make_client)
    team = await (await client.get("/api/status-page/team", headers=ANON)).json()
    assert team["title"] == "Team" and [m["name"] for m in team["monitors"]] == ["cron"]
    page = await (await client.get("/status/team", headers=ANON)).text()
    assert 'href="/status/team/feed.atom"' in page
    assert (await client.get("/status/team/feed.atom", headers=ANON)).status == 200
    for path in ("/status/nope", "/status/nope/feed.atom", "/api/status-page/nope"):
        resp = await client.get(path, headers=ANON)
        assert resp.status == 404, path
        assert resp.content_type == "application/problem+json"

    # A reload (SIGHUP) hands over a new section; monitors may be named by id too.
    client.app[STATUS_PAGES].configure(StatusPageConfig(monitors=[made["hidden"]["id"]]))
    data = await (await client.get("/api/status-page", headers=ANON)).json()
    assert [m["name"] for m in data["monitors"]] == ["Hidden"]
    assert data["title"] == "Service status"
    assert (await client.get("/status/team", headers=ANON)).status == 404


async def test_an_empty_page_publishes_nothing(client: Client) -> None:
    await post(client, "/api/monitors", {"name": "cron", "kind": "push", "interval": 60})
    data = await (await client.get("/api/status-page", headers=ANON)).json()
    assert data["monitors"] == [] and data["incidents"] == []
    assert data["status"] == "empty"
    page = await (await client.get("/status", headers=ANON)).text()
    assert "No services are published" in page and "cron" not in page


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"pages": [{"slug": "Bad Slug", "title": "x"}]}, "status_page.pages"),
        ({"pages": [{"slug": "a", "title": "x", "extra": 1}]}, "status_page.pages"),
        ({"cache_seconds": -1}, "status_page.cache_seconds"),
        ({"title": ""}, "status_page.title"),
    ],
)
def test_bad_config_names_the_key(section: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        from_mapping({"status_page": section}, env={})
    assert any(p.startswith(key) for p in err.value.problems), err.value.problems


def test_duplicate_slugs_are_refused() -> None:
    pages = [{"slug": "a", "title": "A"}, {"slug": "a", "title": "B"}]
    with pytest.raises(ConfigError, match="each slug may appear once"):
        from_mapping({"status_page": {"pages": pages}}, env={})
