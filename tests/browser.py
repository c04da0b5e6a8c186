"""Browser-test helpers: Debian's Chromium driven by Playwright, a flippable HTTP target, and a
small REST client for setting the scene (all real, all on loopback).

Playwright drives the system's /usr/bin/chromium (``executable_path``): nothing is downloaded,
so ``playwright install`` is never run. Chromium runs as root in CI, hence ``--no-sandbox``.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from daemon import Daemon
from playwright.sync_api import Browser, ConsoleMessage, Page

from dragonopsd.secrets.crypto import KeyRing, write_key_file

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).parent / "output" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]


def status_of(token: str, base: str, path: str) -> int:
    """The HTTP status a GET of path answers to a bearer token (the browser's credential)."""
    req = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


class Target:
    """An HTTP server on loopback whose /health answers 200 or 500, as the test flips it."""

    def __init__(self) -> None:
        self.healthy = True
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                ok = target.healthy
                body = b"ok" if ok else b"broken"
                self.send_response(200 if ok else 500)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # one line per probe would drown the test output

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/health"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Rest:
    """Just enough of an API client to create the inventory a test looks at."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.token = token

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{method} {path}: {exc.code} {exc.read()!r}") from None
        return json.loads(raw) if raw else None

    def post(self, path: str, body: Any) -> Any:
        return self.call("POST", path, body)

    def get(self, path: str) -> Any:
        return self.call("GET", path)


class Watch:
    """Collects what a page reports that a test should fail on: script errors and CSP refusals."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("console", self._console)

    def _console(self, msg: ConsoleMessage) -> None:
        text = msg.text
        if msg.type == "error" and "favicon" not in text:
            self.errors.append(f"console: {text}")
        elif "Content Security Policy" in text:
            self.errors.append(f"csp: {text}")

    def assert_clean(self) -> None:
        assert not self.errors, "\n".join(self.errors)


@contextmanager
def new_page(
    browser: Browser, width: int = 1280, height: int = 900
) -> Iterator[tuple[Page, Watch]]:
    """A fresh context (empty sessionStorage) and page; closed afterwards."""
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(15_000)
    page = context.new_page()
    watch = Watch(page)
    try:
        yield page, watch
    finally:
        context.close()


def sign_in(page: Page, base: str, token: str) -> None:
    """Load the dashboard, paste the token, wait for the live connection."""
    page.goto(base + "/")
    page.fill("#token", token)
    page.click("form.signin button[type=submit]")
    page.wait_for_selector("#conn[data-state='live']")


def shoot(page: Page, name: str, *, full: bool = True) -> Path:
    """Save a screenshot under tests/output/screenshots/ and check it is not blank."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full)
    assert path.stat().st_size > 5_000, f"{path} looks empty"
    return path


def no_horizontal_scroll(page: Page, width: int) -> None:
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{page.url}: the page is {scroll}px wide at a {width}px viewport"


MONITOR = "Public API"
SECRET_VALUE = "s3cr3t-for-the-reveal-test"


def config(target: Target) -> str:
    return f"""
[sampling]
interval = 0.5

[actions]
duration_seconds = 1.5

[status_page]
title = "Acme status"
monitors = ["{MONITOR}"]
cache_seconds = 0
pages = [{{ slug = "internal", title = "Internal services", monitors = ["{MONITOR}"] }}]

[[monitors]]
name = "{MONITOR}"
kind = "http"
url = "{target.url}"
interval = 1
timeout = 1
"""


class Scene:
    """The running daemon, its target, and what the tests created through the API."""

    def __init__(self, tmp: Path) -> None:
        self.target = Target()
        self.state = tmp / "state"
        self.state.mkdir()
        write_key_file(self.state / "secrets.key", KeyRing.new("k1"), overwrite=False)
        self.config = tmp / "dragonops.toml"
        self.config.write_text(config(self.target))
        self.daemon = self.start()
        self.rest = Rest(self.daemon.url, self.daemon.token)
        self.ids: dict[str, str] = {}

    def start(self, port: int = 0) -> Daemon:
        daemon = Daemon(self.state, "--config", str(self.config), "--port", str(port))
        try:
            daemon.wait_listening()
        except BaseException:
            daemon.kill()  # none outlives the test
            raise
        return daemon

    def populate(self) -> None:
        post = self.rest.post
        client = post("/api/clients", {"name": "Acme"})
        project = post("/api/projects", {"clientId": client["id"], "name": "Portal"})
        env = post("/api/environments", {"projectId": project["id"], "name": "Production"})
        web = post(
            "/api/servers",
            {"environmentId": env["id"], "name": "web-1", "type": "web", "privateIp": "10.0.0.5"},
        )
        post("/api/servers", {"environmentId": env["id"], "name": "db-1", "type": "database"})
        self.ids["server"] = web["id"]
        post("/api/secrets", {"key": "DATABASE_URL", "env": "production", "value": SECRET_VALUE})
        post(
            "/api/maintenance",
            {
                "name": "Weekly patching",
                "kind": "recurring",
                "cron": "0 3 * * sun",
                "duration": 3600,
                "scope": {"serverIds": [web["id"]]},
            },
        )
        monitors = self.rest.get("/api/monitors")["items"]
        self.ids["monitor"] = next(m["id"] for m in monitors if m["name"] == MONITOR)
