"""kill -9 under probe load: at most the last flush of heartbeats is lost, and nothing else.

The real daemon probes 200 HTTP monitors (``[[monitors]]``, every second) against a local
target served from a thread of this process, takes acknowledged API writes, and is SIGKILLed
mid-run. A second daemon on the same state directory must find an intact database, every
acknowledged write, each monitor's heartbeats up to the last flush window before the kill with
no earlier holes, and must go on adding heartbeats.
"""

from __future__ import annotations

import http.server
import itertools
import json
import signal
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon import Daemon

MONITORS = 200
INTERVAL = 1.0  # s, each monitor
FLUSH_INTERVAL = 0.5  # s, [history] flush_interval
SLACK = 1.0  # s, scheduling and flush duration
# Largest step allowed between two heartbeats of a monitor: one missed heartbeat makes ~2 s.
MAX_STEP = 1.5 * INTERVAL
RUN_BEFORE_KILL = 4.0  # s of probing before the kill
RUN_AFTER_RESTART = 2.5  # s of probing by the second daemon
CLIENTS = 5


class _Ok(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the daemon's client expects

    def do_GET(self) -> None:
        body = b'{"status":"ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the killed daemon's connections reset; nothing to report


@pytest.fixture
def target() -> Iterator[str]:
    """A fast HTTP target on a free loopback port, served from a background thread."""
    server = _Server(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def call(d: Daemon, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """One API call as the bootstrap admin."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {d.token}"}
    req = urllib.request.Request(d.url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


def write_config(path: Path, url: str) -> None:
    lines = ["[history]", f"flush_interval = {FLUSH_INTERVAL}", ""]
    for i in range(MONITORS):
        lines += [
            "[[monitors]]",
            f'name = "crash-{i:03d}"',
            'kind = "http"',
            f'url = "{url}"',
            f"interval = {INTERVAL}",
            "timeout = 1",
            "",
        ]
    path.write_text("\n".join(lines))


def heartbeats(db: Path) -> tuple[str, dict[int, list[float]], dict[int, str]]:
    """quick_check result, heartbeat times (s) per monitor seq, and monitor names by seq."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
        beats: dict[int, list[float]] = defaultdict(list)
        for seq, at in conn.execute("SELECT monitor, at FROM history_raw ORDER BY monitor, at"):
            beats[seq].append(at / 1000)
        names = dict(conn.execute("SELECT seq, name FROM monitors").fetchall())
    finally:
        conn.close()
    return check, beats, names


def test_kill_9_under_probe_load_loses_at_most_the_last_flush(tmp_path: Path, target: str) -> None:
    state = tmp_path / "state"
    state.mkdir()
    config = tmp_path / "dragonopsd.toml"
    write_config(config, target)
    acknowledged: list[str] = []

    with Daemon(state, "--config", str(config)) as first:
        first.wait_listening()
        up_at = time.time()
        for i in range(CLIENTS - 1):
            status, body = call(first, "POST", "/api/clients", {"name": f"Crash Client {i}"})
            assert status == 201, body
            acknowledged.append(body["id"])
        time.sleep(max(0.0, up_at + RUN_BEFORE_KILL - time.time()))
        status, stats = call(first, "GET", "/api/stats/engine")
        assert status == 200, stats
        assert stats["monitors"] == MONITORS, stats
        assert stats["checksStarted"] >= MONITORS, stats  # probing, and flushing, when killed
        assert stats["historyFlushed"] > 0, stats
        # The last write is acknowledged a moment before the kill.
        status, body = call(first, "POST", "/api/clients", {"name": "Crash Client last"})
        assert status == 201, body
        acknowledged.append(body["id"])
        kill_time = time.time()
        first.proc.send_signal(signal.SIGKILL)
        assert first.wait_exit(10) == -signal.SIGKILL
        dead_at = time.time()

    restarted_at = time.time()  # the second daemon probes before it logs its port
    with Daemon(state, "--config", str(config)) as second:
        second.wait_listening()
        for ident in acknowledged:
            status, body = call(second, "GET", f"/api/clients/{ident}")
            assert status == 200, (ident, body)
        time.sleep(RUN_AFTER_RESTART)
        assert second.stop() == 0, second.log

    check, beats, names = heartbeats(state / "dragonops.db")
    assert check == "ok"
    assert sorted(names.values()) == [f"crash-{i:03d}" for i in range(MONITORS)]
    oldest_allowed = kill_time - (FLUSH_INTERVAL + INTERVAL + SLACK)
    for seq, name in names.items():
        before = [t for t in beats[seq] if t <= dead_at]
        after = [t for t in beats[seq] if t >= restarted_at]
        assert before, f"{name}: no heartbeat from the first run"
        # At most the last flush window is missing...
        assert before[-1] >= oldest_allowed, (
            f"{name}: last heartbeat {kill_time - before[-1]:.2f}s before the kill"
        )
        # ...and nothing before it: the first run's heartbeats are contiguous.
        steps = [b - a for a, b in itertools.pairwise(before)]
        assert max(steps, default=0) <= MAX_STEP, f"{name}: gap of {max(steps):.2f}s"
        assert after, f"{name}: the second run added no heartbeat"
        assert not [t for t in beats[seq] if dead_at < t < restarted_at], name
