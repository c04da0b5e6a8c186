"""Several cores as the issue deploys them: three `dragonopsd serve` processes on one fresh
PostgreSQL database and one Redis prefix, against a counting HTTP target that also receives
the webhook notifications."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

from cluster_helpers import (
    DEAD_AFTER,
    INTERVAL,
    SIGNING_SECRET,
    Hits,
    Watcher,
    alive,
    call,
    no_doubles,
    start_core,
    wait_for,
)
from daemon import Daemon
from pg import fresh_database
from redis_helpers import SHARED_URL

from dragonopsd.cluster.rendezvous import owner

MONITORS = 24
SLACK = 2.0  # s: heartbeat period, scheduling jitter, probe time on a busy 2-CPU machine
NAMES = ["core-a", "core-b", "core-c"]


def etag_of(d: Daemon, token: str, path: str) -> tuple[int, str, str]:
    """(status, ETag, body) of a GET."""
    req = urllib.request.Request(d.url + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, resp.headers["ETag"], resp.read().decode()


def downs(hits: Hits, monitor_id: str) -> list[str]:
    """The "down" webhook deliveries the receiver got for one monitor."""
    with hits.lock:
        bodies = [json.loads(b) for b in hits.posts["/hook"]]
    return [b["event"] for b in bodies if monitor_id in json.dumps(b) and b["event"] == "down"]


def test_three_cores_on_one_postgres_database(
    tmp_path: Path, redis_prefix: str, target: tuple[str, Hits]
) -> None:
    base, hits = target
    with fresh_database() as url:
        first = start_core(tmp_path, "core-a", SHARED_URL, redis_prefix, None, storage_url=url)
        token = first.token
        key = first.state_dir / "secrets.key"
        cores = [first]
        watchers: list[Watcher] = []
        try:
            for name in NAMES[1:]:
                cores.append(
                    start_core(tmp_path, name, SHARED_URL, redis_prefix, key, storage_url=url)
                )
            by_name = dict(zip(NAMES, cores, strict=True))

            # A write on one core is read back at once on another, with the same ETag.
            status, made = call(first, token, "POST", "/api/clients", {"name": "Acme"})
            assert status == 201, made
            path = f"/api/clients/{made['id']}"
            _, tag_a, body_a = etag_of(first, token, path)
            status, tag_b, body_b = etag_of(cores[1], token, path)
            assert status == 200 and tag_a == tag_b and body_a == body_b
            status, patched = call(cores[2], token, "PATCH", path, {"name": "Acme Corp"})
            assert status == 200, patched
            assert etag_of(first, token, path)[1] == etag_of(cores[2], token, path)[1] != tag_a

            # The webhook secret is sealed on core-c; whichever core notifies opens it.
            channel = {"url": base + "/hook", "secret": SIGNING_SECRET}
            status, ch = call(
                cores[2],
                token,
                "POST",
                "/api/notifications",
                {"name": "ops", "kind": "webhook", "config": channel},
            )
            assert status == 201 and ch["hasSecret"], ch

            paths = [f"/m/{i}" for i in range(MONITORS)]
            for i, p in enumerate(paths):
                body = {"name": f"m{i}", "kind": "http", "url": base + p, "interval": INTERVAL}
                status, created = call(cores[i % 3], token, "POST", "/api/monitors", body)
                assert status == 201, created
            wait_for(
                "three cores sharing every monitor",
                lambda: (o := alive(first, token)) and len(o) == 3 and sum(o.values()) == MONITORS,
                30,
            )
            owned = alive(first, token)
            assert all(n > 0 for n in owned.values()), owned
            for d in cores:
                assert alive(d, token) == owned

            # Steady state: every monitor once per interval, never twice.
            time.sleep(INTERVAL + SLACK)
            start = time.time()
            time.sleep(4 * INTERVAL)
            window = hits.between(start, time.time())
            assert set(window) == set(paths), sorted(set(paths) - set(window))
            assert not no_doubles(window)
            for p, times in window.items():
                assert 3 <= len(times) <= 5, (p, times)

            # One outage: one incident, one notification, and every core's websocket sees
            # the status its owner decided.
            watchers = [Watcher(d, token, "monitors") for d in cores]
            body = {"name": "down", "kind": "http", "url": base + "/down/0", "interval": INTERVAL}
            status, down = call(first, token, "POST", "/api/monitors", body)
            assert status == 201, down
            incidents = f"/api/incidents?monitorId={down['id']}"
            wait_for("the incident", lambda: call(first, token, "GET", incidents)[1]["items"], 15)
            wait_for("the notification", lambda: downs(hits, down["id"]), 15)
            victim_name = str(owner(down["id"], NAMES))
            for name, w in zip(NAMES, watchers, strict=True):
                wait_for(
                    f"monitor.status on {name}",
                    lambda w=w: any(
                        f["event"] == "monitor.status"
                        and f["data"]["monitorId"] == down["id"]
                        and f["data"]["status"] == "down"
                        for f in w.frames
                    ),
                    10,
                )
            assert hits.bad_signatures == 0  # signed with the secret core-c sealed

            # kill -9 of the owner: its monitors are checked again within dead_after + one
            # interval, the incident carries on and nobody notifies a second time.
            victim = by_name[victim_name]
            survivors = [d for d in cores if d is not victim]
            victim.kill()
            killed = time.time()
            time.sleep(DEAD_AFTER + INTERVAL + SLACK)
            after = hits.between(killed, time.time())
            every = [*paths, "/down/0"]
            assert set(every) <= set(after), sorted(set(every) - set(after))
            wait_for(
                "the killed core gone",
                lambda: set(alive(survivors[0], token)) == set(NAMES) - {victim_name},
                10,
            )
            start = time.time()
            time.sleep(3 * INTERVAL)
            window = hits.between(start, time.time())
            assert set(every) <= set(window)
            assert not no_doubles(window)
            for d in survivors:
                status, found = call(d, token, "GET", incidents)
                assert [i["closedAt"] for i in found["items"]] == [None], found
            assert len(downs(hits, down["id"])) == 1

            # The killed core restarts under its name: it rejoins and takes its share back.
            config = tmp_path / f"{victim_name}.toml"
            back = Daemon(victim.state_dir, "--config", str(config), port=victim.port)
            cores.append(back)
            back.wait_listening(60)
            wait_for(
                "the restarted core rejoining",
                lambda: (
                    (o := alive(back, token)) and len(o) == 3 and sum(o.values()) == MONITORS + 1
                ),
                30,
            )
            time.sleep(INTERVAL + SLACK)
            start = time.time()
            time.sleep(3 * INTERVAL)
            window = hits.between(start, time.time())
            assert set(every) <= set(window)
            assert not no_doubles(window)
            status, found = call(back, token, "GET", incidents)
            assert [i["closedAt"] for i in found["items"]] == [None], found
            assert len(downs(hits, down["id"])) == 1
            assert hits.bad_signatures == 0
        finally:
            for w in watchers:
                w.close()
            for d in cores:
                d.kill()
