"""This host's figures from /proc and statvfs (Linux), shared by the sampler and the agent.

CPU and network are rates, so the reader keeps the previous counters: the first reading gives
CPU since boot and zero traffic, later ones the change since the previous reading. The reads
are small files, but statvfs can stall on a sick mount, so sample() runs them in a thread.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

from ..model.sample import Sample


class LocalUnavailable(OSError):
    """This host has no /proc to read (not Linux, or /proc not mounted)."""


class LocalReader:
    """Reads CPU, memory, load, disk use of one mount, and traffic of every non-loopback link."""

    def __init__(self, proc: Path = Path("/proc"), mount: str = "/") -> None:
        self._proc = proc
        self._mount = mount
        self._lock = threading.Lock()  # two overlapping reads must not interleave the deltas
        self._cpu: tuple[int, int] | None = None  # (busy, total) jiffies
        self._net: tuple[float, int, int] | None = None  # (monotonic s, rx bytes, tx bytes)

    async def sample(self, server_id: str) -> Sample:
        """A reading for server_id, taken off the event loop."""
        return await asyncio.to_thread(self.read, server_id)

    def read(self, server_id: str) -> Sample:
        """A reading for server_id (blocking: call from a thread, or use sample())."""
        try:
            with self._lock:
                return Sample(
                    server_id=server_id,
                    cpu=round(self._cpu_percent(), 2),
                    memory=round(self._memory_percent(), 2),
                    load=round(self._load(), 2),
                    disk=round(self._disk_percent(), 2),
                    **self._net_rates(),
                    at=time.time(),
                )
        except FileNotFoundError as exc:
            raise LocalUnavailable(f"cannot read this host's figures: {exc}") from None

    def _cpu_percent(self) -> float:
        # cpu  user nice system idle iowait irq softirq steal guest guest_nice
        fields = (self._proc / "stat").read_text().split("\n", 1)[0].split()[1:9]
        ticks = [int(v) for v in fields]
        total = sum(ticks)
        busy = total - ticks[3] - (ticks[4] if len(ticks) > 4 else 0)
        previous, self._cpu = self._cpu, (busy, total)
        if previous is not None and total > previous[1]:
            busy, total = busy - previous[0], total - previous[1]
        return min(max(100.0 * busy / total, 0.0), 100.0) if total > 0 else 0.0

    def _memory_percent(self) -> float:
        info: dict[str, int] = {}
        for line in (self._proc / "meminfo").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("MemTotal", "MemAvailable", "MemFree"):
                info[name] = int(rest.split()[0])
        total = info.get("MemTotal", 0)
        available = info.get("MemAvailable", info.get("MemFree", 0))
        return min(max(100.0 * (total - available) / total, 0.0), 100.0) if total else 0.0

    def _load(self) -> float:
        return float((self._proc / "loadavg").read_text().split()[0])

    def _disk_percent(self) -> float:
        st = os.statvfs(self._mount)
        used = (st.f_blocks - st.f_bfree) * st.f_frsize
        usable = used + st.f_bavail * st.f_frsize  # what df shows: root's reserve excluded
        return 100.0 * used / usable if usable else 0.0

    def _net_rates(self) -> dict[str, float]:
        rx = tx = 0
        for line in (self._proc / "net" / "dev").read_text().splitlines()[2:]:
            name, _, rest = line.partition(":")
            values = rest.split()
            if name.strip() == "lo" or len(values) < 9:
                continue
            rx += int(values[0])
            tx += int(values[8])
        now = time.monotonic()
        previous, self._net = self._net, (now, rx, tx)
        if previous is None or now <= previous[0]:
            return {"net_in": 0.0, "net_out": 0.0}
        elapsed = now - previous[0]
        # A link that went away takes its counters with it: a drop is no traffic, not negative.
        return {
            "net_in": float(round(max(rx - previous[1], 0) / elapsed)),
            "net_out": float(round(max(tx - previous[2], 0) / elapsed)),
        }
