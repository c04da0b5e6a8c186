"""kill -9 under probe load: at most the last flush of heartbeats is lost, and nothing else.

The real daemon probes 200 HTTP monitors (``[[monitors]]``, every second) against a local
target served from a thread of this process, takes acknowledged API writes, and is SIGKILLed
mid-run. A websocket subscriber records every ``monitor.heartbeat`` the first daemon announced
and when it arrived. A second daemon on the same state directory must find an intact database,
every acknowledged write, every heartbeat announced more than the last flush before the kill,
no announced heartbeat missing while a later one is stored, nothing that was not produced, and
must go on adding heartbeats.

What is measured is loss, not scheduling: on a starved machine the daemon produces heartbeats
late (and this test receives them late), which is no loss. A late announcement only makes the
loss check demand less, never fail. So does a slow commit (synchronous=FULL on a busy disk
can take seconds): the last flush is flush_interval plus two commits (the one in flight and
the one before it), and the commits' length is what the daemon itself reports, polled while it
runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import signal
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp
import pytest
from daemon import Daemon

MONITORS = 200
INTERVAL = 1.0  # s, each monitor
FLUSH_INTERVAL = 0.5  # s, [history] flush_interval
SLACK = 1.0  # s, the loop's lag
RUN_BEFORE_KILL = 4.0  # s of probing before the kill, at least
RUN_AFTER_RESTART = 2.5  # s of probing by the second daemon
CLIENTS = 5
# Bounds waits (start, API calls, first heartbeats) on a starved machine; never a measured figure.
PATIENCE = 60.0
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
        with urllib.request.urlopen(req, timeout=PATIENCE) as resp:
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


def heartbeats(db: Path) -> tuple[str, dict[str, list[int]], dict[str, str]]:
    """quick_check result, heartbeat times (ms, ascending) by monitor id, monitor names by id."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
        beats: dict[str, list[int]] = defaultdict(list)
        rows = conn.execute(
            "SELECT m.id, h.at FROM history_raw h JOIN monitors m ON m.seq = h.monitor "
            "ORDER BY h.monitor, h.at"
        )
        for ident, at in rows:
            beats[ident].append(at)
        names = dict(conn.execute("SELECT id, name FROM monitors").fetchall())
    finally:
        conn.close()
    return check, beats, names


def millis(iso: str) -> int:
    """An event's ``at`` (``2026-11-26T08:10:00.123Z``) as history_raw.at stores it: both are
    the same stamp rounded to the millisecond (clock.iso_of, HistoryWriter.submit)."""
    at = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return (at - EPOCH) // timedelta(milliseconds=1)


class Beat(NamedTuple):
    seq: int  # the event's seq on monitors.<id>
    at: int  # the heartbeat's time, ms
    received: float  # when this test had it (time.time())


