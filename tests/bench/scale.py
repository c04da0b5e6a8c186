"""25,000 HTTP monitors at 30 s on one core: start, drift, RSS, /metrics, persistence, restart.

    python tests/bench/scale.py [--monitors 25000] [--window 40] [--warmup 35]
                                [--scrape-every 2] [--concurrency 512] [--no-pin] [--nice N]

The real daemon (``python -m dragonopsd serve``, SQLite) runs pinned to CPU 0 (``taskset``;
the target and this process get the other CPUs), with ``NOTIFY_SOCKET`` pointing at a datagram
socket this bench reads, so "ready" is the daemon's own sd_notify ``READY=1``, timed from just
before the process is spawned; its own modules are compiled to bytecode first, as installed
(``compiled``). The target is nginx on a loopback port (tests/bench/scheduler.py
starts it; the aiohttp fallback when nginx is missing). Phases, all in one run:

1. empty: the daemon on an empty state directory: start to READY (the baseline the restart is
   compared with), its RSS, and a few /metrics scrapes (the scrape baseline). SIGTERM.
2. seed: the monitors go straight into the daemon's SQLite file through ``MonitorStore``
   (``create_many``, one transaction per 5,000), with the daemon stopped.
3. first start with the monitors (start to READY), then ``--warmup`` s so every monitor has run.
4. baseline window (``--window`` s, no scrapes) and scrape window (``--window`` s, one
   OpenMetrics+gzip scrape every ``--scrape-every`` s from a thread here, as Prometheus asks):
   drift p99 of each from ``GET /api/stats/engine`` (each answer covers the last 10,000 starts,
   ~12 s at 833 checks/s; polled every 10 s, a window's figure is the worst poll made at least
   12 s into it), scrape times, daemon CPU and RSS (VmRSS every second; VmHWM).
5. SIGTERM (the daemon drains and flushes); heartbeat rows in the SQLite file are compared with
   the checks the engine started (scheduler.py's ``persisted``: missing rows, per-monitor gaps).
6. restart on that state (monitors, their states and history): start to READY and to the first
   ``/readyz`` 200, the monitor count the engine loaded, RSS after a few seconds. SIGTERM.

Progress goes to stderr; stdout gets one JSON line. Targets (issue 20): p99 start drift <= 250
ms, RSS <= 250 MB, every result persisted, /metrics <= 250 ms without delaying probes (drift
p99 with scrapes <= 250 ms too), restart to READY <= 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from scheduler import (
    DB_FILE,
    HOST,
    INTERVAL_S,
    TIMEOUT_S,
    Proc,
    cpu_seconds,
    engine_stats,
    memory_mb,
    persisted,
    read_token,
    start_target,
    write_config,
)

import dragonopsd
from dragonopsd.model.monitor import MonitorSpec
from dragonopsd.monitoring.service import decode_spec
from dragonopsd.store.db import Database
from dragonopsd.store.monitors import MonitorStore

TARGETS = {"drift_p99_ms": 250, "rss_mb": 250, "scrape_ms": 250, "restart_ready_s": 2.0}
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0
POLL_EVERY_S = 10.0
POLL_COVERS_S = 12.0  # 10,000 starts at 833 checks/s
SEED_CHUNK = 5000


def note(*parts: Any) -> None:
    print("[bench scale]", *parts, file=sys.stderr, flush=True)


class NotifySocket:
    """The service manager's end of sd_notify: records when each datagram arrived."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.settimeout(0.05)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                continue
            self.messages.append((time.monotonic(), data.decode(errors="replace")))

    def wait_ready(self, since: float, proc: Proc, timeout: float) -> float:
        """Monotonic time of the first READY=1 received after since."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, text in self.messages:
                if at >= since and "READY=1" in text.splitlines():
                    return at
            proc.check_alive()
            time.sleep(0.002)
        raise RuntimeError(f"no READY=1 in {timeout}s:\n{proc.log()[-3000:]}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()


def compiled() -> None:
    """The daemon's own modules compiled to bytecode (their __pycache__, which git ignores), as
    an installed daemon has them: pip compiles at install. Without it, a checkout run under
    PYTHONDONTWRITEBYTECODE (or read-only) compiles its ~250 modules again at every start:
    ~0.5 s of a start to READY on this machine kind."""
    package = Path(dragonopsd.__file__).parent
    argv = [sys.executable, "-m", "compileall", "-q", str(package)]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)


class Daemon:
    """One run of ``dragonopsd serve`` on the bench's state directory."""

    def __init__(self, args: argparse.Namespace, tmp: Path, notify: NotifySocket) -> None:
        self.state = tmp / "state"
        self.state.mkdir(exist_ok=True)
        self.config = tmp / "dragonopsd.toml"
        self.log_path = tmp / "daemon.log"
        self.notify = notify
        self.pin = ["taskset", "-c", "0"] if args.pin else []
        self.env = {"NOTIFY_SOCKET": str(notify.path)}
        compiled()
        if args.nice:  # a shared machine: the daemon ahead of the neighbours on its CPU
            self.pin = ["nice", "-n", str(args.nice), *self.pin]

    def start(self) -> tuple[Proc, float, float, float]:
        """Spawn and wait for READY=1 and then the first /readyz 200: (proc, ready_s,
        readyz_s, CPU seconds the daemon used up to READY: on a busy machine the wall time
        also counts waiting for a CPU)."""
        argv = [*self.pin, sys.executable, "-m", "dragonopsd", "serve", "--port", "0"]
        argv += ["--state-dir", str(self.state), "--config", str(self.config)]
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        t0 = time.monotonic()
        proc = Proc("daemon", argv, self.log_path, self.env)
        ready = self.notify.wait_ready(t0, proc, READY_TIMEOUT_S)
        cpu = cpu_seconds(proc.proc.pid)
        proc.wait_listening(5.0, offset)  # logged just before READY=1
        while True:
            try:
                with urllib.request.urlopen(proc.url("/readyz"), timeout=5) as resp:
                    if resp.status == 200:
                        break
            except urllib.error.HTTPError:
                pass
            proc.check_alive()
            time.sleep(0.002)
        return proc, ready - t0, time.monotonic() - t0, cpu

    def stop(self, proc: Proc) -> float:
        t = time.monotonic()
        code = proc.stop(STOP_TIMEOUT_S)
        proc.close()
        if code != 0:
            raise RuntimeError(f"daemon exited {code} on SIGTERM:\n{proc.log()[-3000:]}")
        return time.monotonic() - t


