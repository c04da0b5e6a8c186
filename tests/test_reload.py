"""SIGHUP and restarts of the real daemon: what a changed config file does to a running one.

A loopback HTTP target served from a thread of this process stands for the monitored service;
the daemon is a real `dragonopsd serve` process on its own state directory.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from conftest import Client
from daemon import Daemon
from ws_helpers import closed_with, frame, quick, subscribe

from dragonopsd.app import build_app
from dragonopsd.appkeys import METRICS, RESTART_REQUIRED
from dragonopsd.config import Config, from_mapping
from dragonopsd.reload import RELOADER


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


def http(d: Daemon, method: str, path: str, token: str | None = None) -> tuple[int, Any]:
    """Call the daemon as its bootstrap admin (or with token)."""
    headers = {"Authorization": f"Bearer {token or d.token}"}
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


# The line that ends a reload (before this branch: the monitor sync's, which ended it then).
RELOADED = r"(reloaded|re-synced) [^\n]*problems"
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


def readyz(d: Daemon) -> Any:
    with urllib.request.urlopen(d.url + "/readyz", timeout=10) as resp:
        return json.loads(resp.read())


def state_of(d: Daemon, monitor_id: str) -> Any:
    status, body = http(d, "GET", "/api/monitoring")
    assert status == 200, body
    return next(s for s in body["items"] if s["monitorId"] == monitor_id)


def test_sighup_applies_deny_cidrs_to_the_next_check(tmp_path: Path, target: _Target) -> None:
    url = f"http://127.0.0.1:{target.server_port}/"
    monitors = _monitor("now", url) + _monitor("scheduled", url + "s")
    config = tmp_path / "dragonops.toml"
    config.write_text(monitors, encoding="utf-8")
    with Daemon(tmp_path / "state", "--config", str(config)) as d:
        d.wait_listening()
        ids_ = ids(d)
        status, report = http(d, "POST", f"/api/monitors/{ids_['now']}/check")
        assert status == 200 and report["ok"], report
        until(lambda: state_of(d, ids_["scheduled"])["status"] == "up")

        config.write_text('[probes]\ndeny_cidrs = ["127.0.0.0/8"]\n' + monitors, "utf-8")
        mark = len(d.log)
        d.signal(signal.SIGHUP)
        d.wait_log(RELOADED, start=mark)
        status, report = http(d, "POST", f"/api/monitors/{ids_['now']}/check")
        assert status == 200 and not report["ok"], report
        assert "deny_cidrs 127.0.0.0/8" in report["error"], report
        assert "applied without a restart: probes.deny_cidrs" in d.log[mark:]
        # and the scheduler's own next check of the other monitor is refused the same way
        until(lambda: "deny_cidrs 127.0.0.0/8" in (state_of(d, ids_["scheduled"])["message"] or ""))
        assert readyz(d)["restartRequired"] == []  # --port 0 (a flag) is not a file change

        config.write_text(monitors, "utf-8")  # and back: allowed again, still no restart
        mark = len(d.log)
        d.signal(signal.SIGHUP)
        d.wait_log(RELOADED, start=mark)
        status, report = http(d, "POST", f"/api/monitors/{ids_['now']}/check")
        assert status == 200 and report["ok"], report
        assert d.stop() == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _jwt(secret: str) -> str:
    claims = {"sub": "u-1", "aud": "authenticated", "exp": int(time.time()) + 600}
    return jwt.encode(claims, secret, algorithm="HS256")


def test_sighup_swaps_auth_and_names_what_needs_a_restart(tmp_path: Path) -> None:
    port, other = _free_port(), _free_port()
    old, new = "old-secret-0123456789-abcdefghij", "new-secret-9876543210-zyxwvutsrq"
    config = tmp_path / "dragonops.toml"

    def write(port: int, secret: str) -> None:
        config.write_text(f'[server]\nport = {port}\n[auth]\njwt_secret = "{secret}"\n', "utf-8")

    write(port, old)
    state = tmp_path / "state"
    with Daemon(state, "--config", str(config), port=None) as d:
        assert d.wait_listening() == port
        assert http(d, "GET", "/api/monitors", _jwt(old))[0] == 200
        assert readyz(d)["status"] == "ready"

        write(other, new)
        mark = len(d.log)
        d.signal(signal.SIGHUP)
        d.wait_log(RELOADED, start=mark)
        assert http(d, "GET", "/api/monitors", _jwt(old))[0] == 401
        assert http(d, "GET", "/api/monitors", _jwt(new))[0] == 200
        ready = readyz(d)
        assert ready["status"] == "ready" and ready["restartRequired"] == ["server.port"]
        line = d.wait_log(r"[^\n]*server\.port needs a restart[^\n]*", start=mark)[0]
        assert "WARNING" in line, line
        d.wait_log(r"reloaded [^\n]*needs a restart: server\.port", start=mark)
        assert "auth.jwt_secret" in d.log[mark:]  # applied, and said so by name
        assert d.port == port  # still served where it was

        write(port, new)  # the file matches the running port again: nothing is pending
        mark = len(d.log)
        d.signal(signal.SIGHUP)
        d.wait_log(RELOADED, start=mark)
        assert readyz(d)["restartRequired"] == []
        write(other, new)
        mark = len(d.log)
        d.signal(signal.SIGHUP)
        d.wait_log(r"reloaded [^\n]*needs a restart: server\.port", start=mark)
        assert d.stop() == 0
        assert old not in d.log and new not in d.log

    with Daemon(state, "--config", str(config), port=None) as d:  # the restart applies it
        assert d.wait_listening() == other
        assert readyz(d)["restartRequired"] == []
        assert "needs a restart" not in d.log
        assert d.stop() == 0


async def test_a_jwt_secret_reload_signs_jwt_websockets_out(
    make_client: Callable[..., Awaitable[Client]], tmp_path: Path
) -> None:
    """Rotating a leaked secret must end the sessions it let in; API-token sockets stay, and
    JWT users made from then on get the new default role."""
    auth = {"jwt_secret": "first-secret-0123456789-abcdefgh"}
    client = await make_client(auth=auth)
    quick(client, check_interval=0.2)
    by_jwt = await client.ws_connect(
        "/api/ws", headers={"Authorization": f"Bearer {_jwt(auth['jwt_secret'])}"}
    )
    by_token = await client.ws_connect("/api/ws")  # the admin API token
    await subscribe(by_jwt, "monitors")
    await subscribe(by_token, "monitors")
    storage = {"state_dir": str(tmp_path)}
    new = {"jwt_secret": "second-secret-9876543210-zyxwvut", "default_role": "operator"}
    report = await client.app[RELOADER].apply(from_mapping({"storage": storage, "auth": new}, {}))
    assert report.applied == ["auth.jwt_secret", "auth.default_role"]
    assert report.restart_required == [] and report.problems == []
    assert await closed_with(by_jwt, 3.0) == 4401
    await by_token.send_json({"op": "ping"})
    assert (await frame(by_token))["data"] == {"op": "ping"}
    await by_token.close()
    claims = {"sub": "u-2", "aud": "authenticated", "exp": int(time.time()) + 600}
    fresh = jwt.encode(claims, new["jwt_secret"], algorithm="HS256")
    resp = await client.get("/api/monitors", headers={"Authorization": f"Bearer {fresh}"})
    assert resp.status == 200
    profiles = (await (await client.get("/api/profiles")).json())["items"]
    assert {p["id"]: p["role"] for p in profiles}["u-2"] == "operator"


async def test_the_app_owns_sighup_while_it_runs(
    aiohttp_client: Any, make_config: Callable[..., Config], capsys: pytest.CaptureFixture[str]
) -> None:
    """The app, not the command, installs the reload: given a way to re-read its config it
    applies the new one on SIGHUP; once stopped, a SIGHUP re-reads nothing and kills nothing."""
    cfg = make_config(metrics={"token": "scrape-old-1234"})
    new = make_config(metrics={"token": "scrape-new-5678"}, server={"shutdown_timeout": 7})
    reads: list[Config] = []

    def reread() -> Config:
        reads.append(new)
        return new

    client = await aiohttp_client(build_app(cfg, reread=reread))
    os.kill(os.getpid(), signal.SIGHUP)
    await _until(lambda: client.app[RESTART_REQUIRED] == ["server.shutdown_timeout"])
    assert client.app[METRICS].token == "scrape-new-5678"
    await client.close()

    err: list[str] = []  # the reload set the daemon's own log handler up on stderr
    os.kill(os.getpid(), signal.SIGHUP)
    await _until(lambda: "SIGHUP ignored: the daemon is stopping" in "".join(err), err, capsys)
    assert len(reads) == 1


async def _until(
    check: Callable[[], bool],
    err: list[str] | None = None,
    capsys: pytest.CaptureFixture[str] | None = None,
    timeout: float = 10.0,
) -> None:
    """Poll check() on the loop until it holds (collecting stderr into err); fail after timeout."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if err is not None and capsys is not None:
            err.append(capsys.readouterr().err)
        if check():
            return
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)
