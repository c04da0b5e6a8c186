"""SIGHUP and restarts of the real daemon: what a changed config file does to a running one.

A loopback HTTP target served from a thread of this process stands for the monitored service;
the daemon is a real `dragonopsd serve` process on its own state directory.
"""

from __future__ import annotations

import http.server
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon import Daemon


class _Ok(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.server.hits += 1  # type: ignore[attr-defined]
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Target(http.server.ThreadingHTTPServer):
    daemon_threads = True
    hits = 0


@pytest.fixture
def target() -> Iterator[_Target]:
    server = _Target(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def http(d: Daemon, method: str, path: str) -> tuple[int, Any]:
    """Call the daemon as its bootstrap admin."""
    headers = {"Authorization": f"Bearer {d.token}"}
    req = urllib.request.Request(d.url + path, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def until(what: Callable[[], Any], timeout: float = 15.0) -> Any:
    """Poll what() until it returns something truthy; fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.05)


def monitors_by_name(d: Daemon) -> dict[str, Any]:
    status, page = http(d, "GET", "/api/monitors")
    assert status == 200, page
    return {m["name"]: m for m in page["items"]}


def ids(d: Daemon) -> dict[str, str]:
    return {name: m["id"] for name, m in monitors_by_name(d).items()}


def heartbeats(d: Daemon, monitor_id: str) -> int:
    since = int(time.time()) - 3600
    status, body = http(d, "GET", f"/api/monitors/{monitor_id}/history?since={since}&step=1h")
    assert status == 200, body
    return sum(p["up"] + p["down"] + p["pending"] + p["maintenance"] for p in body["points"])


def check_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dragonopsd", "check-config", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


HISTORY = "[history]\nflush_interval = 0.05\n\n"


def _monitor(name: str, url: str, key: str = "name") -> str:
    head = f'[[monitors]]\n{key} = "{name}"\nkind = "http"\nurl = "{url}"\n'
    return head + "interval = 1\ntimeout = 1\n\n"


def test_a_typo_in_one_monitor_table_deletes_nothing(tmp_path: Path, target: _Target) -> None:
    url = f"http://127.0.0.1:{target.server_port}/"
    config = tmp_path / "dragonops.toml"
    good = HISTORY + _monitor("api", url) + _monitor("web", url + "web")
    config.write_text(good, encoding="utf-8")
    typo = HISTORY + _monitor("api", url) + _monitor("web", url + "web", key="nmae")
    state = tmp_path / "state"
    with Daemon(state, "--config", str(config)) as d:
        d.wait_listening()
        before = monitors_by_name(d)
        assert sorted(before) == ["api", "web"]
        web = before["web"]["id"]
        ids_before = ids(d)
        until(lambda: heartbeats(d, web) >= 2)

        config.write_text(typo, encoding="utf-8")
        mark = len(d.log)
        d.signal(signal.SIGHUP)
        d.wait_log(r"(re-synced|not synced)", start=mark)  # the sync is over, either way
        assert ids(d) == ids_before
        line = d.wait_log(r"[^\n]*monitors\[1\]\.nmae[^\n]*", start=mark)[0]
        assert "unknown field" in line, line
        kept = heartbeats(d, web)
        assert kept >= 2
        assert d.stop() == 0

    out = check_config(config)
    assert out.returncode == 2, out
    assert "monitors[1].nmae" in out.stderr and "unknown field" in out.stderr

    with Daemon(state, "--config", str(config)) as d:  # a restart with the typo still in
        d.wait_listening()
        d.wait_log(r"(re-synced|not synced)")
        assert ids(d) == ids_before
        assert heartbeats(d, web) >= kept
        until(lambda: heartbeats(d, web) > kept)  # and it is still being probed
        assert d.stop() == 0

    config.write_text(good, encoding="utf-8")
    assert check_config(config).returncode == 0
