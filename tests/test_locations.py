"""GET /api/locations lists the remote probe locations that have a live worker (a real
`dragonopsd probe` process on a real Redis), so the dashboard can offer them on a monitor."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from conftest import Client
from probe_workers import ProbeWorker
from redis_helpers import SHARED_URL

MakeClient = Callable[..., Awaitable[Client]]


async def listed(client: Client) -> list[dict[str, Any]]:
    resp = await client.get("/api/locations")
    assert resp.status == 200, await resp.text()
    return list((await resp.json())["items"])


async def until(client: Client, want: list[dict[str, Any]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (got := await listed(client)) != want:
        assert time.monotonic() < deadline, f"locations {got}, expected {want}"
        await asyncio.sleep(0.2)


async def test_without_redis_there_are_no_remote_locations(client: Client) -> None:
    assert await listed(client) == []


async def test_a_worker_lists_its_location_while_it_runs(
    make_client: MakeClient, redis_prefix: str, tmp_path: Path
) -> None:
    client = await make_client(redis={"url": SHARED_URL, "prefix": redis_prefix})
    assert await listed(client) == []
    eu = ProbeWorker(tmp_path, SHARED_URL, redis_prefix, "eu-west", "eu-1")
    eu2 = ProbeWorker(tmp_path, SHARED_URL, redis_prefix, "eu-west", "eu-2")
    us = ProbeWorker(tmp_path, SHARED_URL, redis_prefix, "us-east", "us-1")
    try:
        both = [{"name": "eu-west", "workers": 2}, {"name": "us-east", "workers": 1}]
        await until(client, both, 30)
        assert await asyncio.to_thread(us.stop) == 0
        await until(client, [{"name": "eu-west", "workers": 2}], 15)
    finally:
        for w in (eu, eu2, us):
            w.kill()
