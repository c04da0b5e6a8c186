"""Websocket fan-out under the sampling burst: 1,000 clients on ``servers.*.metrics``.

    python tests/bench/ws_fanout.py [--clients 1000] [--interval 1] [--duration 5]
                                    [--rounds 3] [--warmup 3] [--stalled 0.05]

This process runs the real daemon app (``build_app`` with the ``--demo`` inventory, i.e. 12
simulated servers, and ``[sampling] interval = --interval``, on a temp state dir, aiohttp's
AppRunner on 127.0.0.1): every tick the sampler publishes 12 ``server.metrics`` events at
once, so each client is owed 12 events in the same instant. A second process (this file with
``--client``) opens ``--clients`` websockets with a viewer token, subscribes each to
``servers.*.metrics`` and measures the delivery latency of every event: receive time minus
the sample's own timestamp (``data.at``, taken when the tick sampled it; same host, same
clock).

Phases, ``--duration`` seconds each after ``--warmup`` seconds, on the same sockets, repeated
``--rounds`` times (interleaved, so the machine's load drifts over all of them alike):
``event``, one frame per event (the protocol's default, the "before" baseline); ``batch``,
every client having sent ``{"op":"subscribe","topics":[],"batch":true}``, one ``batch`` frame
per tick per client; ``stalled``, batch frames still, with ``--stalled`` of the clients not
reading (transport paused, 4 KiB receive buffer; they read and catch up again in the next
round's ``event`` phase). Each switch is followed by an unmeasured settling tick or so.
``others`` are the clients that never stall, so stalls are judged by their effect on the same
set of clients (``stalled_p99_ratio``: their p99 in ``stalled`` over their p99 in ``batch``).
``gaps`` counts missing seqs on those clients over the whole run (coalescing would show up
there: a client that keeps up never has one). ``p99_sampled_to_published_ms`` is the daemon's
own share before the hub (the event's ``ts`` minus ``data.at``). ``server_buffered_max`` is,
per phase, how many clients at once had bytes the kernel would not take (their frames then go
through their writer task) and ``server_queued_max`` how many had frames waiting in their
queue.

Both processes use uvloop when it is installed (as ``dragonopsd serve`` does) and raise
RLIMIT_NOFILE to its hard limit; the client process freezes its connections out of the
garbage collector's reach (the server is left as the daemon runs). Progress goes to stderr;
stdout gets one JSON line (DESIGN.md "Performance": p99 delivery <= 100 ms with the burst per
tick; stalled clients change nobody else's p99 by more than 20 %).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import socket
import sys
import tempfile
import time
from array import array
from collections.abc import Coroutine
from typing import Any

import aiohttp
import msgspec
from aiohttp import web

from dragonopsd.app import build_app
from dragonopsd.appkeys import AUTHENTICATOR, HUB
from dragonopsd.config import from_mapping
from dragonopsd.live.hub import Hub

TARGET_P99_MS = 100.0
TARGET_STALL_RATIO = 1.2
PHASES = ("event", "batch", "stalled")


def note(*parts: Any) -> None:
    print(*parts, file=sys.stderr, flush=True)


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    try:
        import uvloop  # noqa: PLC0415  -- optional, as in dragonopsd.cli
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def pct(values: array[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)


# -- server side ---------------------------------------------------------------------------


class Seen:
    """Per phase: the most clients at once with bytes buffered / frames queued, and CPU."""

    def __init__(self) -> None:
        self.phase = "warmup"
        self.buffered: dict[str, int] = {}
        self.queued: dict[str, int] = {}
        self._spent: dict[str, tuple[float, float]] = {}  # phase -> (cpu s, wall s), summed
        self._mark = (cpu_seconds(), time.monotonic())

    def enter(self, phase: str) -> None:
        cpu, wall = cpu_seconds(), time.monotonic()
        was = self._spent.get(self.phase, (0.0, 0.0))
        self._spent[self.phase] = (was[0] + cpu - self._mark[0], was[1] + wall - self._mark[1])
        self.phase, self._mark = phase, (cpu, wall)

    def cpu_pct(self, phase: str) -> float | None:
        cpu, wall = self._spent.get(phase, (0.0, 0.0))
        return round(cpu / wall * 100, 1) if wall else None


async def watch_backlog(hub: Hub, seen: Seen) -> None:
    """At most how many clients had bytes the kernel would not take yet (they fall off the
    direct-write path), and how many had frames waiting in their queue."""
    while True:
        await asyncio.sleep(0.25)
        clients = list(hub.clients)
        buffered = sum(1 for c in clients if c.socket.buffered())
        queued = sum(1 for c in clients if c.backlog)
        seen.buffered[seen.phase] = max(seen.buffered.get(seen.phase, 0), buffered)
        seen.queued[seen.phase] = max(seen.queued.get(seen.phase, 0), queued)


async def serve(args: argparse.Namespace) -> dict[str, Any]:
    raise_fd_limit()
    with tempfile.TemporaryDirectory() as state:
        # One bench token holds every socket: lift the per-principal cap (loopback is exempt
        # from the per-address one by default).
        cfg = from_mapping(
            {
                "storage": {"state_dir": state},
                "server": {"max_websockets_per_principal": 100_000},
                "sampling": {"interval": args.interval},
            },
            env={},
        )
        app = build_app(cfg, demo_data=True)  # the demo's 12 simulated servers
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=2048)
        await site.start()
        port = runner.addresses[0][1]
        _, token = await app[AUTHENTICATOR].tokens.create("bench", "viewer", None, "bench")
        seen = Seen()
        watcher = asyncio.create_task(watch_backlog(app[HUB], seen))
        argv = [sys.executable, __file__, "--client", f"ws://127.0.0.1:{port}/api/ws", token]
        for name in ("clients", "interval", "duration", "rounds", "warmup", "stalled"):
            argv += [f"--{name}", str(getattr(args, name))]
        proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
        assert proc.stdout is not None
        last = b""
        async for line in proc.stdout:  # "phase <name>" as the client moves on, then the JSON
            if line.startswith(b"phase "):
                seen.enter(line.split()[1].decode())
            elif line.strip():
                last = line
        await proc.wait()
        watcher.cancel()
        await runner.cleanup()
    if proc.returncode != 0 or not last:
        raise SystemExit(f"client process failed ({proc.returncode})")
    result: dict[str, Any] = json.loads(last)
    for phase in PHASES:
        result[phase]["server_cpu_pct"] = seen.cpu_pct(phase)
        result[phase]["server_buffered_max"] = seen.buffered.get(phase, 0)
        result[phase]["server_queued_max"] = seen.queued.get(phase, 0)
    return result


# -- client side ---------------------------------------------------------------------------


class Sample(msgspec.Struct):
    """The one field of a sample the clients read (the rest is skipped, not decoded)."""

    at: float = 0.0


class Event(msgspec.Struct):
    type: str
    topic: str = ""
    seq: int = 0
    ts: float = 0.0
    data: Sample | None = None


class Frame(Event):
    """Any server frame: a single one, or a batch of events."""

    events: list[Event] = []


class Stats:
    """Latencies and counts per phase; ``others`` are the clients that never stall."""

    def __init__(self) -> None:
        self.phase = "warmup"
        self.all = {p: array("d") for p in PHASES}
        self.others = {p: array("d") for p in PHASES}
        self.frames = dict.fromkeys(PHASES, 0)
        self.publish = {p: array("d") for p in PHASES}  # sampled -> published, in the daemon
        self.gaps = 0
        self.stalling = False  # the stalled clients stop reading until resume is set
        self.resume = asyncio.Event()


def small_buffer_socket(addr: Any) -> socket.socket:
    family, kind, proto, _, _ = addr
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: small window
    return sock


async def one_client(
    session: aiohttp.ClientSession, url: str, token: str
) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(url, headers={"Authorization": f"Bearer {token}"})
    await ws.send_str('{"op":"subscribe","topics":["servers.*.metrics"]}')
    while True:  # snapshot frames, then the ack
        if msgspec.json.decode(await ws.receive_str(timeout=30), type=Frame).type == "ack":
            return ws


async def read(ws: aiohttp.ClientWebSocketResponse, stalls: bool, stats: Stats) -> None:
    decode = msgspec.json.Decoder(Frame).decode
    last: dict[str, int] = {}
    async for msg in ws:
        now = time.time()
        f = decode(msg.data)
        if f.type == "batch":
            events: list[Event] = f.events
        elif f.type == "event":
            events = [f]
        else:
            continue
        phase = stats.phase
        if stalls and stats.stalling:
            transport = ws._conn.transport if ws._conn else None
            if transport is not None:  # stop reading until the phase is over
                transport.pause_reading()
                await stats.resume.wait()
                transport.resume_reading()
            continue
        if phase in PHASES:
            stats.frames[phase] += 1
            for e in events:
                latency = now - e.data.at if e.data is not None else float("nan")
                stats.all[phase].append(latency)
                if e.data is not None:
                    stats.publish[phase].append(e.ts - e.data.at)
                if not stalls:
                    stats.others[phase].append(latency)
        if stalls:
            continue  # a stalled client's metrics may coalesce: no gap counting for those
        for e in events:
            if e.topic in last and e.seq != last[e.topic] + 1:
                stats.gaps += 1
            last[e.topic] = e.seq


def figures(stats: Stats, phase: str, seconds: float, cpu: float) -> dict[str, Any]:
    every, others = stats.all[phase], stats.others[phase]
    return {
        "p50_ms": pct(every, 0.5),
        "p99_ms": pct(every, 0.99),
        "max_ms": pct(every, 1.0),
        "p99_others_ms": pct(others, 0.99),
        "p99_sampled_to_published_ms": pct(stats.publish[phase], 0.99),
        "events_per_s": round(len(every) / seconds),
        "frames_per_s": round(stats.frames[phase] / seconds),
        "client_cpu_pct": round(cpu / seconds * 100, 1),
    }


async def clients(args: argparse.Namespace) -> dict[str, Any]:
    raise_fd_limit()
    stats = Stats()
    n_stalled = round(args.clients * args.stalled)
    normal = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    slow = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, socket_factory=small_buffer_socket)
    )
    gate = asyncio.Semaphore(64)

    async def connect(i: int) -> tuple[aiohttp.ClientWebSocketResponse, bool]:
        stalls = i >= args.clients - n_stalled
        async with gate:
            ws = await one_client(slow if stalls else normal, args.url, args.token)
        return ws, stalls

    def enter(phase: str) -> None:
        stats.phase = phase
        print("phase", phase, flush=True)  # the daemon side splits its figures by phase

    async def mode(batch: bool) -> None:
        op = json.dumps({"op": "subscribe", "topics": [], "batch": batch})
        await asyncio.gather(*(ws.send_str(op) for ws, _ in sockets))

    t0 = time.monotonic()
    sockets = await asyncio.gather(*(connect(i) for i in range(args.clients)))
    note(f"{len(sockets)} clients subscribed in {time.monotonic() - t0:.1f}s")
    readers = [asyncio.create_task(read(ws, stalls, stats)) for ws, stalls in sockets]
    # The 1,000 connections are this harness's own long-lived objects: frozen, its collector's
    # full passes stay short instead of adding ~70 ms pauses to the latencies it measures.
    gc.collect()
    gc.freeze()
    await asyncio.sleep(args.warmup)
    cpu = dict.fromkeys(PHASES, 0.0)
    settle = max(1.0, args.interval) + 0.5  # frames of the other shape still in flight
    for k in range(args.rounds):
        for phase in PHASES:
            enter("settle")
            if phase == "event":
                stats.stalling = False
                stats.resume.set()  # last round's stalled clients read (and catch up) again
                await mode(False)
            elif phase == "batch":
                await mode(True)
            else:
                stats.resume = asyncio.Event()
                stats.stalling = True
                note(f"round {k + 1}: {n_stalled} clients stop reading")
            await asyncio.sleep(settle)
            enter(phase)
            cpu0 = cpu_seconds()
            await asyncio.sleep(args.duration)
            cpu[phase] += cpu_seconds() - cpu0
    enter("done")
    stats.stalling = False
    seconds = args.duration * args.rounds
    result = {p: figures(stats, p, seconds, cpu[p]) for p in PHASES}
    for phase in PHASES:
        note(phase, json.dumps(result[phase]))
    stats.resume.set()
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    for ws, stalls in sockets:
        if stalls and ws._conn is not None and ws._conn.transport is not None:
            ws._conn.transport.resume_reading()  # so the close handshake can complete
    async with asyncio.timeout(30):
        await asyncio.gather(*(ws.close() for ws, _ in sockets), return_exceptions=True)
    await normal.close()
    await slow.close()
    before, after = result["event"]["p99_ms"], result["batch"]["p99_ms"]
    p99_others = result["batch"]["p99_others_ms"]
    p99_stalled = result["stalled"]["p99_others_ms"]
    ratio = round(p99_stalled / p99_others, 3) if p99_others else float("nan")
    return {
        "bench": "ws_fanout",
        "clients": args.clients,
        "servers": 12,
        "interval_s": args.interval,
        "duration_s": args.duration,
        "rounds": args.rounds,
        "stalled": n_stalled,
        **result,
        "p50_ms": result["batch"]["p50_ms"],
        "p99_ms": after,
        "p99_per_event_ms": before,
        "p99_speedup": round(before / after, 2) if after else float("nan"),
        "stalled_p99_ratio": ratio,
        "gaps": stats.gaps,
        "target_p99_ms": TARGET_P99_MS,
        "target_stalled_p99_ratio": TARGET_STALL_RATIO,
        "pass": after <= TARGET_P99_MS
        and p99_stalled <= TARGET_P99_MS
        and ratio <= TARGET_STALL_RATIO
        and stats.gaps == 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=1.0, help="[sampling] interval, s")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per phase")
    parser.add_argument("--rounds", type=int, default=3, help="event/batch/stalled rounds")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--stalled", type=float, default=0.05, help="fraction, last phase")
    parser.add_argument("--client", nargs=2, metavar=("URL", "TOKEN"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        args.url, args.token = args.client
        print(json.dumps(run(clients(args))), flush=True)
    else:
        print(json.dumps(run(serve(args))), flush=True)


if __name__ == "__main__":
    main()
