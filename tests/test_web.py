"""The dashboard's files as served: versioned, cached forever, CSP-clean, and self-contained;
plus the heartbeats route its heartbeat bar reads. (The browser tests are test_dashboard.py.)"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from conftest import Client, post

from dragonopsd.api.bundle import WEB_BUNDLE
from dragonopsd.api.front import HTML_CSP

pytestmark = pytest.mark.backends

MakeClient = Callable[..., Awaitable[Client]]
ANON = {"Authorization": ""}
# Namespace names, not fetches: createElementNS and the SVG icon's xmlns.
NAMESPACES = ("http://www.w3.org/2000/svg",)
SINKS = ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "Function(")
IMPORT = re.compile(r"""(?:from\s+|import\s*\()\s*["'](\./[^"']+)["']""")


async def test_index_names_the_build_and_is_revalidated(client: Client) -> None:
    bundle = client.app[WEB_BUNDLE]
    resp = await client.get("/", headers=ANON)
    assert resp.status == 200
    assert resp.content_type == "text/html"
    assert resp.headers["Cache-Control"] == "no-cache"
    assert resp.headers["Content-Security-Policy"] == HTML_CSP
    page = await resp.text()
    assert "%BUILD%" not in page
    assert f'src="/assets/{bundle.build}/main.js"' in page
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script\s*>", page, re.S | re.I)
    assert scripts and all('type="module"' in a and not code.strip() for a, code in scripts)
    assert not re.search(r"<style\b|\sstyle=|\son[a-z]+=", page, re.I), "inline style or handler"
    for ref in re.findall(r'(?:src|href)="(/assets/[^"]+)"', page):
        assert (await client.get(ref, headers=ANON)).status == 200, ref


async def test_assets_are_immutable_typed_and_self_contained(client: Client) -> None:
    bundle = client.app[WEB_BUNDLE]
    assert {"main.js", "app.css", "status.css", "icon.svg"} <= set(bundle.assets)
    types = {"js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}
    for name, asset in bundle.assets.items():
        resp = await client.get(bundle.url(name), headers=ANON)
        assert resp.status == 200, name
        assert resp.content_type == types[name.rsplit(".", 1)[1]], name
        assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        text = (await resp.read()).decode()
        assert text == asset.body.decode()
        for url in re.findall(r"https?://[^\s\"')]+", text):
            # example.com (RFC 2606) can only be a form's placeholder, never a source.
            host = url.split("/")[2]
            placeholder = host == "example.com" or host.endswith(".example.com")
            assert url in NAMESPACES or placeholder, f"{name} names {url}: nothing from elsewhere"
        if name.endswith(".js"):
            for sink in SINKS:
                assert sink not in text, f"{name} uses {sink}: build DOM nodes (dom.js h())"
            assert ".style" not in text and '"style"' not in text, f"{name} sets inline styles"
            for target in IMPORT.findall(text):
                assert target[2:] in bundle.assets, f"{name} imports missing {target}"
        assert text.count("\n") <= 400, f"{name} is over 400 lines: split it"


async def test_unknown_build_or_file_is_a_404_problem(client: Client) -> None:
    bundle = client.app[WEB_BUNDLE]
    for path in (
        "/assets/0123456789ab/main.js",  # an old build after an upgrade
        f"/assets/{bundle.build}/nope.js",
        f"/assets/{bundle.build}/index.html",  # served at /, not as an asset
        f"/assets/{bundle.build}/..%2Fdocs.js",
    ):
        resp = await client.get(path, headers=ANON)
        assert resp.status == 404, path
        assert resp.content_type == "application/problem+json"


async def test_heartbeats_newest_first(make_client: MakeClient) -> None:
    client = await make_client(history={"flush_interval": 0.05})
    m = await post(
        client, "/api/monitors", {"name": "cron", "kind": "push", "interval": 60, "timeout": 1}
    )
    for status in ("up", "down", "up"):
        resp = await client.get(f"/api/push/{m['pushToken']}?status={status}&ping=5", headers=ANON)
        assert resp.status == 200
    base = f"/api/monitors/{m['id']}/heartbeats"
    items: list[dict[str, Any]] = []
    for _ in range(100):  # the batched writer flushes every 50 ms here; wait for all three
        if len((await (await client.get(f"{base}?limit=3")).json())["items"]) == 3:
            break
        await asyncio.sleep(0.05)
    items = (await (await client.get(f"{base}?limit=2")).json())["items"]
    assert [i["status"] for i in items] == ["up", "down"]
    assert items[0]["at"] >= items[1]["at"]
    assert set(items[0]) == {"at", "status", "latencyMs", "message"}
    assert (await client.get(f"{base}?limit=0")).status == 422
    assert (await client.get(f"{base}?since=1")).status == 422
    gone = "/api/monitors/00000000-0000-4000-8000-000000000000/heartbeats"
    assert (await client.get(gone)).status == 404
    assert (await client.get(base, headers=ANON)).status == 401
