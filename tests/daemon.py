"""Run the real `dragonopsd serve` as a subprocess, the way an operator or systemd would.

stderr goes to a file that the tests poll (a pipe nobody drains could fill up and block the
daemon), and every wait has a deadline.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from signal import SIGTERM
from typing import Any

LISTEN = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")
# Variables that would change what the daemon does if they leaked in from the outer environment.
FOREIGN = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "STATE_DIRECTORY")
_serial = itertools.count()


class Daemon:
    """A daemon process; use it as a context manager (or kill() it) so none outlives a test."""

    def __init__(
        self,
        state_dir: Path,
        *args: str,
        env: dict[str, str] | None = None,
        port: int | None = 0,
    ) -> None:
        """port: the --port flag (0: a free one); None: no flag, the config file's port."""
        self.log_path = state_dir.parent / f"{state_dir.name}-{next(_serial)}.log"
        clean = {
            k: v
            for k, v in os.environ.items()
            if k not in FOREIGN and not k.startswith("DRAGONOPS_")
        }
        argv = [sys.executable, "-m", "dragonopsd", "serve"]
        argv += [] if port is None else ["--port", str(port)]
        argv += ["--state-dir", str(state_dir), *args]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                argv, stdout=subprocess.DEVNULL, stderr=log, env=clean | (env or {})
            )
        self.port = 0
        self.state_dir = state_dir

    @property
    def token(self) -> str:
        """The admin token the daemon wrote on its first start."""
        return (self.state_dir / "admin.token").read_text().strip()

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def died(self) -> AssertionError:
        return AssertionError(f"daemon exited with {self.proc.returncode}:\n{self.log}")

    def wait_log(self, pattern: str, timeout: float = 5.0, start: int = 0) -> re.Match[str]:
        """Poll the stderr file (from offset start) until pattern shows up."""
        compiled = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            match = compiled.search(self.log, start)
            if match:
                return match
            if self.proc.poll() is not None:
                raise self.died()
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not logged within {timeout}s:\n{self.log}")
            time.sleep(0.02)

    def wait_listening(self, timeout: float = 20.0) -> int:
        """Wait for the log line that names the bound port."""
        self.port = int(self.wait_log(LISTEN.pattern, timeout)[1])
        return self.port

    def signal(self, sig: int) -> None:
        assert self.proc.poll() is None, self.died()
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = 15.0) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"daemon still running {timeout}s later:\n{self.log}") from None

    def stop(self, sig: int = SIGTERM, timeout: float = 15.0) -> int:
        """Send sig (SIGTERM: drain) and return the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait_exit(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.kill()
