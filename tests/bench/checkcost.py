"""CPU per HTTP check: the real daemon against a bare aiohttp probe loop, same run, same target.

    python tests/bench/checkcost.py [--monitors 10000] [--duration 60] [--warmup 35]
                                    [--profile out.txt] [--restart] [--ports 4]

A local nginx (or the aiohttp stand-in of scheduler.py when nginx is missing) answers 200 on
``--ports`` loopback ports for each client (see start_nginx: ephemeral ports run out). The
daemon runs as ``dragonopsd serve`` (SQLite) with ``--monitors`` ``[[monitors]]`` of kind http at
30 s, ``[STATUS] == 200``, synced from its config file (first runs spread over the interval).
Beside it, in its own process, a bare aiohttp loop makes the same number of fresh-connection
GETs per second against the same target (one session with ``force_close``, a task per request,
the body read and the status checked: what a probe is without the monitoring around it).

After ``--warmup`` seconds (at least one interval, so every monitor has run) both processes'
CPU (utime+stime from /proc, all threads) is taken over ``--duration`` seconds and divided by
the checks each made in that window: the daemon's from ``GET /api/stats/engine``
(checksStarted), the loop's from its own counter (it reports on SIGUSR1, to stderr). The ratio
is daemon ÷ bare. Issue 20's targets are cpu_ms_per_check <= 0.40 ms and a ratio <= 1.4, set on
a machine where the bare loop cost 0.29 ms a check (0.40 is 1.38x that); where the bare loop
alone costs more than 0.40 ms no daemon around it can meet the absolute figure, so ``pass``
is the ratio (with no errors and no skipped checks) and ``pass_absolute`` is reported beside it.

``--profile FILE`` also runs ``py-spy record --nonblocking --format raw`` on the daemon and the
bare loop during the window and writes summaries (own time and inclusive time per function, as
shares of the samples) to FILE.daemon and FILE.bare (raw stacks beside them, FILE.*.raw); the
profiler costs both some CPU, so profile and measure in separate runs.

Progress goes to stderr, one JSON line to stdout.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scheduler as sched  # the sibling bench's processes, target and /proc

INTERVAL_S = sched.INTERVAL_S
TARGET_MS = 0.40
TARGET_RATIO = 1.4
CONDITION = "[STATUS] == 200"
_BARE_COUNT = re.compile(r"bare checks (\d+) errors (\d+)")


def note(*parts: Any) -> None:
    print("[bench checkcost]", *parts, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the bare loop


def bare_loop(urls: list[str], rate: float) -> int:
    """``rate`` fresh-connection GETs per second against url until SIGTERM; on SIGUSR1 the
    requests finished so far (and errors) go to stderr."""
    import asyncio  # noqa: PLC0415

    import aiohttp  # noqa: PLC0415

    async def main() -> int:
        done = errors = 0
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def report() -> None:
            print(f"bare checks {done} errors {errors}", file=sys.stderr, flush=True)

        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGUSR1, report)
        connector = aiohttp.TCPConnector(limit=0, force_close=True)
        timeout = aiohttp.ClientTimeout(total=sched.TIMEOUT_S)
        tasks: set[asyncio.Task[None]] = set()
        async with aiohttp.ClientSession(connector=connector) as session:

            async def one(url: str) -> None:
                nonlocal done, errors
                try:
                    async with session.get(url, timeout=timeout) as resp:
                        await resp.read()
                        ok = resp.status == 200
                except (aiohttp.ClientError, TimeoutError):
                    ok = False
                done += 1
                errors += not ok

            started = 0
            t0 = loop.time()
            print("bare loop running", file=sys.stderr, flush=True)
            while not stop.is_set():
                due = int((loop.time() - t0) * rate)
                for n in range(started, due):
                    task = asyncio.create_task(one(urls[n % len(urls)]))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                started = max(started, due)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.01)
            for task in tasks:
                task.cancel()
        report()
        return 0

    return int(sched._run_loop(main()))


def bare_count(proc: sched.Proc, timeout: float = 30.0) -> int:
    """Ask the bare loop for its count (SIGUSR1) and read the answer from its log."""
    before = len(_BARE_COUNT.findall(proc.log()))
    proc.proc.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _BARE_COUNT.findall(proc.log())
        if len(found) > before:
            return int(found[-1][0])
        proc.check_alive()
        time.sleep(0.02)
    raise RuntimeError("the bare loop did not report its count")


# --------------------------------------------------------------------------- the profile


def summarize(raw: str, top: int = 25) -> str:
    """py-spy's raw (collapsed) stacks as two tables: own and inclusive share per function."""
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_short(f) for f in stack.split(";")]
        own[frames[-1]] += n
        for frame in set(frames):
            incl[frame] += n
    if not total:
        return "no samples\n"
    lines = [f"{total} samples", "", "own time:"]
    lines += [f"  {n / total:6.1%}  {f}" for f, n in own.most_common(top)]
    lines += ["", "inclusive time:"]
    lines += [f"  {n / total:6.1%}  {f}" for f, n in incl.most_common(top * 2)]
    return "\n".join(lines) + "\n"


