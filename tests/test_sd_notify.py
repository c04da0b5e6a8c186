"""sd_notify against the real daemon: a real datagram socket plays the service manager.

The daemon runs as `python -m dragonopsd serve` with NOTIFY_SOCKET pointing at a socket bound
here, exactly as systemd would start it; stderr goes to a file that the tests poll (a pipe
nobody drains could fill up and block the daemon). Every wait has a deadline.
"""

from __future__ import annotations

import json
import signal
import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from daemon import Daemon

WATCHDOG_USEC = 400_000  # the daemon pings every WATCHDOG_USEC / 2 = 0.2 s
# Deadlines, not speed checks (startup time is measured in tests/bench/): CI runs on a shared
# 2-CPU machine where a start took over 8 s under a load of 10.
START_TIMEOUT = 30.0
STEP_TIMEOUT = 10.0

Message = dict[str, str]


def _parse(datagram: bytes) -> Message:
    fields = datagram.decode().split("\n")
    return dict(f.partition("=")[::2] for f in fields if f)


class NotifiedDaemon(Daemon):
    """The daemon plus (optionally) the notify socket it talks to, as systemd would start it."""

    def __init__(
        self, tmp_path: Path, *args: str, notify: tuple[socket.socket, str] | None = None
    ) -> None:
        env = {"NOTIFY_SOCKET": notify[1], "WATCHDOG_USEC": str(WATCHDOG_USEC)} if notify else {}
        super().__init__(tmp_path / "state", *args, env=env)
        self.sock = notify[0] if notify else None
        self.seen: list[Message] = []

    def next_message(
        self, timeout: float = STEP_TIMEOUT, *, skip_watchdog: bool = False
    ) -> Message:
        """The next notification (optionally ignoring WATCHDOG=1 pings), within timeout seconds."""
        assert self.sock is not None
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            self.sock.settimeout(min(0.1, remaining))
            try:
                datagram = self.sock.recv(4096)
            except TimeoutError:
                if self.proc.poll() is not None:  # queued datagrams were read first
                    raise self.died() from None
                continue
            message = _parse(datagram)
            self.seen.append(message)
            if skip_watchdog and message == {"WATCHDOG": "1"}:
                continue
            return message
        raise AssertionError(f"no notification within {timeout}s; so far {self.seen}\n{self.log}")


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., NotifiedDaemon]]:
    """Start daemons; whatever happens in the test, none outlives it."""
    daemons: list[NotifiedDaemon] = []

    def start(*args: str, notify: tuple[socket.socket, str] | None = None) -> NotifiedDaemon:
        daemon = NotifiedDaemon(tmp_path, *args, notify=notify)
        daemons.append(daemon)
        return daemon

    try:
        yield start
    finally:
        for daemon in daemons:
            daemon.kill()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket bound to a path, as systemd's /run/systemd/notify."""
    path = tmp_path / "notify"
    assert len(str(path)) < 108, f"{path} is too long for an AF_UNIX address"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind(str(path))
        yield sock, str(path)
    finally:
        sock.close()


@pytest.fixture
def abstract_notify_socket() -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket in the abstract namespace: NOTIFY_SOCKET=@name, bound as NUL+name."""
    name = f"dragonopsd-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind("\0" + name)
        yield sock, "@" + name
    finally:
        sock.close()


def _monotonic_usec() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def _lifecycle(daemon: NotifiedDaemon) -> None:
    """READY, watchdog pings, reload, stop: what systemd sees over one daemon's life."""
    ready = daemon.next_message(START_TIMEOUT)
    ready_at = time.monotonic()
    assert ready.get("READY") == "1", ready
    assert ready.get("STATUS", "").startswith("listening on http://127.0.0.1:"), ready
    assert ready.get("MAINPID") == str(daemon.proc.pid), ready

    # Pings come every WATCHDOG_USEC/2: three of them span at least two intervals (0.4 s; a
    # wrong divisor would flood them in milliseconds). Nothing else is sent in between.
    for _ in range(3):
        assert daemon.next_message() == {"WATCHDOG": "1"}, daemon.seen
    assert time.monotonic() - ready_at >= 0.25, daemon.seen

    before = _monotonic_usec()
    daemon.signal(signal.SIGHUP)
    reloading = daemon.next_message(skip_watchdog=True)
    after = _monotonic_usec()
    assert reloading.get("RELOADING") == "1", reloading
    # CLOCK_MONOTONIC is one clock for the whole host, so the stamp falls inside our window.
    assert before <= int(reloading.get("MONOTONIC_USEC", "-1")) <= after, (before, reloading)
    again = daemon.next_message(skip_watchdog=True)
    assert again.get("READY") == "1", again
    assert again.get("STATUS") == ready["STATUS"], again

    daemon.signal(signal.SIGTERM)
    stopping = daemon.next_message(skip_watchdog=True)
    assert stopping.get("STOPPING") == "1", stopping
    assert daemon.wait_exit(5.0) == 0, daemon.log
    # The watchdog is cancelled together with STOPPING=1: no ping may follow it.
    assert daemon.sock is not None
    daemon.sock.setblocking(False)
    try:
        while True:
            daemon.seen.append(_parse(daemon.sock.recv(4096)))
    except BlockingIOError:
        pass
    last_stop = max(i for i, m in enumerate(daemon.seen) if m.get("STOPPING") == "1")
    assert all("WATCHDOG" not in m for m in daemon.seen[last_stop:]), daemon.seen


