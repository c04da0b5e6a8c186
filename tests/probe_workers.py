"""Real processes for the remote probing tests: `dragonopsd probe` workers, a flippable HTTP
target on loopback, and small synchronous API helpers."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import redis
from daemon import Daemon

_serial = itertools.count()


class ProbeWorker:
    """A `dragonopsd probe` subprocess with its stderr in a file."""

    def __init__(self, tmp: Path, url: str, prefix: str, location: str, name: str,
                 config: Path | None = None, clock: str | None = None) -> None:  # fmt: skip
        """clock: run under libfaketime with this offset (``+45s``): a host whose clock is off."""
        self.name = name
        self.log_path = tmp / f"worker-{name}-{next(_serial)}.log"
        argv = [sys.executable, "-m", "dragonopsd", "probe", "--location", location,
                "--redis", url, "--prefix", prefix, "--name", name]  # fmt: skip
        if config is not None:
            argv += ["--config", str(config)]
        if clock is not None:
            faketime = shutil.which("faketime")
            assert faketime, "faketime is missing: .ci/run installs it (apt-get install faketime)"
            argv = [faketime, "-f", clock, *argv]
        with self.log_path.open("wb") as log:
            # A group of its own: faketime forks the worker and does not pass signals on, so
            # stopping means signalling the whole group.
            self.proc = subprocess.Popen(
                argv, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True
            )

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def stop(self) -> int:
        self._signal_group(signal.SIGTERM)
        return self.proc.wait(20)

    def kill(self) -> None:
        self._signal_group(signal.SIGKILL)
        self.proc.wait(10)


class StreamTail(threading.Thread):
    """Every entry XADDed to a stream, read as it arrives (XREAD, outside any group), so a
    test keeps what the consumer deletes from Redis once it has stored it."""

    def __init__(self, url: str, stream: str) -> None:
        super().__init__(daemon=True)
        self._redis = redis.Redis.from_url(url)
        self._stream = stream
        self._done = threading.Event()
        self.entries: list[tuple[bytes, dict[bytes, bytes]]] = []
        self.start()

    def run(self) -> None:
        last: Any = "0-0"
        while not self._done.is_set():
            reply: Any = self._redis.xread({self._stream: last}, count=1000, block=100)
            for _, items in reply or []:
                for entry_id, fields in items:
                    self.entries.append((entry_id, fields))
                    last = entry_id

    def stop(self) -> None:
        self._done.set()
        self.join(5)
        self._redis.close()


class Target:
    """A loopback HTTP server answering 200, or 500 once flipped; optionally slow."""

    def __init__(self, delay: float = 0.0) -> None:
        self.status = 200
        self.delay = delay
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                if outer.delay:
                    time.sleep(outer.delay)  # its own thread: the test's loop is not involved
                self.send_response(outer.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def api(d: Daemon, method: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {d.token}"}
    req = urllib.request.Request(d.url + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll check() until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(0.1)


CORE = "core"  # [cluster] node: the core reads its workers' results on <prefix>:results:core


def write_config(path: Path, redis_url: str, prefix: str, extra: str = "") -> Path:
    path.write_text(
        f'[redis]\nurl = "{redis_url}"\nprefix = "{prefix}"\nclaim_idle = 2.0\n\n'
        f'[cluster]\nnode = "{CORE}"\n\n'
        f"[history]\nflush_interval = 0.2\n\n{extra}"
    )
    return path
