"""Real `dragonopsd serve` cores for the cluster tests and benches: a counting HTTP target
(GET checks, POST webhook deliveries), a core started on a shared database and Redis prefix,
and a websocket watcher on a thread."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.server
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from daemon import Daemon
from redis_helpers import free_port

INTERVAL = 2.0  # s, every monitor
DEAD_AFTER = 3.0  # s, [cluster] dead_after
SIGNING_SECRET = "cluster-signing-secret-0123456789"


class Hits:
    """Times each path of the counting target was requested."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.at: dict[str, list[float]] = defaultdict(list)
        self.posts: dict[str, list[bytes]] = defaultdict(list)  # webhook deliveries
        self.bad_signatures = 0

    def add(self, path: str) -> None:
        with self.lock:
            self.at[path].append(time.time())

    def between(self, start: float, end: float) -> dict[str, list[float]]:
        with self.lock:
            return {p: [t for t in ts if start <= t < end] for p, ts in self.at.items()}


@pytest.fixture
def target() -> Iterator[tuple[str, Hits]]:
    """An HTTP target that records every request's path and time."""
    hits = Hits()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            hits.add(self.path)
            body = b"ok"
            self.send_response(500 if self.path.startswith("/down") else 200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            want = "sha256=" + hmac.new(SIGNING_SECRET.encode(), body, hashlib.sha256).hexdigest()
            signed = self.headers.get("X-DragonOps-Signature")
            with hits.lock:
                hits.posts[self.path].append(body)
                if signed is None or not hmac.compare_digest(signed, want):
                    hits.bad_signatures += 1
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a killed core's connections reset

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def call(d: Daemon, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    req = urllib.request.Request(d.url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def start_core(
    tmp_path: Path,
    name: str,
    redis_url: str,
    prefix: str,
    key: Path | None,
    actions: str = "",
    storage_url: str = "",
    tables: str = "",
) -> Daemon:
    """A core with its own state directory and port, on the shared database (PostgreSQL at
    storage_url, else one SQLite file in tmp_path) and Redis; tables: TOML appended to its
    config file ([[monitors]] and the like)."""
    state = tmp_path / name
    state.mkdir()
    port = free_port()
    cfg = tmp_path / f"{name}.toml"
    lines = [
        "[storage]",
        f'url = "{storage_url}"' if storage_url else f'path = "{tmp_path / "shared.db"}"',
        "[redis]",
        f'url = "{redis_url}"',
        f'prefix = "{prefix}"',
        "[cluster]",
        f'node = "{name}"',
        f"dead_after = {DEAD_AFTER}",
        "[history]",
        "flush_interval = 0.5",
    ]
    if key is not None:  # every core seals and opens with the same key file
        lines += ["[secrets]", f'key_file = "{key}"']
    if actions:
        lines += ["[actions]", actions]
    cfg.write_text("\n".join(lines) + "\n" + tables)
    d = Daemon(state, "--config", str(cfg), port=port)
    d.wait_listening(60)
    return d


def wait_for(what: str, check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not within {timeout}s"
        time.sleep(0.2)


def alive(d: Daemon, token: str) -> dict[str, int]:
    status, body = call(d, token, "GET", "/api/cluster")
    assert status == 200, body
    return {m["node"]: m["ownedMonitors"] for m in body["items"] if m["status"] == "alive"}


def no_doubles(hits: dict[str, list[float]]) -> list[str]:
    """Paths checked twice within half an interval (two cores checking one monitor)."""
    doubled = []
    for path, times in hits.items():
        times.sort()
        if any(b - a < INTERVAL / 2 for a, b in itertools.pairwise(times)):
            doubled.append(f"{path}: {times}")
    return doubled


class Watcher:
    """A websocket client on its own thread and loop, subscribed to topics on one core,
    keeping every event frame it receives."""

    def __init__(self, d: Daemon, token: str, *topics: str) -> None:
        self.frames: list[dict[str, Any]] = []
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._url = d.url.replace("http://", "ws://", 1) + "/api/ws"
        self._token = token
        self._topics = list(topics)
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()
        assert self.ready.wait(15), "the websocket never subscribed"

    async def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self._token}"}
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(self._url, headers=headers) as ws,
        ):
            await ws.send_json({"op": "subscribe", "topics": self._topics})
            while not self._stop.is_set():
                try:
                    msg = await ws.receive(timeout=0.2)
                except TimeoutError:
                    continue
                if msg.type != aiohttp.WSMsgType.TEXT:
                    return
                frame = json.loads(msg.data)
                if frame["type"] == "ack" and frame["data"].get("op") == "subscribe":
                    self.ready.set()
                elif frame["type"] == "event":
                    self.frames.append(frame)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
