"""Remote probe workers through a real Redis, with real processes: a core, `dragonopsd probe`
workers in two locations, kill -9 of a worker and of the core, and a Redis outage."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import redis
from daemon import Daemon
from probe_workers import CORE, ProbeWorker, StreamTail, Target, api, wait_for, write_config
from redis_helpers import SHARED_URL, PrivateRedis
from websockets.sync.client import connect

PROBES_DENY_LOOPBACK = '[probes]\ndeny_cidrs = ["127.0.0.0/8"]\n'


def monitor(d: Daemon, name: str, url: str, locations: list[str], **extra: Any) -> Any:
    body = {"name": name, "kind": "http", "url": url, "locations": locations, **extra}
    return api(d, "POST", "/api/monitors", {"interval": 2, "timeout": 1, **body})


def state(d: Daemon, monitor_id: str) -> Any:
    return next(
        s for s in api(d, "GET", "/api/monitoring")["items"] if s["monitorId"] == monitor_id
    )


def events(ws: Any, until_kind: str, timeout: float) -> dict[str, Any]:
    """Frames from the socket until one of until_kind (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"no {until_kind} within {timeout}s"
        frame = json.loads(ws.recv(timeout=left))
        if frame.get("type") == "event" and frame.get("kind", frame.get("event")) == until_kind:
            return dict(frame)
        if frame.get("type") == "event" and frame["data"].get("status") == "down":
            return dict(frame)


def test_quorum_decides_and_websocket_clients_see_it(tmp_path: Path, redis_prefix: str) -> None:
    """eu reaches the target, us is refused loopback: with quorum 2 the monitor stays up
    (one failure is not enough), with quorum 1 it is down from us; when the target fails
    for both, the quorum-2 monitor goes down and a websocket client hears it."""
    target = Target()
    cfg = write_config(tmp_path / "core.toml", SHARED_URL, redis_prefix)
    us_cfg = write_config(tmp_path / "us.toml", SHARED_URL, redis_prefix, PROBES_DENY_LOOPBACK)
    with Daemon(tmp_path / "state", "--config", str(cfg)) as d:
        d.wait_listening()
        eu = ProbeWorker(tmp_path, SHARED_URL, redis_prefix, "eu", "eu-1")
        us = ProbeWorker(tmp_path, SHARED_URL, redis_prefix, "us", "us-1", config=us_cfg)
        try:
            strict = monitor(d, "strict", target.url, ["eu", "us"])
            loose = monitor(d, "loose", target.url, ["eu", "us"], quorum=1)
            split = {"eu": "up", "us": "down"}
            up = wait_for(lambda: (s := state(d, strict["id"]))["locations"] == split and s, 20,
                          "strict monitor checked from both locations")  # fmt: skip
            assert up["status"] == "up" and "failing from us only" in up["message"]
            down = wait_for(lambda: (s := state(d, loose["id"]))["status"] == "down" and s, 10,
                            "quorum-1 monitor down")  # fmt: skip
            assert "down from us (1 of 2 locations, quorum 1)" in down["message"]
            headers = {"Authorization": f"Bearer {d.token}"}
            with connect(d.url.replace("http", "ws") + "/api/ws", additional_headers=headers) as ws:
                ws.send(json.dumps({"op": "subscribe", "topics": [f"monitors.{strict['id']}"]}))
                target.status = 500
                frame = _status_event(ws, 20)
            assert frame["data"]["status"] == "down"
            assert frame["data"]["failedLocations"] == ["eu", "us"]
            assert "quorum 2" in frame["data"]["message"]
            incidents = api(d, "GET", f"/api/incidents?monitorId={strict['id']}")["items"]
            assert incidents and incidents[0]["locations"] == ["eu", "us"]
        finally:
            eu.stop()
            us.stop()
            target.close()


def test_workers_whose_clocks_are_off_still_count(tmp_path: Path, redis_prefix: str) -> None:
    """One worker's clock 45 s ahead, another's 45 s behind (libfaketime): both count as
    alive, neither drops its jobs as expired, and their checks land in history at the core's
    time, because every time that crosses hosts is kept in Redis's clock."""
    target = Target()
    cfg = write_config(tmp_path / "core.toml", SHARED_URL, redis_prefix)
    r = redis.Redis.from_url(SHARED_URL)
    with Daemon(tmp_path / "state", "--config", str(cfg)) as d:
        d.wait_listening()
        ahead = ProbeWorker(tmp_path, SHARED_URL, redis_prefix, "eu", "eu-1", clock="+45s")
        behind = ProbeWorker(tmp_path, SHARED_URL, redis_prefix, "us", "us-1", clock="-45s")
        try:
            wait_for(lambda: r.zcard(f"{redis_prefix}:workers:eu")
                     and r.zcard(f"{redis_prefix}:workers:us"), 10, "both heartbeats")  # fmt: skip
            time.sleep(1.2)  # the core's liveness cache
            m = monitor(d, "skewed", target.url, ["eu", "us"])
            both_up = {"eu": "up", "us": "up"}
            try:
                s = wait_for(lambda: (s := state(d, m["id"]))["locations"] == both_up and s, 20,
                             "both locations answering")  # fmt: skip
            except AssertionError:
                raise AssertionError(f"{state(d, m['id'])}\n{ahead.log}\n{behind.log}") from None
            assert s["status"] == "up"
            time.sleep(4.5)  # a couple more rounds
            beats = api(d, "GET", f"/api/monitors/{m['id']}/heartbeats?limit=10")["items"]
            now = time.time()
            assert len(beats) >= 4 and all(b["status"] == "up" for b in beats), beats
            assert all(abs(now - b["at"]) < 12 for b in beats), (now, beats)
            assert "expired" not in ahead.log + behind.log
        finally:
            ahead.stop()
            behind.stop()
            target.close()
            r.close()


def test_body_conditions_are_judged_on_results_from_afar(tmp_path: Path, redis_prefix: str) -> None:
    """A worker sends the response body along only for monitors whose conditions read it:
    [BODY] conditions still decide remote checks, and the others' results travel light."""
    target = Target()
    cfg = write_config(tmp_path / "core.toml", SHARED_URL, redis_prefix)
    r = redis.Redis.from_url(SHARED_URL)
    tail = StreamTail(SHARED_URL, f"{redis_prefix}:results:{CORE}")
    with Daemon(tmp_path / "state", "--config", str(cfg)) as d:
        d.wait_listening()
        worker = ProbeWorker(tmp_path, SHARED_URL, redis_prefix, "eu", "eu-1")
        try:
            wait_for(lambda: r.zcard(f"{redis_prefix}:workers:eu"), 10, "worker heartbeat")
            time.sleep(1.2)
            good = monitor(d, "good", target.url, ["eu"], conditions=["[BODY] == ok"])
            bad = monitor(d, "bad", target.url, ["eu"], conditions=["[body] == nope"])
            plain = monitor(d, "plain", target.url, ["eu"], conditions=["[STATUS] == 200"])
            try:
                wait_for(lambda: state(d, good["id"])["status"] == "up", 15, "[BODY] == ok up")
            except AssertionError:
                raise AssertionError(f"{state(d, good['id'])}\n{worker.log}") from None
            down = wait_for(lambda: (s := state(d, bad["id"]))["status"] == "down" and s, 15,
                            "[body] == nope down")  # fmt: skip
            assert "nope" in down["message"]
            wait_for(lambda: state(d, plain["id"])["status"] == "up", 15, "status-only up")
        finally:
            worker.stop()
            target.close()
            tail.stop()
            r.close()
    contexts: dict[str, list[dict[str, Any]]] = {m["id"]: [] for m in (good, bad, plain)}
    for _, fields in tail.entries:
        outcome = json.loads(fields[b"result"])
        contexts[outcome["monitor_id"]].append(outcome["context"])
    for m in (good, bad):  # conditions read the body: it came along, whole
        assert contexts[m["id"]] and all(c.get("BODY") == "ok" for c in contexts[m["id"]])
    assert contexts[plain["id"]] and not any("BODY" in c for c in contexts[plain["id"]])


def _status_event(ws: Any, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "no monitor.status event"
        frame = json.loads(ws.recv(timeout=left))
        if frame.get("type") == "event" and frame["data"].get("previous") is not None:
            return dict(frame)


def test_killed_worker_jobs_are_claimed_by_its_peer(tmp_path: Path, redis_prefix: str) -> None:
    target = Target(delay=3.0)
    cfg = write_config(tmp_path / "core.toml", SHARED_URL, redis_prefix)
    r = redis.Redis.from_url(SHARED_URL)
    with Daemon(tmp_path / "state", "--config", str(cfg)) as d:
        d.wait_listening()
        # the workers' config: claim_idle = 2 s
        first = ProbeWorker(tmp_path, SHARED_URL, redis_prefix, "eu", "eu-1", config=cfg)
        second: ProbeWorker | None = None
        try:
            wait_for(lambda: r.zcard(f"{redis_prefix}:workers:eu"), 10, "worker heartbeat")
            time.sleep(1.2)  # the core's liveness cache
            ids = [monitor(d, f"m{i}", target.url, ["eu"], interval=30, timeout=10)["id"]
                   for i in range(6)]  # fmt: skip
            wait_for(lambda: target.hits >= 6, 10, "all six jobs in the first worker's hands")
            first.kill()  # kill -9 with six probes in flight
            second = ProbeWorker(tmp_path, SHARED_URL, redis_prefix, "eu", "eu-2", config=cfg)
            for ident in ids:
                try:
                    s = wait_for(lambda i=ident: (s := state(d, i))["status"] == "up" and s, 15,
                                 "claimed job answered")  # fmt: skip
                except AssertionError:
                    detail = f"{state(d, ident)}\n{second.log}\n{d.log[-3000:]}"
                    raise AssertionError(detail) from None
                assert s["locations"] == {"eu": "up"}
            assert second.log.count("claimed job") >= 6, second.log
            pending = r.xpending(f"{redis_prefix}:jobs:eu", "workers")
            assert pending["pending"] == 0
            # Done jobs are deleted, not left for the trim: they carry the monitors' specs.
            assert r.xlen(f"{redis_prefix}:jobs:eu") == 0
        finally:
            first.kill()
            if second is not None:
                second.stop()
            target.close()
            r.close()


def test_slow_probes_are_not_taken_over_by_a_live_peer(tmp_path: Path, redis_prefix: str) -> None:
    """Probes that run longer than claim_idle (2 s here) stay with the worker running them:
    it renews its claim, so its live peer never runs the same job a second time."""
    target = Target(delay=4.0)
    cfg = write_config(tmp_path / "core.toml", SHARED_URL, redis_prefix)
    r = redis.Redis.from_url(SHARED_URL)
    with Daemon(tmp_path / "state", "--config", str(cfg)) as d:
        d.wait_listening()
        workers = [ProbeWorker(tmp_path, SHARED_URL, redis_prefix, "eu", f"eu-{n}", config=cfg)
                   for n in (1, 2)]  # fmt: skip
        try:
            wait_for(lambda: r.zcard(f"{redis_prefix}:workers:eu") == 2, 10, "two workers")
            time.sleep(1.2)
            ids = [monitor(d, f"m{i}", target.url, ["eu"], interval=60, timeout=10)["id"]
                   for i in range(4)]  # fmt: skip
            for ident in ids:
                wait_for(lambda i=ident: state(d, i)["locations"] == {"eu": "up"}, 20, "answer")
            time.sleep(3)  # a duplicate run would show up by now
            assert target.hits == 4
            assert not any("claimed job" in w.log for w in workers)
        finally:
            for w in workers:
                assert w.stop() == 0
            target.close()
            r.close()


def test_core_killed_mid_stream_loses_no_result(tmp_path: Path, redis_prefix: str) -> None:
    target = Target()
    cfg = write_config(tmp_path / "core.toml", SHARED_URL, redis_prefix)
    state_dir = tmp_path / "state"
    r = redis.Redis.from_url(SHARED_URL)
    # The core deletes each result once stored: keep a copy of all of them as they arrive.
    tail = StreamTail(SHARED_URL, f"{redis_prefix}:results:{CORE}")
    worker = ProbeWorker(tmp_path, SHARED_URL, redis_prefix, "eu", "eu-1")
    try:
        with Daemon(state_dir, "--config", str(cfg)) as d:
            d.wait_listening()
            wait_for(lambda: r.zcard(f"{redis_prefix}:workers:eu"), 10, "worker heartbeat")
            time.sleep(1.2)
            for i in range(20):
                monitor(d, f"m{i}", target.url, ["eu"], interval=1, timeout=0.5)
            wait_for(lambda: len(tail.entries) >= 60, 20, "results streaming")
            d.kill()  # kill -9 while results keep arriving
        time.sleep(1.5)  # the worker still reports the jobs it had
        with Daemon(state_dir, "--config", str(cfg)) as d:
            d.wait_listening()
            time.sleep(2)
            assert worker.stop() == 0
            wait_for(lambda: _consumed(r, redis_prefix), 20, "core caught up with the results")
            assert d.stop() == 0
            # Stored results leave Redis (each carries up to 64 KB of response body).
            assert r.xlen(f"{redis_prefix}:results:{CORE}") == 0
    finally:
        worker.kill()
        target.close()
        tail.stop()
    outcomes = [json.loads(f[b"result"]) for _, f in tail.entries]
    r.close()
    assert len(outcomes) >= 60
    db = sqlite3.connect(state_dir / "dragonops.db")
    seqs = dict(db.execute("SELECT id, seq FROM monitors"))
    stored = set(db.execute("SELECT monitor, at FROM history_raw"))
    db.close()
    missing = [
        o for o in outcomes
        if not any((seqs[o["monitor_id"]], round(o["at"] * 1000) + k) in stored for k in range(4))
    ]  # fmt: skip
    assert not missing, f"{len(missing)} of {len(outcomes)} results not in history"


def _consumed(r: redis.Redis, prefix: str) -> bool:
    groups: Any = r.xinfo_groups(f"{prefix}:results:{CORE}")
    core = next(g for g in groups if g["name"] == b"core")
    return bool(core["pending"] == 0 and core.get("lag") == 0)


def test_redis_outage_recovers_by_itself(tmp_path: Path, private_redis: PrivateRedis) -> None:
    """Redis goes away for 5 s: the core keeps serving and probing local monitors, reports
    degraded, and when Redis is back the worker's results and cross-process events flow again
    (nobody restarted)."""
    prefix = "outage"
    target = Target()
    cfg = write_config(tmp_path / "core.toml", private_redis.url, prefix)
    with Daemon(tmp_path / "state", "--config", str(cfg)) as d:
        d.wait_listening()
        worker = ProbeWorker(tmp_path, private_redis.url, prefix, "eu", "eu-1")
        try:
            r = redis.Redis.from_url(private_redis.url)
            wait_for(lambda: r.zcard(f"{prefix}:workers:eu"), 10, "worker heartbeat")
            time.sleep(1.2)
            remote = monitor(d, "remote", target.url, ["eu"], interval=1, timeout=0.5)
            local = monitor(d, "local", target.url, ["local"], interval=1, timeout=0.5)
            wait_for(lambda: state(d, remote["id"])["status"] == "up", 10, "remote check")
            private_redis.stop()
            time.sleep(5)
            ready = api(d, "GET", "/readyz")
            assert ready["checks"]["redis"] == "degraded"
            before = state(d, local["id"])["lastCheckAt"]
            wait_for(lambda: state(d, local["id"])["lastCheckAt"] != before, 5, "local probing")
            assert state(d, remote["id"])["locations"] == {"eu": "no-worker"}
            private_redis.start()
            wait_for(lambda: api(d, "GET", "/readyz")["checks"]["redis"] == "ok", 15, "recovery")
            wait_for(lambda: state(d, remote["id"])["locations"] == {"eu": "up"}, 20,
                     "worker results again")  # fmt: skip
            headers = {"Authorization": f"Bearer {d.token}"}
            with connect(d.url.replace("http", "ws") + "/api/ws", additional_headers=headers) as ws:
                ws.send(json.dumps({"op": "subscribe", "topics": ["monitors.elsewhere"]}))
                r = redis.Redis.from_url(private_redis.url)
                envelope = ["another-process", "monitors.elsewhere", "monitor.heartbeat"]
                # One message carries a batch of envelopes (bus.py): here a batch of one.
                payload = json.dumps([[*envelope, time.time(), {"from": "redis"}]])
                deadline = time.monotonic() + 10
                got = None
                while got is None:
                    assert time.monotonic() < deadline, "no event through redis after recovery"
                    r.publish(f"{prefix}:events", payload)
                    try:
                        while True:
                            f = json.loads(ws.recv(timeout=0.5))
                            if f.get("type") == "event":
                                got = f
                                break
                    except TimeoutError:
                        continue
                assert got["data"] == {"from": "redis"}
            assert d.proc.poll() is None and worker.proc.poll() is None
            assert "Traceback" not in d.log
        finally:
            assert worker.stop() == 0
            target.close()
