"""Hot-path throughput of MaintenanceService.active_for: 10,000 monitor scopes x 100 windows.

    python tests/bench/maintenance.py [--rounds R]

No database: the service loads from an in-memory stand-in for its store. A third of the windows
are in force at the benchmark's clock (one-off and recurring, scoped to monitors, servers,
environments, projects and clients; one covers everything but is disabled). Each round asks
once for every scope while the clock advances 3 ms a call, as a scheduler's would; the last
line on stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from dragonopsd.model.monitor import Scope
from dragonopsd.monitoring.maintenance import MaintenanceService
from dragonopsd.store.maintenance import Window, WindowSpec, iso

SCOPES = 10_000
WINDOWS = 100
CLIENTS, PROJECTS, ENVIRONMENTS, SERVERS = 10, 40, 120, 1_000
NOW = datetime(2027, 6, 6, 12, 0, tzinfo=UTC)


def _ids(n: int) -> list[str]:
    return [str(uuid.UUID(int=random.getrandbits(128), version=4)) for _ in range(n)]


def _scopes() -> list[Scope]:
    clients, projects = _ids(CLIENTS), _ids(PROJECTS)
    envs, servers = _ids(ENVIRONMENTS), _ids(SERVERS)
    project_client = {p: random.choice(clients) for p in projects}
    env_project = {e: random.choice(projects) for e in envs}
    server_env = {s: random.choice(envs) for s in servers}
    out = []
    for _ in range(SCOPES):
        server = random.choice(servers)
        env = server_env[server]
        project = env_project[env]
        out.append(Scope(str(uuid.uuid4()), (), server, env, project, project_client[project]))
    return out


def _windows(scopes: list[Scope]) -> list[Window]:
    levels = [
        ("monitorIds", "monitor_id"),
        ("serverIds", "server_id"),
        ("environmentIds", "environment_id"),
        ("projectIds", "project_id"),
        ("clientIds", "client_id"),
    ]
    windows = []
    for i in range(WINDOWS):
        key, attr = levels[i % len(levels)]
        scope: dict[str, Any] = {key: list({getattr(random.choice(scopes), attr)})}
        active = i % 3 == 0
        if i % 2:
            start = NOW - timedelta(hours=1) if active else NOW + timedelta(days=i)
            timing: dict[str, Any] = {
                "kind": "one-off",
                "startsAt": iso(start),
                "endsAt": iso(start + timedelta(hours=2)),
            }
        else:  # daily at 11:00 Berlin (09:00 UTC) for 4 h covers NOW; 01:00 does not
            hour = 11 if active else 1
            timing = {"kind": "recurring", "cron": f"0 {hour} * * *", "duration": 14_400}
            timing["timezone"] = "Europe/Berlin"
        if i == WINDOWS - 1:
            scope, timing["enabled"] = {"all": True}, False
        spec = msgspec.convert({"name": f"w{i:03d}", "scope": scope, **timing}, WindowSpec)
        wire = msgspec.to_builtins(spec)
        windows.append(
            msgspec.convert(
                {**wire, "id": str(uuid.uuid4()), "createdAt": iso(NOW), "updatedAt": iso(NOW)},
                Window,
            )
        )
    return windows


class _Store:
    """Stands in for MaintenanceStore: the service only calls all() to load."""

    def __init__(self, windows: list[Window]) -> None:
        self.windows = windows

    async def all(self) -> list[Window]:
        return self.windows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    random.seed(7)
    scopes = _scopes()
    svc = MaintenanceService(_Store(_windows(scopes)))  # type: ignore[arg-type]
    asyncio.run(svc.load())
    now = NOW.timestamp()
    check = svc.active_for
    hits = sum(check(s, now) is not None for s in scopes)  # also warms the cache
    start = time.perf_counter()
    for _ in range(args.rounds):
        for scope in scopes:
            check(scope, now)
            now += 0.003
    elapsed = time.perf_counter() - start
    calls = args.rounds * len(scopes)
    print(
        json.dumps(
            {
                "bench": "maintenance.active_for",
                "scopes": len(scopes),
                "windows": WINDOWS,
                "in_maintenance": hits,
                "calls": calls,
                "calls_per_s": round(calls / elapsed),
                "us_per_call": round(elapsed / calls * 1e6, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
