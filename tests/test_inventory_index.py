"""The inventory index: one in-memory view of the hierarchy that the engine's root causes, the
sampler and the metric labels read, refreshed after inventory writes and surviving failed reads."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from conftest import Client, post
from test_engine import http_monitor, serve
from test_metrics import samples

from dragonopsd.appkeys import DATABASE, SAMPLER

MakeClient = Callable[..., Awaitable[Client]]
pytestmark = pytest.mark.backends


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    """Poll check until it returns something truthy; fail after timeout."""
    deadline = time.monotonic() + timeout
    while not (got := await check()):
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)
    return got


def _rename_in_file(path: Path, sql: str) -> None:
    conn = sqlite3.connect(path, timeout=10, isolation_level=None)
    try:
        conn.execute(sql)
    finally:
        conn.close()


async def rename_column(app: web.Application, url: str, table: str, old: str, new: str) -> None:
    """What an operator's SQL session (or a half-applied upgrade) does to the database: a
    column the daemon reads disappears until it is renamed back."""
    sql = f"ALTER TABLE {table} RENAME COLUMN {old} TO {new}"
    if not url:
        await asyncio.to_thread(_rename_in_file, app[DATABASE].path, sql)
        return
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def failed_reads(caplog: pytest.LogCaptureFixture) -> int:
    return sum(
        1
        for r in caplog.records
        if r.name.startswith("dragonopsd")
        and r.exc_info is not None
        and isinstance(r.exc_info[1], (sqlite3.OperationalError, asyncpg.UndefinedColumnError))
    )


async def test_a_failed_refresh_is_retried_and_later_changes_reach_every_reader(
    make_client: MakeClient,
    storage_url: str,
    aiohttp_server: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = await make_client(sampling={"interval": 0.2})
    c = await post(client, "/api/clients", {"name": "Acme"})
    p = await post(client, "/api/projects", {"clientId": c["id"], "name": "Portal"})
    e = await post(client, "/api/environments", {"projectId": p["id"], "name": "Production"})
    web1 = await post(client, "/api/servers", {"environmentId": e["id"], "name": "web-1"})

    # The servers table loses a column every reader of the hierarchy needs; the next
    # inventory write makes them read it, and the read fails (more than once: it is retried).
    caplog.set_level(logging.WARNING, logger="dragonopsd")
    await rename_column(client.app, storage_url, "servers", "status", "status_held")
    resp = await client.patch(f"/api/clients/{c['id']}", json={"name": "Acme Corp"})
    assert resp.status == 200
    await until(lambda: _true(failed_reads(caplog) >= 2))
    await rename_column(client.app, storage_url, "servers", "status_held", "status")

    # The next changes reach all three readers.
    resp = await client.patch(f"/api/servers/{web1['id']}", json={"status": "stopped"})
    assert resp.status == 200
    resp = await client.patch(f"/api/environments/{e['id']}", json={"name": "Production EU"})
    assert resp.status == 200
    web2 = await post(client, "/api/servers", {"environmentId": e["id"], "name": "web-2"})

    place = {"client": "Acme Corp", "project": "Portal", "environment": "Production EU"}

    async def labelled() -> bool:
        found = samples(await (await client.get("/metrics")).text())
        up = {"server_id": web1["id"], "server": "web-1", **place}
        return any(
            n == "dragonops_server_up" and set(up.items()) <= lb and v == 0.0
            for (n, lb), v in found.items()
        )

    await until(labelled)  # metrics: names and status written after the failure
    sampler = client.app[SAMPLER]
    await until(lambda: _true(sampler.latest(web2["id"]) is not None))  # sampler: new server

    async def failing(request: web.Request) -> web.Response:
        return web.Response(status=502)

    # Made now, so that no check ran before the server stopped: the incident it opens names
    # the root cause the engine finds in the inventory as it is now.
    url = await serve(aiohttp_server, "/h", failing)
    m = await post(client, "/api/monitors", http_monitor(url, interval=60, serverId=web1["id"]))
    report = await (await client.post(f"/api/monitors/{m['id']}/check")).json()
    assert report["status"] == "down"
    [incident] = (await (await client.get("/api/incidents")).json())["items"]
    # engine: the root cause comes from the server's status written after the failure
    assert incident["rootCause"] == f"server web-1 ({web1['id']}) is stopped"


async def _true(value: bool) -> bool:
    return value
