"""CPU per check of the service kinds against the machine's servers, beside an HTTP check.

    python tests/bench/kinds.py [--checks N] [--concurrency C]

Runs N checks of each kind through run_probe (the scheduler's entry point), C at a time, in
this one process, against PostgreSQL (127.0.0.1:5432, user postgres), Redis (6379), Mosquitto
(1883) and a local aiohttp server (the HTTP baseline). CPU is this process's user+system time
(time.process_time) over the run, divided by N: what one check costs the daemon, not the
server. Progress goes to stderr; the last line on stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

import msgspec
from aiohttp import web

from dragonopsd.config import ProbesConfig
from dragonopsd.model.monitor import MonitorSpec
from dragonopsd.monitoring.probes import AddressGuard, ProbeEnv, make_session, run_probe


async def measure(
    env: ProbeEnv, spec: MonitorSpec, checks: int, concurrency: int
) -> dict[str, Any]:
    gate = asyncio.Semaphore(concurrency)
    failures = 0

    async def one() -> None:
        nonlocal failures
        async with gate:
            result = await run_probe(spec, env)
            failures += result.error is not None

    await asyncio.gather(*(one() for _ in range(min(20, checks))))  # warm-up
    failures = 0
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(checks)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "cpu_ms_per_check": round(cpu / checks * 1000, 3),
        "checks_per_s": round(checks / wall, 1),
        "failures": failures,
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checks", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    app = web.Application()

    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_get("/", ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    cfg = msgspec.convert({}, ProbesConfig)
    guard = AddressGuard(cfg)
    session = make_session(cfg, guard)
    env = ProbeEnv(session, guard)
    kinds = {
        "http": {"kind": "http", "url": f"http://127.0.0.1:{port}/"},
        "postgres": {"kind": "postgres", "host": "127.0.0.1", "username": "postgres"},
        "redis": {"kind": "redis", "host": "127.0.0.1"},
        "mqtt": {"kind": "mqtt", "host": "127.0.0.1"},
    }
    report: dict[str, Any] = {"checks": args.checks, "concurrency": args.concurrency}
    try:
        for name, fields in kinds.items():
            spec = msgspec.convert({"name": name, **fields, "timeout": 10}, MonitorSpec)
            report[name] = await measure(env, spec, args.checks, args.concurrency)
            print(name, report[name], file=sys.stderr)
    finally:
        await session.close()
        await runner.cleanup()
    base = report["http"]["cpu_ms_per_check"]
    for name in ("postgres", "redis", "mqtt"):
        report[name]["cpu_vs_http"] = round(report[name]["cpu_ms_per_check"] / base, 2)
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main())