def scrape_once(url: str) -> tuple[float, int]:
    """One scrape as Prometheus asks (OpenMetrics, gzip): (seconds to the last byte, bytes)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or HOST, parts.port, timeout=60)
    start = time.monotonic()
    conn.request(
        "GET", parts.path, headers={"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"}
    )
    resp = conn.getresponse()
    body = resp.read()
    took = time.monotonic() - start
    conn.close()
    if resp.status != 200 or resp.getheader("Content-Encoding") != "gzip":
        raise RuntimeError(f"/metrics -> {resp.status} {resp.getheader('Content-Encoding')}")
    if not gzip.decompress(body).startswith(b"# HELP"):
        raise RuntimeError("/metrics body is not an exposition")
    return took, len(body)


class Scraper:
    """Scrapes /metrics every `every` seconds from a thread until stopped."""

    def __init__(self, url: str, every: float) -> None:
        self.url = url
        self.every = every
        self.times: list[float] = []
        self.bytes = 0
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        nxt = time.monotonic()
        while not self._stop.is_set():
            try:
                took, size = scrape_once(self.url)
            except Exception as exc:  # reported in the JSON line
                self.error = str(exc)[:300]
                return
            self.times.append(took)
            self.bytes = size
            nxt += self.every
            self._stop.wait(max(0.0, nxt - time.monotonic()))

    def __enter__(self) -> Scraper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(120)


def seed(db_path: Path, monitors: int, url: str) -> float:
    """Insert the monitors straight into the stopped daemon's SQLite file; seconds taken."""
    specs: list[MonitorSpec] = [
        decode_spec(
            {
                "name": f"m{i:05d}",
                "kind": "http",
                "url": url,
                "interval": INTERVAL_S,
                "timeout": TIMEOUT_S,
            }
        )
        for i in range(monitors)
    ]

    async def main() -> None:
        db = Database(db_path)
        await db.open()
        try:
            store = MonitorStore(db)
            for start in range(0, len(specs), SEED_CHUNK):
                await store.create_many(specs[start : start + SEED_CHUNK], "api")
        finally:
            await db.close()

    t = time.monotonic()
    asyncio.run(main())
    return time.monotonic() - t