class Announcements:
    """Every ``monitor.heartbeat`` a websocket subscriber of one daemon receives, with when.

    A thread of its own runs the client, so the test's sleeps and calls never delay a read.
    It reads until the daemon's end closes the socket. Heartbeats are coalescible: a frame the
    socket has not taken yet is replaced by the next one of its monitor, and its seq goes
    unseen; ``unseen`` counts those.
    """

    def __init__(self, d: Daemon, ids: list[str]) -> None:
        self._url = d.url.replace("http://", "ws://", 1) + "/api/ws"
        self._token = d.token
        self._ids = ids
        self._lock = threading.Lock()
        self.beats: dict[str, list[Beat]] = defaultdict(list)
        self.seqs: dict[str, set[int]] = defaultdict(set)  # every event seq seen, by monitor
        self.subscribed = threading.Event()
        self.problems: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._run)

    def __enter__(self) -> Announcements:
        self._thread.start()
        if not self.subscribed.wait(PATIENCE):
            raise AssertionError(f"no subscribe ack within {PATIENCE}s: {self.problems}")
        return self

    def __exit__(self, *exc: Any) -> None:
        # Normally the daemon is dead and the socket closed; otherwise stop reading now.
        with contextlib.suppress(RuntimeError):  # the loop already closed
            self._loop.call_soon_threadsafe(self._cancel)
        self._thread.join(10)
        assert not self._thread.is_alive(), "the websocket reader did not stop"

    def first_heard(self) -> dict[str, float]:
        """When each monitor's first heartbeat arrived (monitors heard from so far)."""
        with self._lock:
            return {m: beats[0].received for m, beats in self.beats.items() if beats}

    def unseen(self, ident: str, low: int, high: int) -> int:
        """Events of the monitor with seq in [low, high] that never reached this subscriber."""
        return sum(1 for s in range(low, high + 1) if s not in self.seqs[ident])

    def _cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def _run(self) -> None:
        try:
            self._task = self._loop.create_task(self._listen())
            with contextlib.suppress(asyncio.CancelledError):
                self._loop.run_until_complete(self._task)
        except Exception as exc:
            self.problems.append(repr(exc))
        finally:
            self._loop.close()

    async def _listen(self) -> None:
        topics = [f"monitors.{ident}" for ident in self._ids]
        headers = {"Authorization": f"Bearer {self._token}"}
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(self._url, headers=headers) as ws,
        ):
            await ws.send_json({"op": "subscribe", "topics": topics})
            with contextlib.suppress(aiohttp.ClientError, ConnectionError):
                async for msg in ws:
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        break
                    self._take(json.loads(msg.data), time.time())

    def _take(self, frame: dict[str, Any], received: float) -> None:
        kind = frame["type"]
        if kind == "ack" and frame["data"]["op"] == "subscribe":
            self.subscribed.set()
        elif kind == "error":
            self.problems.append(json.dumps(frame))
        elif kind == "event" and frame["topic"].startswith("monitors."):
            ident = frame["topic"].removeprefix("monitors.")
            with self._lock:
                self.seqs[ident].add(frame["seq"])
                if frame["event"] == "monitor.heartbeat":
                    beat = Beat(frame["seq"], millis(frame["data"]["at"]), received)
                    self.beats[ident].append(beat)


class Flushes:
    """The longest history commit the daemon reports (``historyLastFlushMs`` of
    /api/stats/engine), polled from a thread until the daemon is gone."""

    def __init__(self, d: Daemon) -> None:
        self._d = d
        self.longest = 0.0  # s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def window(self) -> float:
        """How long before the kill a heartbeat may have been announced and still be lost:
        one flush_interval, the commit in flight and the one before it, and the loop's lag."""
        return FLUSH_INTERVAL + 2 * self.longest + SLACK

    def __enter__(self) -> Flushes:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            try:
                status, stats = call(self._d, "GET", "/api/stats/engine")
            except OSError:
                return  # killed
            if status == 200:
                self.longest = max(self.longest, stats["historyLastFlushMs"] / 1000)


def wait_until_due(announced: Announcements, flushes: Flushes, up_at: float) -> None:
    """Probe for RUN_BEFORE_KILL, and until every monitor has a heartbeat announced more than
    the window (and one interval) ago: the loss check then has something to demand of each.

    On a starved machine that takes longer; the daemon producing late is no loss.
    """
    deadline = time.time() + PATIENCE
    while True:
        heard = announced.first_heard()
        # The window may grow while we wait (a slower commit): wake up and look again.
        wake = max(heard.values(), default=up_at) + flushes.window() + INTERVAL
        if len(heard) == MONITORS and time.time() >= max(up_at + RUN_BEFORE_KILL, wake):
            return
        assert time.time() < deadline, (
            f"{len(heard)} monitors announced a heartbeat, {flushes.window():.2f}s window, "
            f"after {PATIENCE}s: {announced.problems}"
        )
        time.sleep(0.1)


