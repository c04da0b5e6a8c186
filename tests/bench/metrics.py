"""/metrics with 10,000 monitors: scrape time, and what a scrape does to the event loop.

    python tests/bench/metrics.py [--monitors 10000] [--interval 30] [--scrapes 10]
                                  [--baseline 10] [--warmup S]

The app runs in this process exactly as ``dragonopsd serve`` builds it (build_app, an
AppRunner on 127.0.0.1, uvloop when installed), so a probe task can sit on the daemon's own
loop: it sleeps 5 ms at a time and records how late each wake-up is (loop lag). The monitors
are ``[[monitors]]``-style TCP checks (synced in one batch, first runs spread over the interval)
against a TCP listener in a subprocess, placed round-robin in 200 environments (10 clients x
4 projects x 5 environments), so every series carries real inventory labels.

After ``--warmup`` (default: interval + 10 s, so every monitor has a result), two phases:

- baseline: ``--baseline`` seconds of loop lag and scheduler drift with no scrape;
- scrapes: ``--scrapes`` scrapes each way, one per second, from a scraper process started
  before the baseline (it must not share this process's GIL, and forking this big process
  mid-measurement would stall the loop itself): as Prometheus asks (OpenMetrics, gzip) and
  plain text without compression; a scrape's time is request sent to last byte received.
  Loop lag is counted while a scrape is in flight, drift over the whole phase (from the
  scheduler's histogram buckets, so it is the bucket bound the p99 falls under), and the
  garbage collector's pauses are reported for both phases.

Progress goes to stderr; stdout gets one JSON line (DESIGN.md "Performance": /metrics with
10,000 monitors <= 150 ms, without delaying probes); "ok" compares the median gzip scrape with
the target, the maximum is reported beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import gzip
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web

from dragonopsd.app import build_app
from dragonopsd.appkeys import INVENTORY, METRICS, MONITORS
from dragonopsd.config import from_mapping
from dragonopsd.model.inventory import ClientCreate, EnvironmentCreate, ProjectCreate

HOST = "127.0.0.1"
TARGET_MS = 150
LAG_TICK = 0.005
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
TARGET_CODE = """
import asyncio, sys
async def main():
    async def close(r, w):
        w.close()
    server = await asyncio.start_server(close, "127.0.0.1", 0, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()
asyncio.run(main())
"""


def note(*parts: Any) -> None:
    print("[bench metrics]", *parts, file=sys.stderr, flush=True)


def memory_mb() -> dict[str, float]:
    """This process's resident set now and at its peak (VmRSS, VmHWM), in MB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = round(int(value.split()[0]) / 1024, 1)
    return fields


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


class GcPauses:
    """Garbage collections while measuring: (when it ended, seconds, generation)."""

    def __init__(self) -> None:
        self.pauses: list[tuple[float, float, int]] = []
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        now = time.monotonic()
        if phase == "start":
            self._started = now
        else:
            self.pauses.append((now, now - self._started, info["generation"]))

    def worst(self, windows: list[tuple[float, float]]) -> tuple[float, int]:
        """The longest pause ending in the windows (ms), and how many full collections."""
        inside = [(d, g) for at, d, g in self.pauses if any(a <= at <= b for a, b in windows)]
        return round(max((d for d, _ in inside), default=0) * 1000, 1), sum(
            1 for _, g in inside if g == 2
        )


class LagProbe:
    """Sleeps LAG_TICK at a time on the loop; records (when, how late) per wake-up."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []

    async def run(self) -> None:
        # time.monotonic, not loop.time(): uvloop's clock is cached per loop iteration.
        while True:
            before = time.monotonic()
            await asyncio.sleep(LAG_TICK)
            now = time.monotonic()
            self.samples.append((now, now - before - LAG_TICK))

    def between(self, windows: list[tuple[float, float]]) -> list[float]:
        return [lag for at, lag in self.samples if any(a <= at <= b for a, b in windows)]


def drift_p99(before: list[int], after: list[int], bounds: tuple[float, ...]) -> float | None:
    """Upper bound (s) of the bucket holding the p99 of the starts between two snapshots."""
    counts = [b - a for a, b in zip(before, after, strict=True)]
    total = sum(counts)
    if not total:
        return None
    seen = 0
    for bound, count in zip((*bounds, float("inf")), counts, strict=True):
        seen += count
        if seen >= 0.99 * total:
            return bound
    return float("inf")


async def seed(app: web.Application, n: int, interval: float, port: int) -> None:
    inventory = app[INVENTORY]
    envs: list[str] = []
    for c in range(10):
        client = await inventory.create("clients", ClientCreate(name=f"client-{c:02d}"))
        for p in range(4):
            project = await inventory.create(
                "projects",
                ProjectCreate(client_id=uuid.UUID(client.id), name=f"project-{c:02d}-{p}"),
            )
            for e, env_name in enumerate(("prod", "staging", "qa", "dev", "demo")):
                env = await inventory.create(
                    "environments",
                    EnvironmentCreate(project_id=uuid.UUID(project.id), name=f"{env_name}-{e}"),
                )
                envs.append(env.id)
    tables = [
        {
            "name": f"svc-{i:05d}",
            "kind": "tcp",
            "host": HOST,
            "port": port,
            "interval": interval,
            "timeout": 5,
            "environment_id": envs[i % len(envs)],
        }
        for i in range(n)
    ]
    started = time.perf_counter()
    problems = await app[MONITORS].sync_config(tables)
    assert not problems, problems[:3]
    note(f"{n} monitors in {len(envs)} environments synced in {time.perf_counter() - started:.1f}s")


def scraper(url: str, count: int) -> int:
    """The scraper process: waits for a line on stdin, then scrapes count times each way, one
    per second, printing one JSON line per scrape (time.monotonic is system-wide on Linux)."""
    parts = urllib.parse.urlsplit(url)
    sys.stdin.readline()
    for i in range(count * 2):
        packed = i % 2 == 0
        headers = (
            {"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"}
            if packed
            else {"Accept": "text/plain", "Accept-Encoding": "identity"}
        )
        conn = http.client.HTTPConnection(parts.hostname or HOST, parts.port, timeout=60)
        start = time.monotonic()
        conn.request("GET", parts.path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        end = time.monotonic()
        conn.close()
        assert resp.status == 200, resp.status
        assert (resp.getheader("Content-Encoding") == "gzip") == packed
        text = gzip.decompress(body) if packed else body
        assert text.startswith(b"# HELP"), text[:100]
        line = {"start": start, "end": end, "gzip": packed, "bytes": len(body)}
        print(json.dumps(line), flush=True)
        time.sleep(1.0)
    return 0


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-metrics-"))
    target = subprocess.Popen(
        [sys.executable, "-c", TARGET_CODE], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    runner: web.AppRunner | None = None
    lag_task: asyncio.Task[None] | None = None
    try:
        assert target.stdout is not None
        port = int(target.stdout.readline())
        cfg = from_mapping(
            {"storage": {"state_dir": str(tmp)}, "log": {"level": "warning"}}, env={}
        )
        app = build_app(cfg)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, HOST, 0)
        await site.start()
        url = f"http://{HOST}:{runner.addresses[0][1]}/metrics"
        await seed(app, args.monitors, args.interval, port)
        exporter = app[METRICS]
        scheduler = app[MONITORS].engine.scheduler
        warmup = args.warmup if args.warmup is not None else args.interval + 10
        note(f"warming up {warmup:.0f}s (every monitor gets a result)")
        await asyncio.sleep(warmup)

        scrapes = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--scraper",
            url,
            "--scrapes",
            str(args.scrapes),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )  # started before the baseline: forking this big process stalls the loop for a while
        rss_before = memory_mb()["VmRSS"]
        probe = LagProbe()
        pauses = GcPauses()
        load = os.getloadavg()[0]
        lag_task = asyncio.create_task(probe.run())
        bounds = scheduler.drift_buckets.bounds
        note(f"baseline {args.baseline:.0f}s, no scrapes")
        base_from = time.monotonic()
        drift0 = list(scheduler.drift_buckets.counts)
        await asyncio.sleep(args.baseline)
        drift1 = list(scheduler.drift_buckets.counts)
        base_until = time.monotonic()

        snapshot_ms = []
        for _ in range(5):
            t0 = time.perf_counter()
            rows = exporter.snapshot()
            snapshot_ms.append((time.perf_counter() - t0) * 1000)
        windows: list[tuple[float, float]] = []
        times: dict[bool, list[float]] = {True: [], False: []}
        sizes: dict[bool, int] = {}
        note(f"{args.scrapes} scrapes each way, one per second, from another process")
        assert scrapes.stdin is not None and scrapes.stdout is not None
        scrapes.stdin.write(b"go\n")
        await scrapes.stdin.drain()
        for _ in range(args.scrapes * 2):
            one = json.loads(await scrapes.stdout.readline())
            windows.append((one["start"], one["end"]))
            times[one["gzip"]].append((one["end"] - one["start"]) * 1000)
            sizes[one["gzip"]] = one["bytes"]
        assert await scrapes.wait() == 0
        memory = memory_mb()  # before the in-process scrape below holds a body of its own
        drift2 = list(scheduler.drift_buckets.counts)
        body = (await exporter.scrape("text/plain", gzip=False)).body
        series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
        lag_base = probe.between([(base_from, base_until)])
        lag_scrape = probe.between(windows)
        gz = times[True]
        d_base = drift_p99(drift0, drift1, bounds)
        d_scrape = drift_p99(drift1, drift2, bounds)
        return {
            "bench": "metrics",
            "monitors": len(rows),
            "series": series,
            "cpus": os.cpu_count(),
            "body_bytes": sizes[False],
            "gzip_bytes": sizes[True],
            "scrape_ms_p50": round(statistics.median(gz), 1),
            "scrape_ms_max": round(max(gz), 1),
            "scrape_plain_ms_p50": round(statistics.median(times[False]), 1),
            "scrape_plain_ms_max": round(max(times[False]), 1),
            "snapshot_on_loop_ms_p50": round(statistics.median(snapshot_ms), 2),
            "load_avg_1m": round(load, 2),
            "rss_mb_before_scrapes": rss_before,
            "rss_mb_after": memory["VmRSS"],
            "rss_mb_peak": memory["VmHWM"],
            "gc_max_pause_ms_baseline": pauses.worst([(base_from, base_until)])[0],
            "gc_max_pause_ms_scrape": pauses.worst(windows)[0],
            "gc_full_collections_scrape": pauses.worst(windows)[1],
            "loop_lag_baseline_p99_ms": round(pct(lag_base, 0.99) * 1000, 2),
            "loop_lag_baseline_max_ms": round(max(lag_base, default=0) * 1000, 2),
            "loop_lag_scrape_p99_ms": round(pct(lag_scrape, 0.99) * 1000, 2),
            "loop_lag_scrape_max_ms": round(max(lag_scrape, default=0) * 1000, 2),
            "drift_p99_baseline_le_ms": None if d_base is None else d_base * 1000,
            "drift_p99_scrape_le_ms": None if d_scrape is None else d_scrape * 1000,
            "target_ms": TARGET_MS,
            "ok": statistics.median(gz) <= TARGET_MS,
        }
    finally:
        if lag_task is not None:
            lag_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lag_task
        if runner is not None:
            await runner.cleanup()
        target.terminate()
        target.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--monitors", type=int, default=10_000)
    p.add_argument("--interval", type=float, default=30.0, help="seconds between checks")
    p.add_argument("--scrapes", type=int, default=10, help="scrapes of each kind")
    p.add_argument("--baseline", type=float, default=10.0, help="seconds without scrapes")
    p.add_argument("--warmup", type=float, help="seconds before measuring (interval + 10)")
    p.add_argument("--scraper", metavar="URL", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.scraper:
        return scraper(args.scraper, args.scrapes)
    try:
        import uvloop  # noqa: PLC0415  -- the daemon's loop when installed

        result = uvloop.run(bench(args))
    except ImportError:
        result = asyncio.run(bench(args))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
