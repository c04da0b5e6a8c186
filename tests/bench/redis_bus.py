"""Redis bus and remote probing throughput: the real core, real workers, the machine's Redis.

    python tests/bench/redis_bus.py [--redis URL] [--rates 2000,5000,8000,10000,20000,0]
        [--step 3] [--max-p99-ms 100] [--monitors 500] [--timeout 0.5] [--workers 2]
        [--warmup 5] [--window 15] [--skip-bus] [--skip-probes]    # repo root; ~100 s

Events: a ``dragonopsd serve`` core (``[redis]``, private ``bench-<hex>`` prefix) and a
websocket client here on ``monitors.bench``. Per offered rate (0 = flat out, backpressured on
the bus's ``sent``) a publisher process (a ``RedisBus`` on its own ``RedisLink``) sends
``monitor.heartbeat`` ``{run, seq, sent}`` for ``--step`` s: lost = published - distinct seqs
received, latency = receive - ``sent``, rate = received / (last receive - first publish), CPU
per received event. Baseline, interleaved: the same envelope by plain redis.asyncio PUBLISH to
a plain redis.asyncio SUBSCRIBE here (``RedisBus.run_reader``'s loop). Sustained: none lost,
rate >= 97 % of offered, p99 <= ``--max-p99-ms``.

Probes: an aiohttp target process, a core with ``--monitors`` http ``[[monitors]]`` (1 s,
``locations = ["bench"]``) and ``--workers`` ``dragonopsd probe`` processes; after ``--warmup``
s, over ``--window`` s: results consumed (XINFO GROUPS ``core`` entries-read, lag/pending each
second), jobs issued, rounds started (/api/stats/engine), CPU (/proc); the workers' "N jobs
done, M expired" at SIGTERM (one still running 15 s later is counted as hung and killed; the
whole-run job totals come from Redis too). Baseline: the same monitors, ``["local"]``.

Subprocesses are killed and keys under the prefix deleted. stdout gets one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from array import array
from collections import Counter
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import redis
import redis.asyncio as aredis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the Daemon helper
from daemon import Daemon

TOPIC, KIND, LOCATION = "monitors.bench", "monitor.heartbeat", "bench"
DONE = re.compile(r"(\d+) jobs done, (\d+) expired")
decode = msgspec.json.decode


def note(*parts: Any) -> None:
    print(*parts, file=sys.stderr, flush=True)


def run_loop(coro: Coroutine[Any, Any, Any]) -> Any:
    try:
        import uvloop  # noqa: PLC0415  -- optional, as in dragonopsd.cli
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all threads) from /proc; nan once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_used(pids: dict[str, int], since: dict[str, float] | None = None) -> dict[str, float]:
    """CPU seconds of each named pid (minus ``since``)."""
    return {k: cpu_seconds(p) - (since or {}).get(k, 0.0) for k, p in pids.items()}


def pct(values: array[float], q: float) -> float | None:
    ordered = sorted(values) or [float("nan")]
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)


# -- child processes ------------------------------------------------------------------------


def target_server() -> int:
    """A bare aiohttp app answering 200 "ok"; prints its port on stdout."""
    from aiohttp import web  # noqa: PLC0415

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0, backlog=4096).start()
        print(runner.addresses[0][1], flush=True)
        await asyncio.Event().wait()  # until killed

    run_loop(main())
    return 0


async def publisher(args: argparse.Namespace) -> dict[str, Any]:
    """Publish for args.duration s at args.rate/s (0: flat out); report what went out."""
    from dragonopsd.bus import RedisBus  # noqa: PLC0415
    from dragonopsd.config import RedisConfig  # noqa: PLC0415
    from dragonopsd.redislink.client import RedisLink  # noqa: PLC0415

    link = RedisLink(RedisConfig(url=args.redis, prefix=args.prefix), name="bench-publisher")
    bus, raw, seq = RedisBus(link), aredis.Redis.from_url(args.redis), 0
    pump = asyncio.create_task(bus.run_publisher())
    assert await link.ping(), "redis is not answering"
    channel, encode = f"{args.prefix}:raw", msgspec.json.Encoder().encode

    async def emit(n: int) -> None:
        nonlocal seq
        pipe = raw.pipeline(transaction=False)
        for k in range(seq, seq + n):
            data = {"run": args.run, "seq": k, "sent": time.time()}
            if args.publish == "bus":
                bus.publish(TOPIC, data, KIND)
            else:
                pipe.publish(channel, encode(["bench", TOPIC, KIND, data["sent"], data]))
        seq += n
        if args.publish == "raw":
            await pipe.execute()

    def backlog() -> int:
        return seq - bus.sent - bus.dropped if args.publish == "bus" else 0

    loop = asyncio.get_running_loop()
    cpu0, start, t0 = cpu_seconds(os.getpid()), time.time(), loop.time()
    while (elapsed := loop.time() - t0) < args.duration:
        if args.rate:
            if (due := int(elapsed * args.rate) - seq) > 0:
                await emit(min(due, 2000))
            await asyncio.sleep(0.002)
        else:
            await emit(500)
            while backlog() > 5000:
                await asyncio.sleep(0.001)
    while backlog() > 0 and loop.time() - t0 < args.duration + 10:
        await asyncio.sleep(0.005)
    pump.cancel()
    await asyncio.gather(pump, return_exceptions=True)
    await link.close()
    await raw.aclose()
    cpu = cpu_seconds(os.getpid()) - cpu0
    return {"published": seq, "dropped": bus.dropped, "start": start, "cpu": cpu}


# -- events ---------------------------------------------------------------------------------


class Tally:
    """What the receivers saw of one step."""

    def __init__(self) -> None:
        self.seqs: set[int] = set()
        self.lat: array[float] = array("d")
        self.last = 0.0

    def add(self, data: dict[str, Any]) -> None:
        if data["seq"] not in self.seqs:
            self.last = time.time()
            self.seqs.add(data["seq"])
            self.lat.append(self.last - data["sent"])


class Receivers:
    """The websocket client (events through the core) and the raw subscriber, both here."""

    def __init__(self, ws_url: str, token: str, args: argparse.Namespace) -> None:
        self.ws_url, self.token = ws_url, token
        self.tallies: dict[int, Tally] = {}
        self.ws_closes: list[int | None] = []
        self.session = aiohttp.ClientSession()
        self.redis = aredis.Redis.from_url(args.redis)
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self.channel = f"{args.prefix}:raw"
        self.tasks: list[asyncio.Task[None]] = []
        self.ws: aiohttp.ClientWebSocketResponse | None = None

    async def connect(self) -> None:
        """(Re)open the websocket, subscribe, wait for the ack; subscribe the raw side once."""
        if not self.tasks:
            await self.pubsub.subscribe(self.channel)
            self.tasks.append(asyncio.create_task(self._read_raw()))
        headers = {"Authorization": f"Bearer {self.token}"}
        self.ws = ws = await self.session.ws_connect(self.ws_url, headers=headers)
        await ws.send_str(json.dumps({"op": "subscribe", "topics": [TOPIC]}))
        while (frame := decode((await ws.receive(timeout=10)).data))["type"] != "ack":
            pass
        assert frame["data"]["topics"] == [TOPIC], frame
        self.tasks.append(asyncio.create_task(self._read_ws(ws)))

    async def _read_ws(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                frame = decode(msg.data)
                if frame["type"] == "event" and (t := self.tallies.get(frame["data"]["run"])):
                    t.add(frame["data"])
        self.ws_closes.append(ws.close_code)
        note(f"websocket closed by the core: {ws.close_code}")

    async def _read_raw(self) -> None:
        while True:  # the loop of RedisBus.run_reader
            message = await self.pubsub.get_message(timeout=1.0)
            if message is not None and message.get("type") == "message":
                data = decode(message["data"])[4]
                if t := self.tallies.get(data["run"]):
                    t.add(data)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.ws is not None:
            await self.ws.close()
        await self.session.close()
        await self.pubsub.aclose()  # type: ignore[no-untyped-call]
        await self.redis.aclose()


async def step(
    args: argparse.Namespace, rx: Receivers, pids: dict[str, int], mode: str, rate: int, run: int
) -> dict[str, Any]:
    if rx.ws is None or rx.ws.closed:
        await rx.connect()
    tally = rx.tallies[run] = Tally()
    cpu0 = cpu_used(pids)
    argv = [sys.executable, __file__, "--publish", mode, "--rate", str(rate), "--run", str(run)]
    argv += ["--duration", str(args.step), "--redis", args.redis, "--prefix", args.prefix]
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), args.step + 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    pub = json.loads(out.decode().strip().splitlines()[-1])
    quiet, seen = 0, -1
    while len(tally.seqs) < pub["published"] and quiet < 20:  # 1 s without progress: done
        await asyncio.sleep(0.05)
        quiet, seen = (quiet + 1, seen) if len(tally.seqs) == seen else (0, len(tally.seqs))
    got, used = len(tally.seqs), cpu_used(pids, cpu0) | {"publisher": pub["cpu"]}
    del rx.tallies[run]
    result = {
        "mode": mode,
        "offered": rate or "max",
        "published": pub["published"],
        "lost": pub["published"] - got,
        "publisher_dropped": pub["dropped"],
        "rate": round(got / (tally.last - pub["start"])) if got else 0,
        "p50_ms": pct(tally.lat, 0.5),
        "p99_ms": pct(tally.lat, 0.99),
        "max_ms": pct(tally.lat, 1.0),
        "cpu_us_per_event": {k: round(v / max(got, 1) * 1e6, 1) for k, v in used.items()},
    }
    note(json.dumps(result))
    return result


def sustained(steps: list[dict[str, Any]], mode: str, p99: float) -> int:
    """The highest offered rate delivered whole, at >= 97 %, within the p99 bound (0: none)."""
    ss = [s for s in steps if s["mode"] == mode and s["offered"] != "max" and not s["lost"]]
    ok = [s["offered"] for s in ss if s["rate"] >= 0.97 * s["offered"] and s["p99_ms"] <= p99]
    return max(ok, default=0)


async def events(args: argparse.Namespace, tmp: Path, redis_pid: int) -> dict[str, Any]:
    cfg = tmp / "events.toml"
    cfg.write_text(f'[redis]\nurl = "{args.redis}"\nprefix = "{args.prefix}"\n')
    (tmp / "events-state").mkdir()
    with Daemon(tmp / "events-state", "--config", str(cfg)) as d:
        d.wait_listening(30)
        rx = Receivers(d.url.replace("http://", "ws://") + "/api/ws", d.token, args)
        pids = {"core": d.proc.pid, "redis": redis_pid, "client": os.getpid()}
        steps: list[dict[str, Any]] = []
        try:
            for rate in args.rates:
                for mode in ("raw", "bus"):
                    steps.append(await step(args, rx, pids, mode, rate, len(steps)))
        finally:
            await rx.close()
        if d.proc.poll() is not None:
            raise d.died()
    flat = {s["mode"]: s["rate"] for s in steps if s["offered"] == "max"}
    return {
        "bus_sustained_rate": sustained(steps, "bus", args.max_p99_ms),
        "raw_sustained_rate": sustained(steps, "raw", args.max_p99_ms),
        "bus_flat_out_rate": flat.get("bus"),
        "raw_flat_out_rate": flat.get("raw"),
        "bus_vs_raw_flat_out": round(flat["bus"] / flat["raw"], 3) if len(flat) == 2 else None,
        "ws_closed_by_core": rx.ws_closes,
        "steps": steps,
    }


# -- probes ---------------------------------------------------------------------------------


def clean(r: redis.Redis, prefix: str) -> None:
    if names := list(r.scan_iter(match=f"{prefix}:*", count=1000)):
        r.delete(*names)


def group(r: redis.Redis, stream: str, name: str) -> dict[str, Any]:
    with contextlib.suppress(redis.ResponseError):  # no stream yet
        for g in r.xinfo_groups(stream):
            if g["name"] in (name, name.encode()):
                return dict(g)
    return {}


def snapshot(d: Daemon, r: redis.Redis, prefix: str) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {d.token}"}
    req = urllib.request.Request(d.url + "/api/stats/engine", headers=auth)
    with urllib.request.urlopen(req, timeout=10) as resp:
        engine = json.loads(resp.read())
    results, jobs = f"{prefix}:results", f"{prefix}:jobs:{LOCATION}"
    return {
        "t": time.monotonic(),
        "engine": engine,
        "core": group(r, results, "core"),
        "workers": group(r, jobs, "workers"),
        # Ever added, not XLEN: entries are deleted once acknowledged (jobs by the workers,
        # results by the core), so the length stays near zero.
        "results_added": added(r, results),
        "jobs_added": added(r, jobs),
        "results_len": r.xlen(results),
    }


def added(r: redis.Redis, stream: str) -> int:
    """XINFO STREAM entries-added (Redis 7): how many entries the stream ever got."""
    try:
        info: Any = r.xinfo_stream(stream)
    except redis.ResponseError:  # no such stream yet
        return 0
    return int(info.get("entries-added", 0))


def start_workers(args: argparse.Namespace, tmp: Path, cfg: Path) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i in range(1, args.workers + 1):
        argv = [sys.executable, "-m", "dragonopsd", "probe", "--location", LOCATION, "--redis"]
        argv += [args.redis, "--prefix", args.prefix, "--name", f"w{i}", "--config", str(cfg)]
        with (tmp / f"w{i}.log").open("wb") as log:
            procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log))
    return procs


def stop_workers(procs: list[subprocess.Popen[bytes]], tmp: Path) -> dict[str, int]:
    """SIGTERM, then what they say they did; one still running 15 s later is killed."""
    out = {"jobs_done": 0, "jobs_expired": 0, "workers_hung_on_sigterm": 0}
    for proc in procs:
        proc.terminate()
    for i, proc in enumerate(procs, 1):
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            out["workers_hung_on_sigterm"] += 1
            proc.kill()
            proc.wait(10)
        if m := DONE.search((tmp / f"w{i}.log").read_text(errors="replace")):
            out["jobs_done"] += int(m[1])
            out["jobs_expired"] += int(m[2])
    return out


def probe_run(args: argparse.Namespace, tmp: Path, r: redis.Redis, url: str, where: str) -> Any:
    """One core (plus workers when ``where`` is remote) probing the target; its figures."""
    cfg = tmp / f"{where}.toml"
    text = f'[redis]\nurl = "{args.redis}"\nprefix = "{args.prefix}"\n\n'
    for i in range(args.monitors):
        text += f'[[monitors]]\nname = "bench-{i}"\nkind = "http"\nurl = "{url}"\ninterval = 1\n'
        text += f'timeout = {args.timeout}\nlocations = ["{where}"]\n\n'
    cfg.write_text(text)
    (tmp / f"{where}-state").mkdir()
    workers: list[subprocess.Popen[bytes]] = []
    with Daemon(tmp / f"{where}-state", "--config", str(cfg)) as d:
        try:
            d.wait_listening(60)
            workers = start_workers(args, tmp, cfg) if where == LOCATION else []
            deadline = time.monotonic() + 20
            while workers and r.zcard(f"{args.prefix}:workers:{where}") < len(workers):
                assert time.monotonic() < deadline, "workers did not register within 20 s"
                time.sleep(0.1)
            time.sleep(args.warmup)
            pids = {"core": d.proc.pid} | {f"w{i}": p.pid for i, p in enumerate(workers, 1)}
            s0, cpu0, lag, pending = snapshot(d, r, args.prefix), cpu_used(pids), 0, 0
            while time.monotonic() < s0["t"] + args.window:
                time.sleep(1)
                core = group(r, f"{args.prefix}:results", "core")
                lag = max(lag, core.get("lag") or 0)
                pending = max(pending, core.get("pending") or 0)
            s1 = snapshot(d, r, args.prefix)
            cpu = {k: round(v / (s1["t"] - s0["t"]), 3) for k, v in cpu_used(pids, cpu0).items()}
            stopped = stop_workers(workers, tmp)
            s2 = snapshot(d, r, args.prefix)
            if d.proc.poll() is not None:
                raise d.died()
            away = Counter(re.findall(r"redis is away \(([^)]*)\)", d.log))
        finally:
            for proc in workers:
                proc.kill()
                proc.wait(10)
    wall = s1["t"] - s0["t"]
    e0, e1 = s0["engine"], s1["engine"]
    out = {
        "checks_started_per_s": round((e1["checksStarted"] - e0["checksStarted"]) / wall, 1),
        "checks_skipped": e1["checksSkipped"] - e0["checksSkipped"],
        "drift_p99_ms": e1["driftP99Ms"],
        "history_dropped": e1["historyDropped"],
        "cpu": cpu | {"total": round(sum(cpu.values()), 3)},
        "core_logged_redis_away": dict(away),
    }
    if where == "local":
        return out
    return out | {
        "results_per_s": round((s1["core"]["entries-read"] - s0["core"]["entries-read"]) / wall, 1),
        "jobs_per_s": round((s1["jobs_added"] - s0["jobs_added"]) / wall, 1),
        "core_lag_max": lag,
        "core_pending_max": pending,
        "core_lag_end": s1["core"].get("lag"),
        "workers_lag_end": s1["workers"].get("lag"),
        **stopped,  # jobs_done/expired: from the workers' exit lines (0 for a hung one)
        # whole run, from Redis: jobs the workers took, results they wrote, still pending
        "jobs_read_total": s2["workers"].get("entries-read"),
        "results_total": s2["results_added"],
        "results_left_in_redis": s2["results_len"],
        "jobs_pending_total": s2["workers"].get("pending"),
    }


def probes(args: argparse.Namespace, tmp: Path, r: redis.Redis) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--target"]
    target = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert target.stdout is not None
        url = f"http://127.0.0.1:{int(target.stdout.readline())}/"
        remote = probe_run(args, tmp, r, url, LOCATION)
        note("remote:", json.dumps(remote))
        clean(r, args.prefix)  # the local run starts from no streams
        local = probe_run(args, tmp, r, url, "local")
        note("local:", json.dumps(local))
    finally:
        target.kill()
        target.wait(10)
    return {
        "monitors": args.monitors,
        "workers": args.workers,
        "remote_results_per_s": remote["results_per_s"],
        "local_checks_per_s": local["checks_started_per_s"],
        "remote_keeps_up": remote["results_per_s"] >= 0.95 * args.monitors
        and (remote["core_lag_end"] or 0) < args.monitors,
        "remote": remote,
        "local": local,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    p.add_argument("--prefix", default=f"bench-{os.urandom(4).hex()}")
    p.add_argument("--rates", default="2000,5000,8000,10000,20000,0", help="0: flat out")
    for name, default in (
        ("step", 3.0),
        ("max-p99-ms", 100.0),
        ("monitors", 500),
        ("timeout", 0.5),
        ("workers", 2),
        ("warmup", 5.0),
        ("window", 15.0),
    ):
        p.add_argument(f"--{name}", type=type(default), default=default)  # fmt: skip
    p.add_argument("--skip-bus", action="store_true")
    p.add_argument("--skip-probes", action="store_true")
    p.add_argument("--target", action="store_true", help=argparse.SUPPRESS)  # child roles
    for hidden in ("--publish", "--rate", "--run", "--duration"):
        p.add_argument(hidden, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.target:
        return target_server()
    if args.publish:
        args.rate, args.run, args.duration = int(args.rate), int(args.run), float(args.duration)
        print(json.dumps(run_loop(publisher(args))), flush=True)
        return 0
    args.rates = [int(x) for x in args.rates.split(",") if x.strip()]
    r = redis.Redis.from_url(args.redis, socket_timeout=10)
    result: dict[str, Any] = {"bench": "redis_bus", "prefix": args.prefix, "cpus": os.cpu_count()}
    result["loadavg_start"] = os.getloadavg()[0]
    t = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="redis-bus-") as tmp:
            if not args.skip_bus:
                pid = int(r.info("server")["process_id"])
                result["events"] = run_loop(events(args, Path(tmp), pid))
            if not args.skip_probes:
                result["probes"] = probes(args, Path(tmp), r)
    except Exception as exc:  # one JSON line even on failure
        note(f"failed: {exc!r}")
        result["error"] = (str(exc) or repr(exc)).splitlines()[0][:300]
    finally:
        with contextlib.suppress(redis.RedisError):
            clean(r, args.prefix)
        r.close()
    result["loadavg_end"] = os.getloadavg()[0]
    result["wall_s"] = round(time.monotonic() - t, 1)
    print(json.dumps(result), flush=True)
    return 1 if "error" in result else 0


if __name__ == "__main__":
    raise SystemExit(main())
