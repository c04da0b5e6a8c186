"""Every process a test starts is gone when the test ends, pass or fail.

Each process inherits OWNER from os.environ: "<run>-<n>" while test n runs, "<run>-session"
around tests (module and session fixtures). Scanning /proc for the variable finds a test's
processes even when they were orphaned (faketime's child, a daemon's helpers), which a walk of
pytest's own children would miss.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

OWNER = "PYTEST_DRAGONOPS_OWNER"
RUN = uuid.uuid4().hex[:12]


def owners() -> dict[int, str]:
    """pid -> owner tag for every live process carrying one of this run's tags."""
    found: dict[int, str] = {}
    needle = f"{OWNER}={RUN}-".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or not ours to read
            continue
        for item in environ.split(b"\0"):
            if item.startswith(needle):
                found[int(entry.name)] = item.split(b"=", 1)[1].decode()
                break
    return found


def reap(tag: str | None = None, grace: float = 3.0) -> list[str]:
    """Kill the processes carrying tag (any of this run's when None) that are still there after
    a grace period (a stopped nginx's workers take a moment); describe those that were."""
    deadline = time.monotonic() + grace
    while True:
        left = {p: t for p, t in owners().items() if tag is None or t == tag}
        if not left:
            return []
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    described = [f"{pid}: {_cmdline(pid)}" for pid in left]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            left = {p: t for p, t in owners().items() if p in left}
            if not left:
                return described
            time.sleep(0.05)
    return described


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:200]


_HOLD_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("holding", flush=True)
sys.stdin.read()  # until the test closes our stdin
conn.execute("ROLLBACK")
"""


@contextlib.contextmanager
def sqlite_lock_held(database: Path) -> Iterator[None]:
    """Another process holds database's write lock (BEGIN EXCLUSIVE) while the block runs: what
    a second writer, a backup tool or a stray sqlite3 shell does to the daemon."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(database)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(10)