def window(
    proc: Proc, auth: str, seconds: float, rss: list[float]
) -> tuple[float | None, list[dict[str, Any]]]:
    """Poll the engine's stats for `seconds`; the worst p99 of polls that cover only the window."""
    pid = proc.proc.pid
    start = time.monotonic()
    polls: list[dict[str, Any]] = []
    nxt = start + POLL_EVERY_S
    while (now := time.monotonic()) < start + seconds:
        proc.check_alive()
        rss.append(memory_mb(pid)["VmRSS"])
        if now >= nxt:
            stats, _, _ = engine_stats(proc, auth)
            stats["_at"] = now - start
            polls.append(stats)
            note(
                f"  t+{now - start:3.0f}s drift p99 {stats['driftP99Ms']} max "
                f"{stats['driftMaxMs']} ms, in flight {stats['inFlight']}, queue "
                f"{stats['historyQueue']}, rss {rss[-1]:.0f} MB"
            )
            nxt += POLL_EVERY_S
        time.sleep(min(1.0, max(0.0, start + seconds - time.monotonic())))
    inside = [p["driftP99Ms"] or 0 for p in polls if p["_at"] >= POLL_COVERS_S]
    return (max(inside) if inside else None), polls


def ms(values: list[float], q: float | None = None) -> float | None:
    if not values:
        return None
    if q is None:
        return round(statistics.median(values) * 1000, 1)
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)


