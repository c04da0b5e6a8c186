"""Badges: public SVGs for the monitors a status page lists, a 404 for anything else, escaped.

(test_badges_browser.py renders one in Chromium.)
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from conftest import Client, post

pytestmark = pytest.mark.backends

MakeClient = Callable[..., Awaitable[Client]]
ANON = {"Authorization": ""}
SVG_NS = "{http://www.w3.org/2000/svg}"
EVIL = '<script>alert(1)</script> & "q" </text><a href="x">'


async def scene(make_client: MakeClient) -> tuple[Client, dict[str, str]]:
    """A listed push monitor (up), a listed http monitor, a listed evil name, an unlisted one."""
    client = await make_client(
        status_page={"monitors": ["cron", EVIL], "cache_seconds": 0, "pages": []}
    )
    health = str(client.make_url("/healthz"))
    made = {
        "cron": await post(
            client, "/api/monitors", {"name": "cron", "kind": "push", "interval": 60}
        ),
        "evil": await post(
            client, "/api/monitors", {"name": EVIL, "kind": "http", "url": health, "interval": 3600}
        ),
        "hidden": await post(
            client, "/api/monitors", {"name": "Hidden", "kind": "push", "interval": 60}
        ),
    }
    push = made["cron"]["pushToken"]
    assert (await client.get(f"/api/push/{push}?status=up", headers=ANON)).status == 200
    return client, {k: v["id"] for k, v in made.items()}


async def svg(client: Client, path: str) -> tuple[ET.Element, dict[str, str]]:
    resp = await client.get(path, headers=ANON)
    body = await resp.read()
    assert resp.status == 200, body
    assert resp.content_type == "image/svg+xml"
    root = ET.fromstring(body)  # well-formed XML, or this raises
    assert root.tag == f"{SVG_NS}svg"
    return root, dict(resp.headers)


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG_NS}text")]


async def poll(client: Client, path: str, done: Callable[[list[str]], bool]) -> list[str]:
    for _ in range(100):
        found = texts((await svg(client, path))[0])
        if done(found):
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} never got there: {found}")


async def test_status_badge_is_public_svg_with_short_cache(make_client: MakeClient) -> None:
    client, ids = await scene(make_client)
    path = f"/api/badge/{ids['cron']}/status.svg"
    found = await poll(client, path, lambda t: "up" in t)
    assert found[-1] == "up" and "cron" in found
    root, headers = await svg(client, path)
    assert headers["Cache-Control"] == "public, max-age=60, s-maxage=60"
    assert root.get("height") == "20"
    assert root.findtext(f"{SVG_NS}title") == "cron: up"
    fill = [r.get("fill") for r in root.iter(f"{SVG_NS}rect")]
    assert "#4c1" in fill  # green for up

    labelled, _ = await svg(client, path + "?label=backup%20job&style=for-the-badge")
    assert labelled.get("height") == "28"
    assert texts(labelled) == ["BACKUP JOB", "UP"]
    square, _ = await svg(client, path + "?style=flat-square&label=")
    assert texts(square) == ["up"]  # an empty label leaves only the value
    assert square.find(f"{SVG_NS}linearGradient") is None


async def test_uptime_and_response_badges(make_client: MakeClient) -> None:
    client, ids = await scene(make_client)
    for window in ("24h", "7d", "30d"):
        path = f"/api/badge/{ids['cron']}/uptime.svg?window={window}"
        found = await poll(client, path, lambda t: t[-1].endswith("%"))
        assert found == [f"uptime {window}"] * 2 + ["100%"] * 2
    default = texts((await svg(client, f"/api/badge/{ids['cron']}/uptime.svg"))[0])
    assert default[0] == "uptime 24h"

    pushed = f"/api/badge/{ids['cron']}/response.svg"
    assert texts((await svg(client, pushed))[0])[-1] == "no data"  # a push has no latency
    response = f"/api/badge/{ids['evil']}/response.svg"
    resp = await client.post(f"/api/monitors/{ids['evil']}/check")
    assert resp.status == 200, await resp.text()
    found = await poll(client, response, lambda t: t[-1].endswith(" ms"))
    assert found[0] == "response"


async def test_unlisted_and_unknown_monitors_are_the_same_404(make_client: MakeClient) -> None:
    client, ids = await scene(make_client)
    bodies = []
    for ident in (ids["hidden"], "00000000-0000-4000-8000-000000000000", "not-an-id"):
        for kind in ("status", "uptime", "response"):
            resp = await client.get(f"/api/badge/{ident}/{kind}.svg", headers=ANON)
            assert resp.status == 404
            assert resp.content_type == "application/problem+json"
            body = await resp.json()
            bodies.append((body["title"], body["detail"]))
            assert "Hidden" not in await resp.text()
    assert set(bodies) == {("Not Found", "no badge for this monitor")}


async def test_a_monitor_name_cannot_inject_markup(make_client: MakeClient) -> None:
    client, ids = await scene(make_client)
    resp = await client.get(f"/api/badge/{ids['evil']}/status.svg", headers=ANON)
    raw = await resp.text()
    assert "<script" not in raw and "<a " not in raw and "</text><a" not in raw
    root = ET.fromstring(raw)
    assert [e.tag for e in root.iter() if e.tag.endswith(("script", "}a"))] == []
    assert EVIL in texts(root)
    assert root.get("aria-label", "").startswith(EVIL)
    odd, _ = await svg(client, f"/api/badge/{ids['evil']}/status.svg?label=%01a%EF%BF%BEb")
    assert texts(odd)[0] == "ab"  # characters XML cannot carry are dropped


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("style=round", "style"),
        ("window=1y", "window"),
        ("label=" + "x" * 65, "label"),
        ("colour=red", "colour"),
        ("style=flat&style=flat", "style"),
    ],
)
async def test_bad_query_values_name_the_parameter(
    make_client: MakeClient, query: str, field: str
) -> None:
    client, ids = await scene(make_client)
    resp = await client.get(f"/api/badge/{ids['cron']}/uptime.svg?{query}", headers=ANON)
    assert resp.status == 422
    assert resp.content_type == "application/problem+json"
    body: dict[str, Any] = await resp.json()
    assert body["errors"][0]["field"] == field


async def test_badges_are_in_the_openapi_document(client: Client) -> None:
    doc = await (await client.get("/api/openapi.json")).json()
    for kind in ("status", "uptime", "response"):
        op = doc["paths"][f"/api/badge/{{id}}/{kind}.svg"]["get"]
        assert "image/svg+xml" in op["responses"]["200"]["content"]
        assert op["x-role"] == "public"
        assert "404" in op["responses"] and "422" in op["responses"]
    uptime = doc["paths"]["/api/badge/{id}/uptime.svg"]["get"]
    assert {p["name"] for p in uptime["parameters"]} == {"id", "label", "style", "window"}