def test_notify_socket_path(
    spawn: Callable[..., NotifiedDaemon], notify_socket: tuple[socket.socket, str]
) -> None:
    _lifecycle(spawn(notify=notify_socket))


def test_notify_socket_abstract_namespace(
    spawn: Callable[..., NotifiedDaemon], abstract_notify_socket: tuple[socket.socket, str]
) -> None:
    _lifecycle(spawn(notify=abstract_notify_socket))


def _healthz(port: int) -> tuple[int, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
        return resp.status, json.loads(resp.read())


def test_sighup_applies_the_new_log_level(
    spawn: Callable[..., NotifiedDaemon], tmp_path: Path
) -> None:
    config = tmp_path / "dragonops.toml"
    config.write_text('[log]\nlevel = "info"\n', encoding="utf-8")
    daemon = spawn("--config", str(config))
    daemon.wait_listening(START_TIMEOUT)
    mark = len(daemon.log)

    config.write_text('[log]\nlevel = "debug"\n', encoding="utf-8")
    daemon.signal(signal.SIGHUP)
    line = daemon.wait_log(r"[^\n]*reloaded[^\n]*", start=mark)[0]
    assert str(config) in line and "log level debug" in line, line
    assert "reload failed" not in daemon.log

    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit(5.0) == 0, daemon.log


def test_sighup_with_a_broken_config_keeps_running(
    spawn: Callable[..., NotifiedDaemon], tmp_path: Path
) -> None:
    config = tmp_path / "dragonops.toml"
    config.write_text("", encoding="utf-8")
    daemon = spawn("--config", str(config))
    port = daemon.wait_listening(START_TIMEOUT)
    mark = len(daemon.log)

    config.write_text('[log]\nlevel = "loud"\n', encoding="utf-8")
    daemon.signal(signal.SIGHUP)
    line = daemon.wait_log(r"[^\n]*reload failed[^\n]*", start=mark)[0]
    assert "log.level" in line, line  # the operator is told which key is wrong
    assert daemon.proc.poll() is None, daemon.log
    assert _healthz(port) == (200, {"status": "ok"})

    # A file that is not TOML at all is refused the same way.
    mark = len(daemon.log)
    config.write_text("[log\n", encoding="utf-8")
    daemon.signal(signal.SIGHUP)
    line = daemon.wait_log(r"[^\n]*reload failed[^\n]*", start=mark)[0]
    assert "TOML syntax" in line, line
    assert _healthz(port) == (200, {"status": "ok"})

    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit(5.0) == 0, daemon.log


def _scrape_status(port: int, token: str) -> int:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_sighup_rotates_the_metrics_token(
    spawn: Callable[..., NotifiedDaemon], tmp_path: Path
) -> None:
    """Prometheus's credential can be changed without a restart: the old one stops working at
    the reload, the new one works, and neither value reaches the log."""
    config = tmp_path / "dragonops.toml"
    config.write_text('[metrics]\ntoken = "scrape-old-1234"\n', encoding="utf-8")
    daemon = spawn("--config", str(config))
    port = daemon.wait_listening(START_TIMEOUT)
    assert _scrape_status(port, "scrape-old-1234") == 200
    assert _scrape_status(port, "scrape-new-5678") == 401
    mark = len(daemon.log)

    config.write_text('[metrics]\ntoken = "scrape-new-5678"\nlisten = "127.0.0.1:1"\n', "utf-8")
    daemon.signal(signal.SIGHUP)
    daemon.wait_log(r"[^\n]*\[metrics\] token changed[^\n]*", start=mark)
    assert _scrape_status(port, "scrape-new-5678") == 200
    assert _scrape_status(port, "scrape-old-1234") == 401
    # Not silently: the reload names the key it could not apply (a later line of the same log).
    daemon.wait_log(r"[^\n]*metrics\.listen needs a restart[^\n]*", start=mark)
    assert _healthz(port) == (200, {"status": "ok"})

    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit(5.0) == 0, daemon.log
    assert "scrape-old-1234" not in daemon.log and "scrape-new-5678" not in daemon.log
