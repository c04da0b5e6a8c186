"""The OpenAPI document matches the router, is valid 3.1, and the docs page renders it offline."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Client
from openapi_spec_validator import validate

from dragonopsd.api import routes
from dragonopsd.api.front import FALLBACK

CHROMIUM = Path("/usr/bin/chromium")
OUTPUT = Path(__file__).parent / "output"
DOCS_ASSETS = ("/api/docs", "/api/docs/docs.js", "/api/docs/docs.css")
HTTP_METHODS = {"get", "put", "post", "patch", "delete", "options", "head", "trace"}


async def fetch_spec(client: Client) -> dict[str, Any]:
    resp = await client.get("/api/openapi.json")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    spec: dict[str, Any] = await resp.json()
    return spec


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in HTTP_METHODS:
                yield method.upper(), path, op


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def resolve(spec: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"non-local $ref {ref}"
    node: Any = spec
    for part in ref[2:].split("/"):
        key = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and key in node, f"$ref {ref} does not resolve"
        node = node[key]
    return node


async def test_document_is_valid_openapi_3_1(client: Client) -> None:
    spec = await fetch_spec(client)
    assert spec["openapi"].startswith("3.1")
    validate(spec)


async def test_every_route_is_documented(client: Client) -> None:
    spec = await fetch_spec(client)
    registered = {
        (r.method, r.resource.canonical)
        for r in client.app.router.routes()
        if r.method != "HEAD" and r.resource is not None and r.name != FALLBACK
    }
    documented = {(method, path) for method, path, _ in operations(spec)}
    assert registered == documented

    table = {(r.method, r.path): r for r in routes.table()}
    for method, path, op in operations(spec):
        route = table[(method, path)]
        codes = set(op["responses"])
        missing = {str(c) for c in (*route.errors, 500)} - codes
        assert not missing, f"{method} {path} does not document {sorted(missing)}"
        assert str(route.status) in codes, f"{method} {path} lacks its success status"
        assert op["x-role"] == route.role, f"{method} {path} x-role"
        assert op["x-role"] in ("public", "viewer", "operator", "admin", "agent")
        assert op["x-scope"] in ("global", "filtered", "unscoped"), f"{method} {path} x-scope"


async def test_every_ref_resolves(client: Client) -> None:
    spec = await fetch_spec(client)
    found = set(refs(spec))
    assert any(r.startswith("#/components/schemas/") for r in found)
    for ref in found:
        resolve(spec, ref)


async def test_docs_page_is_self_contained(client: Client) -> None:
    bodies = {}
    for path in DOCS_ASSETS:
        resp = await client.get(path)
        assert resp.status == 200, path
        bodies[path] = await resp.text()
    resp = await client.get("/api/docs")
    assert resp.content_type == "text/html"
    assert (await client.get("/api/docs/docs.js")).content_type == "text/javascript"
    assert (await client.get("/api/docs/docs.css")).content_type == "text/css"

    for path, body in bodies.items():
        assert not re.search(r"https?://", body), f"{path} names an external URL"
        assert "@import" not in body, path
    page = bodies["/api/docs"]
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script\s*>", page, re.S | re.I)
    assert scripts, "the page loads no script"
    for attrs, code in scripts:
        assert "src=" in attrs and not code.strip(), "inline <script> (a strict CSP blocks it)"
    assert not re.search(r"<style\b|\sstyle=|\son[a-z]+=", page, re.I), "inline style or handler"
    for href in re.findall(r'(?:src|href)="([^"#]*)"', page):
        assert href.startswith("/api/"), f"{href}: use an absolute /api/ path"
        assert (await client.get(href)).status == 200, href
    script = bodies["/api/docs/docs.js"]
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, f"docs.js uses {sink}; render through textContent"


def start_daemon(state: Path, log_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRAGONOPS_")}
    env.pop("STATE_DIRECTORY", None)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dragonopsd", "serve", "--port", "0", "--state-dir", str(state)],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=env,
        )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", log_path.read_text())
        if found:
            return proc, int(found.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    pytest.fail(f"the daemon did not start:\n{log_path.read_text()}")


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=5000",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def test_docs_page_renders_in_a_browser(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: .ci/run installs it (apt-get install -y chromium); "
            "install it to run this test locally"
        )
    proc, port = start_daemon(tmp_path / "state", tmp_path / "daemon.log")
    try:
        url = f"http://127.0.0.1:{port}/api/docs"
        dom = chromium(tmp_path / "profile-dom", "--dump-dom", url)
        assert dom.returncode == 0, dom.stderr
        html = dom.stdout
        assert "Could not load" not in html, html
        assert "/api/clients/{id}" in html
        assert "Create a client" in html
        assert "role: operator" in html
        assert "ClientCreate" in html
        assert re.search(r'id="count"[^>]*>\d+ of \d+ endpoints<', html), "filter not set up"

        OUTPUT.mkdir(exist_ok=True)
        shot = OUTPUT / "docs.png"
        shot.unlink(missing_ok=True)
        result = chromium(
            tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1280,1600", url
        )
        assert result.returncode == 0, result.stderr
        assert shot.stat().st_size > 10_000, "screenshot looks empty"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
