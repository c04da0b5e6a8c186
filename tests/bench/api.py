"""REST throughput: the real daemon against a bare aiohttp+msgspec handler, same run, same client.

    python tests/bench/api.py [--duration S] [--connections N] [--rounds R]
                              [--tool auto|wrk|aiohttp]

Starts ``dragonopsd serve --demo`` and a bare baseline server (this file with
``--baseline-server 0``) as single-process subprocesses on 127.0.0.1, reads the admin token the
daemon mints on first start (``<state-dir>/admin.token``), seeds 50 projects with 2
environments each through the HTTP API, then loads each URL in turn with the same client (``wrk``
when it is on PATH, else an aiohttp load generator in its own process: this file with
``--loadgen URL``, the header in ``BENCH_API_AUTHORIZATION``). Every request carries
``Authorization: Bearer <token>``: the daemon checks it on /api routes (/healthz is public and
ignores it), and the baseline, which checks nothing, gets it too so both parse the same request.
Every measurement is preceded by a short warm-up; rounds alternate baseline
and daemon so drift on a shared machine hits both alike. Progress goes to stderr; the last line
on stdout is one JSON object (DESIGN.md, "Performance": cached dashboard >= 0.6 x the baseline,
judged on the median req/s of each side over the rounds; the best-round ratio is reported too).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
TARGET_DASHBOARD_RATIO = 0.6
_LISTEN = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")
START_TIMEOUT_S = 30.0
SEED_PROJECTS = 50
SEED_CLIENTS = 5
SEED_SERVERS = 10
WARMUP_S = 1.0
TOKEN_FILE = "admin.token"  # the daemon's default [auth] admin_token_file, under --state-dir
AUTH_ENV = "BENCH_API_AUTHORIZATION"  # the header value, for the --loadgen subprocess
TARGETS = ("baseline", "dashboard", "projects_include", "client_get", "healthz")
PATHS = {
    "baseline": "/api/stats/dashboard",
    "dashboard": "/api/stats/dashboard",
    "projects_include": "/api/projects?include=environments&limit=50",
    "client_get": "/api/clients/{client_id}",  # one row by id: not cached, a reader-pool query
    "healthz": "/healthz",
}


def note(*parts: Any) -> None:
    print("[bench api]", *parts, file=sys.stderr, flush=True)


def _run_loop(coro: Any) -> Any:
    """Same event loop choice as dragonopsd.cli: uvloop when importable."""
    try:
        import uvloop  # noqa: PLC0415

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


# --------------------------------------------------------------------------- baseline server


def baseline_server(port: int) -> int:
    """A bare aiohttp app with one msgspec handler; logs its port like the daemon does."""
    import msgspec  # noqa: PLC0415
    from aiohttp import web  # noqa: PLC0415

    class Stats(msgspec.Struct, rename="camel", kw_only=True):
        clients: int
        projects: int
        environments: int
        servers: int
        servers_by_status: dict[str, int]

    encode = msgspec.json.Encoder().encode
    stats = Stats(
        clients=8,
        projects=54,
        environments=108,
        servers=22,
        servers_by_status={"running": 22},
    )

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=encode(stats), content_type="application/json")

    async def main() -> int:
        app = web.Application()
        app.router.add_get(PATHS["baseline"], handler)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, HOST, port)
        await site.start()
        bound = ", ".join(f"http://{h}:{p}" for h, p, *_ in runner.addresses)
        print(f"baseline listening on {bound}", file=sys.stderr, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()
        return 0

    return int(_run_loop(main()))


# --------------------------------------------------------------------------- aiohttp load generator


def loadgen(url: str, duration: float, connections: int) -> int:
    """N keep-alive connections hammering url for duration s; prints one JSON result line."""
    import aiohttp  # noqa: PLC0415

    auth = os.environ.get(AUTH_ENV)
    headers = {"Authorization": auth} if auth else {}

    async def main() -> dict[str, Any]:
        ok = 0
        errors = 0
        bad: dict[str, int] = {}
        connector = aiohttp.TCPConnector(limit=connections, force_close=False)
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            deadline = time.monotonic() + duration

            async def worker() -> None:
                nonlocal ok, errors
                while time.monotonic() < deadline:
                    try:
                        async with session.get(url, headers=headers) as resp:
                            await resp.read()
                            if resp.status == 200:
                                ok += 1
                            else:
                                bad[str(resp.status)] = bad.get(str(resp.status), 0) + 1
                    except (TimeoutError, aiohttp.ClientError):
                        errors += 1
                        if errors > 1000:
                            return

            start = time.monotonic()
            await asyncio.gather(*(worker() for _ in range(connections)))
            elapsed = time.monotonic() - start
        return {"ok": ok, "bad": bad, "errors": errors, "elapsed": elapsed}

    result = _run_loop(main())
    print(json.dumps(result), flush=True)
    return 0


# --------------------------------------------------------------------------- orchestration


class Proc:
    """A server subprocess with stderr in a file; close() in a finally."""

    def __init__(self, name: str, argv: list[str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._log
        )
        self.port = 0

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_listening(self, timeout: float = START_TIMEOUT_S) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = _LISTEN.search(self.log())
            if m:
                self.port = int(m[1])
                return self.port
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited {self.proc.returncode}:\n{self.log()[-3000:]}"
                )
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not log its port in {timeout}s:\n{self.log()[-3000:]}")

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(15)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
        finally:
            self._log.close()


def read_token(state: Path, daemon: Proc, timeout: float = START_TIMEOUT_S) -> str:
    """The admin token the daemon wrote on first start (before it logged its port)."""
    path = state / TOKEN_FILE
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError):
            token = path.read_text().strip()
            if token:
                return token
        if daemon.proc.poll() is not None:
            raise RuntimeError(f"daemon exited {daemon.proc.returncode}:\n{daemon.log()[-3000:]}")
        time.sleep(0.05)
    raise RuntimeError(f"daemon wrote no admin token to {path} in {timeout}s")


def http(method: str, url: str, auth: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """One request with the stdlib (seeding and pre-flight checks only); auth: header value."""
    assert url.startswith(f"http://{HOST}:"), url
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if auth:
        req.add_header("Authorization", auth)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def seed(daemon: Proc, auth: str) -> tuple[dict[str, int], list[str]]:
    """Clients, 50 projects with 2 environments each, and a few servers, via the API.

    Returns the counts and the seeded clients' ids.
    """

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        status, data = http("POST", daemon.url(path), auth, body)
        if status != 201:
            raise RuntimeError(f"POST {path} -> {status}: {data}")
        return dict(data)

    clients = [
        post("/api/clients", {"name": f"Bench Client {i:02d}"})["id"] for i in range(SEED_CLIENTS)
    ]
    envs: list[str] = []
    for i in range(SEED_PROJECTS):
        project = post(
            "/api/projects",
            {
                "clientId": clients[i % SEED_CLIENTS],
                "name": f"Bench Project {i:02d}",
                "technology": ["Python", "PostgreSQL"],
            },
        )
        for env in ("Production", "Staging"):
            envs.append(
                post(
                    "/api/environments",
                    {
                        "projectId": project["id"],
                        "name": env,
                        "url": f"https://p{i:02d}-{env.lower()}.bench.example",
                    },
                )["id"]
            )
    for i in range(SEED_SERVERS):
        post(
            "/api/servers",
            {
                "environmentId": envs[i],
                "name": f"bench-web-{i:02d}",
                "privateIp": f"10.9.0.{i + 1}",
            },
        )
    counts = {"clients": SEED_CLIENTS, "projects": SEED_PROJECTS, "environments": len(envs)}
    return counts, clients


def require_auth(url: str) -> None:
    """The daemon refuses the URL without a token, so the bench measures the checked path."""
    status, _ = http("GET", url, "")
    if status != 401:
        raise RuntimeError(f"{url} without a token -> {status}, expected 401")


def preflight(name: str, url: str, auth: str, client_id: str = "") -> int:
    """The URL answers 200 with the expected JSON; returns the body size."""
    req = urllib.request.Request(url, headers={"Authorization": auth})
    with urllib.request.urlopen(req, timeout=10) as resp:
        raw = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{name}: {url} -> {resp.status}")
    data = json.loads(raw)
    if name in ("baseline", "dashboard"):
        assert {"clients", "projects", "environments", "servers", "serversByStatus"} <= set(data)
    elif name == "projects_include":
        items = data["items"]
        assert len(items) == 50, len(items)
        assert all(isinstance(p.get("environments"), list) for p in items)
    elif name == "client_get":
        assert data["id"] == client_id and data["name"] == "Bench Client 00", data
    elif name == "healthz":
        assert data == {"status": "ok"}, data
    return len(raw)


_WRK_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_WRK_TOTAL = re.compile(r"(\d+) requests in ([\d.]+)(us|ms|s|m)")
_WRK_NON2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_WRK_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def run_wrk(url: str, duration: float, connections: int, auth: str) -> dict[str, Any]:
    # One wrk thread: the server gets one core, the client the other (2-core machine).
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "5s",
        "-H",
        f"Authorization: {auth}",
        url,
    ]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr or out.stdout}")
    text = out.stdout
    rps = _WRK_RPS.search(text)
    total = _WRK_TOTAL.search(text)
    if not rps or not total:
        raise RuntimeError(f"cannot parse wrk output:\n{text}")
    non2xx = _WRK_NON2XX.search(text)
    errs = _WRK_ERRORS.search(text)
    return {
        "rps": float(rps[1]),
        "requests": int(total[1]),
        "bad": int(non2xx[1]) if non2xx else 0,
        "errors": sum(int(x) for x in errs.groups()) if errs else 0,
    }


def run_aiohttp(url: str, duration: float, connections: int, auth: str) -> dict[str, Any]:
    argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--loadgen",
        url,
        "--duration",
        str(duration),
        "--connections",
        str(connections),
    ]
    env = {**os.environ, AUTH_ENV: auth}
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"load generator failed ({out.returncode}): {out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {
        "rps": result["ok"] / result["elapsed"],
        "requests": result["ok"],
        "bad": sum(result["bad"].values()),
        "errors": result["errors"],
    }


def cpu_seconds(pid: int) -> float | None:
    """User+system CPU of a process from /proc (None where there is no /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # after "(comm)", which may contain spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    load: Callable[[str, float, int, str], dict[str, Any]],
    name: str,
    url: str,
    auth: str,
    pid: int,
    duration: float,
    connections: int,
) -> tuple[float, float | None]:
    """(req/s, server CPU microseconds per request) after a warm-up."""
    load(url, WARMUP_S, connections, auth)
    cpu0 = cpu_seconds(pid)
    r = load(url, duration, connections, auth)
    cpu1 = cpu_seconds(pid)
    if r["bad"] or r["errors"]:
        raise RuntimeError(f"{name}: {r['bad']} non-200 responses, {r['errors']} socket errors")
    if r["requests"] == 0:
        raise RuntimeError(f"{name}: no completed requests")
    cpu_us = None
    if cpu0 is not None and cpu1 is not None:
        cpu_us = (cpu1 - cpu0) / r["requests"] * 1e6
    note(
        f"{name:<17} {r['rps']:>10.0f} req/s  ({r['requests']} requests"
        + (f", server CPU {cpu_us:.1f} us/request)" if cpu_us is not None else ")")
    )
    return float(r["rps"]), cpu_us