def check_first_run(
    name: str, stored: list[int], beats: list[Beat], unseen: int, kill_time: float, window: float
) -> int:
    """One monitor's heartbeats of the first run against what the daemon announced.

    stored: its history rows (ms) up to the death; beats: its announced heartbeats in seq
    order; unseen: its events that this subscriber never received (coalesced) between the
    first and the last announced heartbeat. Returns how many heartbeats it demanded.
    """
    assert beats, f"{name}: no heartbeat announced"
    kept = set(stored)
    # Loss: a heartbeat announced more than the last flush before the kill was committed.
    due = [b for b in beats if b.received < kill_time - window]
    lost = [b for b in due if b.at not in kept]
    assert not lost, (
        f"{name}: {len(lost)} heartbeats announced {kill_time - lost[-1].received:.2f}s to "
        f"{kill_time - lost[0].received:.2f}s before the kill are not in the database "
        f"(window {window:.2f}s)"
    )
    # Only a tail is lost: what the database kept of the announced ones is a prefix of them.
    flags = [b.at in kept for b in beats]
    assert flags == sorted(flags, reverse=True), (
        f"{name}: a heartbeat announced {kill_time - beats[flags.index(False)].received:.2f}s "
        "before the kill is missing while a later one is stored"
    )
    # Nothing invented: a stored row between announced heartbeats is one this subscriber
    # missed (coalesced). Rows before the first one are not judged: the hub numbers only the
    # events published once it listens on the bus, and the engine may probe before that.
    first, last = beats[0], beats[-1]
    announced_at = {b.at for b in beats}
    between = [t for t in stored if first.at < t < last.at and t not in announced_at]
    assert len(between) <= unseen, f"{name}: {len(between)} stored heartbeats never announced"
    return len(due)


def test_kill_9_under_probe_load_loses_at_most_the_last_flush(tmp_path: Path, target: str) -> None:
    state = tmp_path / "state"
    state.mkdir()
    config = tmp_path / "dragonopsd.toml"
    write_config(config, target)
    acknowledged: list[str] = []

    with Daemon(state, "--config", str(config)) as first:
        first.wait_listening(PATIENCE)
        up_at = time.time()
        status, page = call(first, "GET", "/api/monitors")
        assert status == 200, page
        ids = [m["id"] for m in page["items"]]
        assert len(ids) == MONITORS, page
        with Announcements(first, ids) as announced, Flushes(first) as flushes:
            for i in range(CLIENTS - 1):
                status, body = call(first, "POST", "/api/clients", {"name": f"Crash Client {i}"})
                assert status == 201, body
                acknowledged.append(body["id"])
            wait_until_due(announced, flushes, up_at)
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
            window = flushes.window()
        assert not announced.problems, announced.problems

    restarted_at = time.time()  # the second daemon probes before it logs its port
    with Daemon(state, "--config", str(config)) as second:
        second.wait_listening(PATIENCE)
        for ident in acknowledged:
            status, body = call(second, "GET", f"/api/clients/{ident}")
            assert status == 200, (ident, body)
        time.sleep(RUN_AFTER_RESTART)
        assert second.stop() == 0, second.log

    check, stored, names = heartbeats(state / "dragonops.db")
    assert check == "ok"
    assert sorted(names.values()) == [f"crash-{i:03d}" for i in range(MONITORS)]
    dead_ms, restarted_ms = dead_at * 1000, restarted_at * 1000
    before = {m: [t for t in stored[m] if t <= dead_ms] for m in names}
    # Commits the daemon reported before the kill survive it, every row of them.
    assert sum(map(len, before.values())) >= stats["historyFlushed"], stats
    demanded = 0
    for ident, name in names.items():
        beats = announced.beats[ident]
        unseen = announced.unseen(ident, beats[0].seq, beats[-1].seq) if beats else 0
        demanded += check_first_run(name, before[ident], beats, unseen, kill_time, window)
        assert [t for t in stored[ident] if t >= restarted_ms], f"{name}: no second-run heartbeat"
        assert not [t for t in stored[ident] if dead_ms < t < restarted_ms], name
    # The kill waited for every monitor to have one; a commit slower than all before it, late
    # in the run, can shrink that, but never to nothing.
    assert demanded >= MONITORS // 2, f"only {demanded} heartbeats old enough to demand"