def _short(frame: str) -> str:
    """'func (path/to/module.py:12)' -> 'func (module.py)': lines differ, functions do not."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rpartition(":")[0] or where.rstrip(")")
    parts = Path(path).parts
    short = "/".join(parts[-2:]) if "dragonopsd" in parts else (parts[-1] if parts else "")
    return f"{name} ({short})"


# --------------------------------------------------------------------------- the bench


def user_system(pid: int) -> tuple[float, float]:
    """utime and stime of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def spy(pid: int, out: Path, args: argparse.Namespace) -> subprocess.Popen[bytes]:
    """py-spy record on pid for the measured window; raw stacks to out.raw."""
    argv = [str(Path(sys.executable).with_name("py-spy")), "record", "--format", "raw"]
    # --native has to stop the process to unwind C frames; otherwise it runs undisturbed
    argv += ["--native"] if args.native else ["--nonblocking"]
    argv += ["--rate", "200", "--duration", str(int(args.duration)), "--pid", str(pid)]
    argv += ["--output", f"{out}.raw"]
    with Path(f"{out}.log").open("wb") as log:  # the child keeps its own copy of the fd
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log
        )


def start_nginx(tmp: Path, ports: int) -> tuple[sched.Proc, list[str]]:
    """nginx (scheduler.py's config) listening on several loopback ports, and their URLs.

    Each fresh connection leaves a socket in TIME_WAIT for 60 s, and the ephemeral ports
    towards one address:port run out near 28,000 (32768-60999): at 25,000 monitors the daemon
    and the bare loop open ~1,700 a second between them, so each gets ports of its own.
    """
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    prefix = tmp / "nginx"
    prefix.mkdir()
    numbers = [sched.free_port() for _ in range(ports)]
    conf = sched.NGINX_CONF.format(
        prefix=prefix, host=sched.HOST, port=numbers[0], body=sched.BODY.decode()
    )
    first = f"listen {sched.HOST}:{numbers[0]} backlog=4096;"
    conf = conf.replace(first, " ".join(f"listen {sched.HOST}:{n} backlog=4096;" for n in numbers))
    (prefix / "nginx.conf").write_text(conf)
    argv = [nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf")]
    proc = sched.Proc("nginx", argv, tmp / "nginx.log")
    urls = [f"http://{sched.HOST}:{n}/" for n in numbers]
    for url in urls:
        try:
            sched.wait_http(url)
        except RuntimeError:
            proc.check_alive()
            raise
    return proc, urls


def write_config(path: Path, monitors: int, urls: list[str], concurrency: int) -> None:
    lines = ["[probes]", f"concurrency = {concurrency}", "", "[history]"]
    lines += ["flush_interval = 1.0", ""]
    for i in range(monitors):
        lines += [
            "[[monitors]]",
            f'name = "m{i}"',
            'kind = "http"',
            f'url = "{urls[i % len(urls)]}"',
            f"interval = {INTERVAL_S}",
            f"timeout = {sched.TIMEOUT_S}",
            f"conditions = [{json.dumps(CONDITION)}]",
            "",
        ]
    path.write_text("\n".join(lines))


def bench(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="dragonops-bench-checkcost-"))
    procs: list[sched.Proc] = []
    try:
        if shutil.which("nginx") or Path("/usr/sbin/nginx").exists():
            target, urls = start_nginx(tmp, 2 * args.ports)
        else:  # the aiohttp stand-in, one port for both
            target, url = sched.start_target("aiohttp", tmp)
            urls = [url, url]
        procs.append(target)
        daemon_urls, bare_urls = urls[: len(urls) // 2], urls[len(urls) // 2 :]
        note(f"target {target.name} pid {target.proc.pid} at {', '.join(urls)}")
        state = tmp / "state"
        state.mkdir()
        config = tmp / "dragonopsd.toml"
        log_path = tmp / "daemon.log"
        write_config(config, args.monitors, daemon_urls, args.concurrency)
        t = time.monotonic()
        daemon = sched.start_daemon(tmp, state, config, log_path)
        procs.append(daemon)
        auth = f"Bearer {sched.read_token(state)}"
        sched.wait_monitors(daemon, auth, args.monitors, timeout=120)
        note(f"{args.monitors} monitors up in {time.monotonic() - t:.1f}s")
        if args.restart:
            if daemon.stop(sched.STOP_TIMEOUT_S) != 0:
                raise RuntimeError(f"daemon exited non-zero on SIGTERM:\n{daemon.log()[-3000:]}")
            procs.remove(daemon)
            daemon.close()
            daemon = sched.start_daemon(tmp, state, config, log_path)
            procs.append(daemon)
            sched.wait_monitors(daemon, auth, args.monitors, timeout=120)
        pid = daemon.proc.pid
        rate = args.monitors / INTERVAL_S
        bare = sched.Proc(
            "bare",
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--rate",
                str(rate),
                "--bare",
                *bare_urls,
            ],
            tmp / "bare.log",
        )
        procs.append(bare)
        note(f"daemon pid {pid}, bare loop pid {bare.proc.pid} at {rate:.1f} GET/s")
        note(f"warm-up {args.warmup:.0f}s")
        time.sleep(args.warmup)
        daemon.check_alive()
        bare.check_alive()

        s0, _, _ = sched.engine_stats(daemon, auth)
        b0 = bare_count(bare)
        us0, bus0 = user_system(pid), user_system(bare.proc.pid)
        wall0 = time.monotonic()
        spies = []
        if args.profile:
            spies = [
                spy(pid, tmp / "daemon", args),
                spy(bare.proc.pid, tmp / "bare", args),
            ]
        note(f"measuring {args.duration:.0f}s")
        rss: list[float] = []
        end = wall0 + args.duration
        while time.monotonic() < end:
            daemon.check_alive()
            bare.check_alive()
            rss.append(sched.memory_mb(pid)["VmRSS"])
            time.sleep(min(1.0, max(0.0, end - time.monotonic())))
        s1, _, _ = sched.engine_stats(daemon, auth)
        b1 = bare_count(bare)
        us1, bus1 = user_system(pid), user_system(bare.proc.pid)
        wall1 = time.monotonic()
        mem = sched.memory_mb(pid)
        bare_errors = int(_BARE_COUNT.findall(bare.log())[-1][1])
        for proc, name in zip(spies, ("daemon", "bare"), strict=False):
            proc.wait(60)
            raw = tmp / f"{name}.raw"
            out = Path(f"{args.profile}.{name}")
            out.write_text(summarize(raw.read_text()) if raw.exists() else "no profile\n")
            if raw.exists():
                shutil.copyfile(raw, f"{out}.raw")
            note(f"{name} profile summary in {out}")

        checks = s1["checksStarted"] - s0["checksStarted"]
        bare_checks = b1 - b0
        wall = wall1 - wall0
        user, system = us1[0] - us0[0], us1[1] - us0[1]
        bare_user, bare_system = bus1[0] - bus0[0], bus1[1] - bus0[1]
        skipped = s1["checksSkipped"] - s0["checksSkipped"]
        ms = (user + system) * 1000 / max(1, checks)
        bare_ms = (bare_user + bare_system) * 1000 / max(1, bare_checks)
        ratio = ms / bare_ms if checks and bare_checks and bare_ms else None
        clean = not args.profile and not bare_errors and not skipped
        return {
            "bench": "checkcost",
            "monitors": s1["monitors"],
            "interval_s": INTERVAL_S,
            "duration_s": round(wall, 1),
            "checks": checks,
            "cpu_ms_per_check": round(ms, 3),
            "user_ms_per_check": round(user * 1000 / max(1, checks), 3),
            "system_ms_per_check": round(system * 1000 / max(1, checks), 3),
            "cpu_pct_of_core": round((user + system) / wall * 100, 1),
            "bare_checks": bare_checks,
            "bare_errors": bare_errors,
            "bare_cpu_ms_per_check": round(bare_ms, 3),
            "bare_user_ms_per_check": round(bare_user * 1000 / max(1, bare_checks), 3),
            "bare_system_ms_per_check": round(bare_system * 1000 / max(1, bare_checks), 3),
            "ratio": None if ratio is None else round(ratio, 2),
            "rss_mb": round(mem["VmRSS"], 1),
            "rss_window_max_mb": round(max(rss, default=mem["VmRSS"]), 1),
            "history_dropped": s1["historyDropped"],
            "skipped": skipped,
            "drift_p99_ms": s1["driftP99Ms"],
            "target": target.name,
            "profiled": bool(args.profile),
            "target_ms": TARGET_MS,
            "target_ratio": TARGET_RATIO,
            "pass_absolute": ms <= TARGET_MS and clean,
            "pass": ratio is not None and ratio <= TARGET_RATIO and clean,
        }
    finally:
        for p in reversed(procs):
            with contextlib.suppress(Exception):
                p.close()
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--monitors", type=int, default=10_000)
    p.add_argument("--duration", type=float, default=60.0, help="measured seconds (>= 60)")
    p.add_argument("--warmup", type=float, default=INTERVAL_S + 5.0, help="seconds before")
    p.add_argument("--ports", type=int, default=4, help="nginx ports for each client")
    p.add_argument("--concurrency", type=int, default=512, help="[probes] concurrency")
    p.add_argument("--restart", action="store_true", help="measure after a restart")
    p.add_argument("--profile", metavar="FILE", help="py-spy both; summaries to FILE.daemon/.bare")
    p.add_argument("--native", action="store_true", help="py-spy --native (C frames too)")
    p.add_argument("--bare", metavar="URL", nargs="+", help=argparse.SUPPRESS)
    p.add_argument("--rate", type=float, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.bare:
        return bare_loop(args.bare, args.rate)
    if not 1 <= args.monitors <= 50_000:
        p.error("--monitors must be between 1 and 50000")
    if not 5 <= args.duration <= 1800:
        p.error("--duration must be between 5 and 1800 seconds")
    try:
        result = bench(args)
    except Exception as exc:  # one JSON line even on failure
        note(f"failed: {exc}")
        print(json.dumps({"bench": "checkcost", "error": str(exc).splitlines()[0][:300]}))
        return 1
    print(json.dumps(result), flush=True)
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
