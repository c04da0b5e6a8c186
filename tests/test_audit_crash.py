"""kill -9 during a stream of writes: no change is ever committed without its audit entry."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiohttp
from daemon import Daemon

WRITERS = 16  # requests in flight at once: the moment of the kill finds several mid-write
ACKED = 600  # creates acknowledged before the kill


async def _stream_then_kill(daemon: Daemon) -> int:
    """Create clients from WRITERS connections; kill -9 the daemon once ACKED were answered."""
    acked = 0
    enough = asyncio.Event()
    headers = {"Authorization": f"Bearer {daemon.token}"}

    async def writer(http: aiohttp.ClientSession, n: int) -> None:
        nonlocal acked
        for i in range(1_000_000):
            try:
                async with http.post(f"{daemon.url}/api/clients", json={"name": f"c{n}-{i}"}) as r:
                    assert r.status == 201, await r.text()
            except aiohttp.ClientError:
                return  # the daemon is gone
            acked += 1
            if acked >= ACKED:
                enough.set()

    async with aiohttp.ClientSession(headers=headers) as http:
        tasks = [asyncio.create_task(writer(http, n)) for n in range(WRITERS)]
        done, _ = await asyncio.wait(
            [asyncio.create_task(enough.wait()), *tasks],
            timeout=120,
            return_when=asyncio.FIRST_COMPLETED,
        )
        for task in done:
            task.result()  # a writer that failed fails the test here
        assert enough.is_set(), f"only {acked} creates in 120 s"
        daemon.proc.kill()  # SIGKILL: no drain, no flush, no cleanup
        daemon.proc.wait(10)
        await asyncio.gather(*tasks)
    return acked


async def test_kill_9_during_creates_leaves_every_change_with_its_entry(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with Daemon(state) as daemon:
        daemon.wait_listening()
        acked = await _stream_then_kill(daemon)
    conn = sqlite3.connect(state / "dragonops.db")
    try:
        committed = conn.execute("SELECT COUNT(*) FROM clients").fetchone()[0]
        orphans = conn.execute(
            "SELECT c.id FROM clients c WHERE NOT EXISTS (SELECT 1 FROM audit_log a "
            "WHERE a.entity = 'clients' AND a.entity_id = c.id AND a.method = 'POST')"
        ).fetchall()
        entries = conn.execute(
            "SELECT COUNT(*) FROM audit_log WHERE entity = 'clients' AND method = 'POST'"
        ).fetchone()[0]
    finally:
        conn.close()
    assert committed >= acked  # every acknowledged create survived the kill
    assert orphans == [], f"{len(orphans)} of {committed} committed clients have no audit entry"
    assert entries == committed  # and no entry for a change that did not commit
