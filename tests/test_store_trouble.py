"""A database that cannot take writes (locked by another process, disk full) is a 503 that
says why, with Retry-After, and /readyz reports it until a write succeeds again.

The real daemon, a real second process holding the SQLite lock, and a real 2 MB tmpfs that
the test fills (mounting it needs root, as CI runs).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon import Daemon
from processes import sqlite_lock_held

# The daemon gives up on a lock after this long (the default is 5 s: shorter keeps the test short).
BUSY_MS = "300"


def call(d: Daemon, method: str, path: str, body: Any = None) -> tuple[int, Any, Any]:
    """(status, decoded body, headers) of one call as the bootstrap admin."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {d.token}"}
    req = urllib.request.Request(d.url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null"), resp.headers
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read()), err.headers


def test_a_database_locked_by_another_process_is_a_503_that_says_so(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {"DRAGONOPS_STORAGE__BUSY_TIMEOUT_MS": BUSY_MS}
    with Daemon(state, env=env) as d:
        d.wait_listening()
        assert call(d, "POST", "/api/clients", {"name": "before"})[0] == 201
        with sqlite_lock_held(state / "dragonops.db"):
            status, problem, headers = call(d, "POST", "/api/clients", {"name": "during"})
            assert status == 503, problem
            assert "database is locked" in problem["detail"], problem
            assert int(headers["Retry-After"]) > 0
            status, ready, _ = call(d, "GET", "/readyz")
            assert status == 503 and ready["checks"]["store"] == "locked", ready
            assert call(d, "GET", "/api/clients")[0] == 200  # reads go on (WAL)
        assert call(d, "POST", "/api/clients", {"name": "after"})[0] == 201
        status, ready, _ = call(d, "GET", "/readyz")
        assert status == 200 and ready["checks"]["store"] == "ok", ready
        names = {c["name"] for c in call(d, "GET", "/api/clients")[1]["items"]}
        assert names == {"before", "after"}
        assert d.stop() == 0
    assert "Traceback" not in d.log and "database is locked" in d.log


@contextlib.contextmanager
def tiny_filesystem(where: Path) -> Iterator[Path]:
    """A 2 MB tmpfs mounted at where (root only: CI runs as root)."""
    if os.geteuid() != 0:
        pytest.fail("the disk-full test mounts a 2 MB tmpfs: run it as root (CI does)")
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(where)],
                   check=True)  # fmt: skip
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def fill(path: Path) -> None:
    """Write to path until the filesystem has no space left (unbuffered, to the last byte)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for size in (65536, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)


def test_a_full_disk_is_a_503_that_says_so_until_space_is_back(tmp_path: Path) -> None:
    # The state directory is the tmpfs; the daemon's log (beside it) is not.
    with tiny_filesystem(tmp_path / "state") as state, Daemon(state) as d:
        d.wait_listening()
        assert call(d, "POST", "/api/clients", {"name": "before"})[0] == 201
        fill(state / "filler")
        body = {"name": "during", "description": "x" * 4000}
        for _ in range(200):  # the WAL may still have room for a few writes
            status, problem, headers = call(d, "POST", "/api/clients", body)
            if status != 201:
                break
        assert status == 503, problem
        assert "disk full" in problem["detail"], problem
        assert int(headers["Retry-After"]) > 0
        status, ready, _ = call(d, "GET", "/readyz")
        assert status == 503 and ready["checks"]["store"] == "full", ready
        assert call(d, "GET", "/api/clients")[0] == 200  # reads go on

        (state / "filler").unlink()
        status, _, _ = call(d, "POST", "/api/clients", {"name": "after"})
        assert status == 201
        status, ready, _ = call(d, "GET", "/readyz")
        assert status == 200 and ready["checks"]["store"] == "ok", ready
        assert d.stop() == 0
    assert "disk full" in d.log and "Traceback" not in d.log, d.log
