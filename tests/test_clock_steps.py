"""The real daemon under a wall clock that steps: a day ahead, then back (libfaketime reads the
offset from a file on every call; the monotonic clock is left alone, as a real step leaves it)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from daemon import Daemon
from probe_workers import api

# Where Debian/Ubuntu (and a source build) put the thread-safe variant of the library.
LIBRARIES = (
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/local/lib/faketime/libfaketimeMT.so.1",
)


def stepping_clock(offset_file: Path) -> dict[str, str]:
    """Environment that runs a process on a wall clock offset by what offset_file says."""
    found = [lib for lib in LIBRARIES if Path(lib).exists()]
    assert found, "libfaketime is missing: .ci/run installs it (apt-get install faketime)"
    offset_file.write_text("+0\n")
    return {
        "LD_PRELOAD": found[0],
        "FAKETIME_TIMESTAMP_FILE": str(offset_file),
        "FAKETIME_NO_CACHE": "1",  # re-read the file on every call, so a test can step it
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }


def push(d: Daemon, token: str, status: str) -> None:
    assert api(d, "GET", f"/api/push/{token}?status={status}") == {"ok": True}


def test_a_step_back_leaves_no_heartbeat_ahead_and_no_incident_inverted(tmp_path: Path) -> None:
    offset = tmp_path / "faketime.rc"
    env = stepping_clock(offset)
    state = tmp_path / "state"
    with Daemon(state, env=env) as d:
        d.wait_listening()
        m = api(d, "POST", "/api/monitors", {"name": "job", "kind": "push", "interval": 600})
        token = m["pushToken"]
        for _ in range(3):
            push(d, token, "up")

        offset.write_text("+1d\n")
        for _ in range(3):
            push(d, token, "down")
        [incident] = api(d, "GET", "/api/incidents?status=open")["items"]
        assert incident["openedAt"] > _iso(time.time() + 23 * 3600)  # stamped a day ahead

        offset.write_text("+0\n")
        back = time.time()
        for _ in range(3):
            push(d, token, "up")
        board = api(d, "GET", "/api/monitoring")["items"]
        assert board[0]["status"] == "up"
        assert board[0]["lastCheckAt"] <= _iso(time.time() + 5)
        [closed] = api(d, "GET", f"/api/incidents?monitorId={m['id']}")["items"]
        assert closed["closedAt"] is not None and closed["closedAt"] >= closed["openedAt"]
        assert closed["durationSeconds"] >= 0
        assert d.stop() == 0  # drains the history writer
    done = time.time()

    rows = _heartbeats(state / "dragonops.db")
    # In time order: the six UPs on the present clock, then the three DOWNs of the day ahead.
    # The UPs after the step were not pinned a millisecond after the last DOWN.
    assert [status for _, status in rows] == [1, 1, 1, 1, 1, 1, 0, 0, 0]
    after_step = [at for at, _ in rows[3:6]]
    assert all(back * 1000 - 1000 <= at <= done * 1000 + 5000 for at in after_step), after_step


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts))


def _heartbeats(path: Path) -> list[tuple[int, int]]:
    """(at ms, status) of every stored heartbeat, by time."""
    with sqlite3.connect(path) as conn:
        rows: list[Any] = conn.execute("SELECT at, status FROM history_raw ORDER BY at").fetchall()
    return [(int(at), int(status)) for at, status in rows]
