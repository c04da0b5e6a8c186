"""Run the real `dragonopsd serve` as a subprocess, the way an operator would."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

_LISTEN = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")


class Daemon:
    """A daemon process with its stderr in a file; stop() or kill() it in a finally."""

    def __init__(self, state_dir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.log_path = state_dir.parent / f"{state_dir.name}-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("wb")
        full_env = {**os.environ, **(env or {})}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dragonopsd",
                "serve",
                "--port",
                "0",
                "--state-dir",
                str(state_dir),
                *args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            env=full_env,
        )
        self.port = 0

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_listening(self, timeout: float = 20.0) -> int:
        """Block (test code, not the daemon) until the log names the port."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = _LISTEN.search(self.log)
            if m:
                self.port = int(m[1])
                return self.port
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}:\n{self.log}")
            time.sleep(0.05)
        raise AssertionError(f"daemon did not start in {timeout}s:\n{self.log}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