def bench(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="dragonops-bench-scale-"))
    procs: list[Proc] = []
    notify = NotifySocket(tmp / "notify.sock")
    result: dict[str, Any] = {"bench": "scale", "monitors": args.monitors, "cpus": os.cpu_count()}
    try:
        if args.pin:  # this process and the target (its children) off the daemon's CPU
            os.sched_setaffinity(0, set(range(1, os.cpu_count() or 2)) or {0})
        target, url = start_target("auto", tmp)
        procs.append(target)
        note(f"target {target.name} at {url}")
        d = Daemon(args, tmp, notify)
        write_config(d.config, 0, url, args.concurrency, declare=False)

        # 1. empty
        proc, ready_s, readyz_s, ready_cpu = d.start()
        procs.append(proc)
        auth = f"Bearer {read_token(d.state)}"
        empty_scrapes = [scrape_once(proc.url("/metrics"))[0] for _ in range(5)]
        result["empty"] = {
            "ready_s": round(ready_s, 3),
            "ready_cpu_s": round(ready_cpu, 3),
            "readyz_s": round(readyz_s, 3),
            "rss_mb": round(memory_mb(proc.proc.pid)["VmRSS"], 1),
            "scrape_ms_p50": ms(empty_scrapes),
        }
        note(f"empty: READY in {ready_s:.2f}s")
        procs.remove(proc)
        d.stop(proc)

        # 2. seed
        seed_s = seed(d.state / DB_FILE, args.monitors, url)
        note(f"seeded {args.monitors} monitors in {seed_s:.1f}s")

        # 3. first start
        proc, ready_s, readyz_s, ready_cpu = d.start()
        procs.append(proc)
        ready_at = time.time()
        pid = proc.proc.pid
        result["first_start"] = {
            "ready_s": round(ready_s, 3),
            "ready_cpu_s": round(ready_cpu, 3),
            "readyz_s": round(readyz_s, 3),
        }
        note(f"first start with {args.monitors}: READY in {ready_s:.2f}s; warm-up {args.warmup}s")
        time.sleep(args.warmup)
        proc.check_alive()

        # 4. windows
        rss: list[float] = []
        s0, t0_sent, t0_recv = engine_stats(proc, auth)
        cpu0, wall0 = cpu_seconds(pid), time.monotonic()
        note(f"baseline window {args.window:.0f}s (no scrapes)")
        drift_base, _ = window(proc, auth, args.window, rss)
        s_mid = engine_stats(proc, auth)[0]
        cpu_mid = cpu_seconds(pid)
        note(f"scrape window {args.window:.0f}s (a scrape every {args.scrape_every}s)")
        with Scraper(proc.url("/metrics"), args.scrape_every) as scraper:
            drift_scrape, _ = window(proc, auth, args.window, rss)
        s1, t1_sent, t1_recv = engine_stats(proc, auth)
        cpu1, wall1 = cpu_seconds(pid), time.monotonic()
        mem = memory_mb(pid)
        if scraper.error:
            raise RuntimeError(f"scrape failed: {scraper.error}")

        # 5. persisted
        sigterm_at = time.time()
        procs.remove(proc)
        stop_s = d.stop(proc)
        checks = s1["checksStarted"] - s0["checksStarted"]
        # What the scrapes cost the daemon: the scrape window's CPU beyond what its checks
        # cost at the baseline window's CPU per check, per scrape.
        base_checks = max(1, s_mid["checksStarted"] - s0["checksStarted"])
        per_check = (cpu_mid - cpu0) / base_checks
        scrape_checks = s1["checksStarted"] - s_mid["checksStarted"]
        scrape_cpu = (cpu1 - cpu_mid) - per_check * scrape_checks
        stored = persisted(
            d.state / DB_FILE,
            (t0_sent, t0_recv, t1_sent, t1_recv),
            ready_at,
            sigterm_at,
            args.monitors,
        )
        missing = max(0, checks - stored["in_window_possible"])
        result["steady"] = {
            "monitors": s1["monitors"],
            "checks": checks,
            "checks_per_s": round(checks / (wall1 - wall0), 1),
            "expected_checks_per_s": round(args.monitors / INTERVAL_S, 1),
            "cpu_pct_of_core": round((cpu1 - cpu0) / (wall1 - wall0) * 100, 1),
            # CPU per check (scrapes included): what a check costs whatever else runs here;
            # x checks/s of the target load is the share of a core the daemon needs.
            "cpu_ms_per_check": round((cpu1 - cpu0) * 1000 / max(1, checks), 3),
            "needed_pct_of_core": round(
                (cpu1 - cpu0) / max(1, checks) * args.monitors / INTERVAL_S * 100, 1
            ),
            "drift_p99_ms_baseline": drift_base,
            "drift_p99_ms_scrapes": drift_scrape,
            "drift_p50_ms_last": s1["driftP50Ms"],
            "drift_max_ms_last": s1["driftMaxMs"],
            "skipped": s1["checksSkipped"] - s0["checksSkipped"],
            "rss_mb": round(mem["VmRSS"], 1),
            "rss_peak_mb": round(mem["VmHWM"], 1),
            "rss_window_max_mb": round(max(rss), 1),
            "scrapes": len(scraper.times),
            "scrape_ms_p50": ms(scraper.times),
            "scrape_ms_p90": ms(scraper.times, 0.9),
            "scrape_ms_max": round(max(scraper.times) * 1000, 1),
            "scrape_gzip_bytes": scraper.bytes,
            "scrape_cpu_ms": round(scrape_cpu * 1000 / max(1, len(scraper.times)), 1),
            "cpu_ms_per_check_baseline": round(per_check * 1000, 3),
            "persisted": stored["in_window_possible"],
            "missing": missing,
            "gaps": stored["gaps"],
            "duplicates": stored["duplicates"],
            "down": stored["down"],
            "history_dropped": s1["historyDropped"],
            "rows_total": stored["rows"],
            "sigterm_exit_s": round(stop_s, 2),
        }
        note(f"steady: {json.dumps(result['steady'])}")

        # 6. restart
        proc, ready_s, readyz_s, ready_cpu = d.start()
        procs.append(proc)
        time.sleep(args.after_restart)
        loaded = engine_stats(proc, auth)[0]["monitors"]
        after = memory_mb(proc.proc.pid)
        result["restart"] = {
            "ready_s": round(ready_s, 3),
            "ready_cpu_s": round(ready_cpu, 3),
            "readyz_s": round(readyz_s, 3),
            "ready_vs_empty": round(ready_s / result["empty"]["ready_s"], 2),
            "ready_cpu_vs_empty": round(ready_cpu / result["empty"]["ready_cpu_s"], 2),
            "monitors_loaded": loaded,
            "rss_mb": round(after["VmRSS"], 1),
            "rss_peak_mb": round(after["VmHWM"], 1),
        }
        note(f"restart: READY in {ready_s:.2f}s, {loaded} monitors")
        procs.remove(proc)
        d.stop(proc)

        steady, restart = result["steady"], result["restart"]
        drift = max(steady["drift_p99_ms_baseline"] or 0, steady["drift_p99_ms_scrapes"] or 0)
        result["figures"] = {
            "drift_p99_ms": drift,
            "rss_peak_mb": max(steady["rss_peak_mb"], restart["rss_peak_mb"]),
            "scrape_ms_p50": steady["scrape_ms_p50"],
            "restart_ready_s": restart["ready_s"],
            "all_persisted": missing == 0
            and stored["gaps"] == 0
            and stored["duplicates"] == 0
            and s1["historyDropped"] == 0,
        }
        fig = result["figures"]
        result["targets"] = TARGETS
        result["pass"] = (
            drift <= TARGETS["drift_p99_ms"]
            and fig["rss_peak_mb"] <= TARGETS["rss_mb"]
            and (fig["scrape_ms_p50"] or 0) <= TARGETS["scrape_ms"]
            and fig["restart_ready_s"] <= TARGETS["restart_ready_s"]
            and loaded == args.monitors
            and fig["all_persisted"]
        )
        return result
    finally:
        for p in reversed(procs):
            with contextlib.suppress(Exception):
                p.close()
        notify.close()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--monitors", type=int, default=25_000)
    p.add_argument("--window", type=float, default=40.0, help="seconds per measured window")
    p.add_argument("--warmup", type=float, default=INTERVAL_S + 5.0)
    p.add_argument("--scrape-every", type=float, default=2.0)
    p.add_argument("--concurrency", type=int, default=512, help="[probes] concurrency")
    p.add_argument("--after-restart", type=float, default=3.0, help="seconds run after restart")
    p.add_argument("--no-pin", dest="pin", action="store_false", help="no taskset -c 0")
    p.add_argument("--nice", type=int, default=0, help="run the daemon under nice -n N")
    args = p.parse_args()
    t = time.monotonic()
    try:
        result = bench(args)
    except Exception as exc:  # one JSON line even on failure
        note(f"failed: {exc}")
        print(json.dumps({"bench": "scale", "error": str(exc).splitlines()[0][:300]}), flush=True)
        return 1
    result["wall_s"] = round(time.monotonic() - t, 1)
    print(json.dumps(result), flush=True)
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