def bench(args: argparse.Namespace) -> dict[str, Any]:
    tool = args.tool
    if tool == "auto":
        tool = "wrk" if shutil.which("wrk") else "aiohttp"
    load = run_wrk if tool == "wrk" else run_aiohttp
    tmp = Path(tempfile.mkdtemp(prefix="dragonops-bench-api-"))
    procs: list[Proc] = []
    try:
        state = tmp / "state"
        state.mkdir()
        daemon = Proc(
            "daemon",
            [
                sys.executable,
                "-m",
                "dragonopsd",
                "serve",
                "--port",
                "0",
                "--state-dir",
                str(state),
                "--demo",
            ],
            tmp / "daemon.log",
        )
        procs.append(daemon)
        baseline = Proc(
            "baseline",
            [sys.executable, str(Path(__file__).resolve()), "--baseline-server", "0"],
            tmp / "baseline.log",
        )
        procs.append(baseline)
        daemon.wait_listening()
        baseline.wait_listening()
        auth = f"Bearer {read_token(state, daemon)}"
        note(
            f"daemon pid {daemon.proc.pid} on {daemon.port}, "
            f"baseline pid {baseline.proc.pid} on {baseline.port}, tool {tool}"
        )
        seeded, client_ids = seed(daemon, auth)
        note("seeded", seeded)

        urls = {
            name: (baseline if name == "baseline" else daemon).url(
                path.format(client_id=client_ids[0])
            )
            for name, path in PATHS.items()
        }
        require_auth(urls["dashboard"])
        require_auth(urls["client_get"])
        sizes = {name: preflight(name, url, auth, client_ids[0]) for name, url in urls.items()}
        note("body sizes", sizes)

        samples: dict[str, list[float]] = {name: [] for name in TARGETS}
        cpu: dict[str, list[float]] = {name: [] for name in TARGETS}
        for rnd in range(args.rounds):
            # Baseline and dashboard stay adjacent; every other round runs reversed so neither
            # always goes first (baseline, daemon, ..., daemon, baseline, ...).
            order = list(TARGETS)
            if rnd % 2:
                order.reverse()
            for name in order:
                pid = (baseline if name == "baseline" else daemon).proc.pid
                rps, cpu_us = measure(
                    load, name, urls[name], auth, pid, args.duration, args.connections
                )
                samples[name].append(rps)
                if cpu_us is not None:
                    cpu[name].append(cpu_us)
            for p in procs:
                if p.proc.poll() is not None:
                    raise RuntimeError(f"{p.name} died:\n{p.log()[-3000:]}")
        # Health after the load: the dashboard must still be the cached body.
        preflight("dashboard", urls["dashboard"], auth)

        best = {name: max(v) for name, v in samples.items()}
        median = {name: statistics.median(v) for name, v in samples.items()}
        ratio = best["dashboard"] / best["baseline"]
        # Judged on the medians: one lucky (or unlucky) round of either side cannot decide it.
        ratio_median = median["dashboard"] / median["baseline"]
        paired = [d / b for d, b in zip(samples["dashboard"], samples["baseline"], strict=True)]
        result: dict[str, Any] = {
            "bench": "api",
            "tool": tool,
            "auth": "bearer",  # every request carries Authorization: Bearer <admin token>
            "baseline_rps": round(best["baseline"], 1),
            "dashboard_rps": round(best["dashboard"], 1),
            "dashboard_ratio": round(ratio, 3),
            "dashboard_ratio_median": round(ratio_median, 3),
            "dashboard_ratio_paired": [round(x, 3) for x in paired],
            "projects_include_rps": round(best["projects_include"], 1),
            "client_get_rps": round(best["client_get"], 1),
            "healthz_rps": round(best["healthz"], 1),
            "healthz_ratio": round(best["healthz"] / best["baseline"], 3),
            # Less sensitive to neighbours than req/s: server CPU per request, median.
            "cpu_us_per_req": {k: round(statistics.median(v), 1) for k, v in cpu.items() if v},
            "dashboard_cpu_ratio": (
                round(statistics.median(cpu["baseline"]) / statistics.median(cpu["dashboard"]), 3)
                if cpu["baseline"] and cpu["dashboard"]
                else None
            ),
            "target_dashboard_ratio": TARGET_DASHBOARD_RATIO,
            "pass": ratio_median >= TARGET_DASHBOARD_RATIO,
            "duration_s": args.duration,
            "connections": args.connections,
            "rounds": args.rounds,
            "samples": {k: [round(x, 1) for x in v] for k, v in samples.items()},
        }
        if tool == "aiohttp":
            result["note"] = (
                "the Python load generator saturates before the servers do, which pulls req/s "
                "ratios toward 1; dashboard_cpu_ratio is the fairer figure"
            )
        return result
    finally:
        for p in reversed(procs):
            with contextlib.suppress(Exception):
                p.close()
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    p.add_argument("--connections", type=int, default=64, help="concurrent keep-alive conns")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (1-10)")
    p.add_argument("--tool", choices=("auto", "wrk", "aiohttp"), default="auto")
    p.add_argument("--baseline-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    p.add_argument("--loadgen", metavar="URL", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not 0.5 <= args.duration <= 120:
        p.error("--duration must be between 0.5 and 120 seconds")
    if not 1 <= args.connections <= 1000:
        p.error("--connections must be between 1 and 1000")
    if not 1 <= args.rounds <= 10:
        p.error("--rounds must be between 1 and 10")
    if args.baseline_server is not None:
        return baseline_server(args.baseline_server)
    if args.loadgen is not None:
        if not args.loadgen.startswith(f"http://{HOST}:"):
            p.error("--loadgen only talks to 127.0.0.1")
        return loadgen(args.loadgen, args.duration, args.connections)
    started = time.monotonic()
    try:
        result = bench(args)
    except Exception as exc:  # one JSON line even on failure
        note(f"failed: {exc}")
        print(json.dumps({"bench": "api", "error": str(exc).splitlines()[0][:300]}), flush=True)
        return 1
    result["wall_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(result), flush=True)
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
