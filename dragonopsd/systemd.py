"""sd_notify spoken directly on $NOTIFY_SOCKET (no libsystemd): readiness, status, watchdog."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger("dragonopsd.systemd")


class Notifier:
    """Sends datagrams to the service manager; a no-op when not run under systemd."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        path = env.get("NOTIFY_SOCKET", "")
        # '@' names a socket in the abstract namespace, spelt with a leading NUL.
        self._address = "\0" + path[1:] if path.startswith("@") else path
        self._sock: socket.socket | None = None
        if self._address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.setblocking(False)
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        wanted = usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid()))
        self.watchdog_interval: float | None = int(usec) / 2_000_000 if wanted else None
        self._status: str | None = None  # the STATUS of the last READY=1, for reloads

    @property
    def enabled(self) -> bool:
        """True when a service manager is listening."""
        return self._sock is not None

    def notify(self, *fields: str) -> bool:
        """Send ``KEY=value`` lines as one datagram; never blocks, never raises."""
        if self._sock is None:
            return False
        try:
            self._sock.sendto("\n".join(fields).encode(), self._address)
        except OSError as exc:
            log.warning("sd_notify failed: %s", exc)
            return False
        return True

    def ready(self, status: str) -> bool:
        """READY=1: migrations are applied and listeners are bound."""
        self._status = status
        return self.notify("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def reloaded(self) -> bool:
        """READY=1 again after a reload, with the last READY's status; nothing before the first
        READY (a reload during start must not announce a daemon that is not listening yet)."""
        return self._status is not None and self.ready(self._status)

    def status(self, text: str) -> bool:
        """STATUS=: a one-line state shown by systemctl status."""
        return self.notify(f"STATUS={text}")

    def reloading(self) -> bool:
        """RELOADING=1 with the monotonic timestamp systemd 253+ expects; nothing before the
        first READY=1 (systemd reads RELOADING only from a started service)."""
        if self._status is None:
            return False
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self) -> bool:
        """STOPPING=1: draining has begun."""
        return self.notify("STOPPING=1", "STATUS=draining")

    async def watchdog(self) -> None:
        """Ping WATCHDOG=1 at half of $WATCHDOG_USEC until cancelled (drift-corrected)."""
        interval = self.watchdog_interval
        if interval is None:
            return
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            self.notify("WATCHDOG=1")
            due += interval
            await asyncio.sleep(max(0.0, due - loop.time()))

    def close(self) -> None:
        """Release the socket."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
