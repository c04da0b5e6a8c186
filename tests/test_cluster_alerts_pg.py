"""Resource alerts with several cores: three `dragonopsd serve` processes on one fresh
PostgreSQL database and one Redis prefix. An agent's samples land on whichever core it
reaches; the server's owner alone judges them, so one breach opens one alert incident and
sends one webhook notification, and the core that takes over from a killed owner carries on
with that incident instead of notifying again."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from cluster_helpers import (
    DEAD_AFTER,
    SIGNING_SECRET,
    Hits,
    alive,
    call,
    start_core,
    wait_for,
)
from daemon import Daemon
from pg import fresh_database
from redis_helpers import SHARED_URL

from dragonopsd.cluster.rendezvous import owner

NAMES = ["core-a", "core-b", "core-c"]
QUIET = {"cpu": 5.0, "memory": 30.0, "load": 0.1, "disk": 40.0, "netIn": 1.0, "netOut": 1.0}


def notices(hits: Hits, sid: str) -> list[dict[str, Any]]:
    """The webhook deliveries about the server's alerts, in arrival order."""
    with hits.lock:
        bodies = [json.loads(b) for b in hits.posts["/hook"]]
    return [b for b in bodies if sid in json.dumps(b)]


def events(hits: Hits, sid: str, event: str) -> list[dict[str, Any]]:
    return [b for b in notices(hits, sid) if b["event"] == event]


def push(d: Daemon, token: str, sid: str, cpu: float) -> None:
    status, body = call(d, token, "POST", f"/api/servers/{sid}/samples", {**QUIET, "cpu": cpu})
    assert status == 202, body


def incidents(d: Daemon, token: str, sid: str) -> list[dict[str, Any]]:
    status, body = call(d, token, "GET", f"/api/servers/{sid}/alerts")
    assert status == 200, body
    found: list[dict[str, Any]] = body["incidents"]
    return found


def inventory(d: Daemon, token: str) -> str:
    """A client -> project -> environment -> agent server chain; the server's id."""

    def post(path: str, body: dict[str, Any]) -> str:
        status, made = call(d, token, "POST", path, body)
        assert status == 201, made
        ident: str = made["id"]
        return ident

    client = post("/api/clients", {"name": "Acme"})
    project = post("/api/projects", {"clientId": client, "name": "Portal"})
    env = post("/api/environments", {"projectId": project, "name": "Production"})
    sid = post("/api/servers", {"environmentId": env, "name": "web-1", "type": "web"})
    status, patched = call(d, token, "PATCH", f"/api/servers/{sid}", {"sampling": "agent"})
    assert status == 200, patched
    return sid


def test_one_alert_and_one_notification_whichever_core_takes_the_samples(
    tmp_path: Path, redis_prefix: str, target: tuple[str, Hits]
) -> None:
    base, hits = target
    with fresh_database() as url:
        first = start_core(tmp_path, "core-a", SHARED_URL, redis_prefix, None, storage_url=url)
        token = first.token
        key = first.state_dir / "secrets.key"
        cores = [first]
        try:
            channel = {"url": base + "/hook", "secret": SIGNING_SECRET}
            status, ch = call(
                first,
                token,
                "POST",
                "/api/notifications",
                {"name": "ops", "kind": "webhook", "config": channel},
            )
            assert status == 201, ch
            sid = inventory(first, token)
            rule = {"name": "cpu hot", "metric": "cpu", "threshold": 90, "serverId": sid}
            status, made = call(first, token, "POST", "/api/alert-rules", rule)
            assert status == 201, made
            for name in NAMES[1:]:
                cores.append(
                    start_core(tmp_path, name, SHARED_URL, redis_prefix, key, storage_url=url)
                )
            by_name = dict(zip(NAMES, cores, strict=True))
            # Every core sees the other two before the samples come, so that the owner below is
            # the one every core agrees on (the core killed mid-breach). While one core's view
            # still lacks a member it judges that member's servers too; the database then lets
            # one of them open the incident and notify (test_alerts_cluster.py forces that).
            for c in cores:
                wait_for("three live cores", lambda c=c: len(alive(c, token)) == 3, 30)

            # A rule written on one core is in force on every core.
            status, later = call(
                cores[1], token, "POST", "/api/alert-rules", {**rule, "name": "cpu hotter"}
            )
            assert status == 201, later
            for d in cores:
                wait_for(
                    "the rule on every core",
                    lambda d=d: (
                        later["id"]
                        in {r["id"] for r in call(d, token, "GET", "/api/alert-rules")[1]["items"]}
                    ),
                    10,
                )
            # Deleted on one core: the samples may come before the others reload their rules,
            # and the deleted rule opens nothing (its stored row is gone) nor notifies.
            status, _ = call(cores[1], token, "DELETE", f"/api/alert-rules/{later['id']}")
            assert status == 204
            # An agent behind a balancer: its samples alternate between the two non-owners.
            boss = str(owner(sid, NAMES))
            others = [by_name[n] for n in NAMES if n != boss]
            for i in range(6):
                push(others[i % 2], token, sid, 97.0)
                time.sleep(0.2)
            wait_for("the firing notification", lambda: events(hits, sid, "down"), 15)
            time.sleep(1.5)  # a second core's duplicate would have landed by now
            assert len(events(hits, sid, "down")) == 1, notices(hits, sid)
            found = incidents(others[0], token, sid)
            assert [i["closedAt"] for i in found] == [None], found
            status, states = call(others[1], token, "GET", f"/api/servers/{sid}/alerts")
            assert [r["state"] for r in states["rules"]] == ["firing"], states

            # kill -9 of the owner mid-breach: the breach goes on; whoever owns the server
            # now carries on with the open incident and sends nothing new.
            by_name[boss].kill()
            deadline = time.monotonic() + DEAD_AFTER + 3
            while time.monotonic() < deadline:
                for d in others:
                    push(d, token, sid, 98.0)
                time.sleep(0.5)
            wait_for(
                "the owner gone",
                lambda: set(alive(others[0], token)) == set(NAMES) - {boss},
                10,
            )
            for d in others:
                push(d, token, sid, 99.0)
            time.sleep(1.5)
            assert len(events(hits, sid, "down")) == 1, notices(hits, sid)
            found = incidents(others[1], token, sid)
            assert [i["closedAt"] for i in found] == [None], found

            # The breach ends at the non-owner of the two: one "resolved", same incident.
            survivors = [n for n in NAMES if n != boss]
            heir = str(owner(sid, survivors))
            push(next(by_name[n] for n in survivors if n != heir), token, sid, 10.0)
            wait_for("the resolved notification", lambda: events(hits, sid, "up"), 15)
            time.sleep(1.0)
            ups, downs = events(hits, sid, "up"), events(hits, sid, "down")
            assert len(ups) == 1 and len(downs) == 1, notices(hits, sid)
            assert ups[0]["incidentId"] == downs[0]["incidentId"], (ups, downs)
            found = incidents(others[0], token, sid)
            assert len(found) == 1 and found[0]["closedAt"] is not None, found
            assert hits.bad_signatures == 0
        finally:
            for d in cores:
                d.kill()
