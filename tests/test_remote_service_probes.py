"""Service monitors checked by a `dragonopsd probe` worker in another location, through a real
Redis and real processes: the worker runs postgres, mysql, redis, mqtt and amqp checks against the
machine's servers, and a monitor whose password lives in the secrets store is refused there
(workers have no secrets store) with a message that says so."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import redis
from daemon import Daemon
from probe_workers import ProbeWorker, api, wait_for, write_config
from redis_helpers import SHARED_URL


def state(d: Daemon, monitor_id: str) -> Any:
    return next(
        s for s in api(d, "GET", "/api/monitoring")["items"] if s["monitorId"] == monitor_id
    )


def test_a_worker_runs_the_service_kinds(tmp_path: Path, redis_prefix: str) -> None:
    cfg = write_config(tmp_path / "core.toml", SHARED_URL, redis_prefix)
    r = redis.Redis.from_url(SHARED_URL)
    base = {"interval": 2, "timeout": 1.5, "locations": ["eu"], "host": "127.0.0.1"}
    kinds: list[dict[str, Any]] = [
        {"kind": "postgres", "username": "postgres", "conditions": ["[RESULT] == 1"]},
        {"kind": "mysql", "username": "root", "conditions": ["[ROWS] == 1"]},
        {"kind": "redis", "conditions": ["[INFO].role == master"]},
        {"kind": "mqtt"},
        {"kind": "amqp"},
    ]
    with Daemon(tmp_path / "state", "--config", str(cfg)) as d:
        d.wait_listening()
        worker = ProbeWorker(tmp_path, SHARED_URL, redis_prefix, "eu", "eu-1")
        try:
            wait_for(lambda: r.zcard(f"{redis_prefix}:workers:eu"), 10, "worker heartbeat")
            time.sleep(1.2)
            made = [
                api(d, "POST", "/api/monitors", {**base, "name": k["kind"], **k}) for k in kinds
            ]
            secret = api(
                d,
                "POST",
                "/api/monitors",
                {**base, "name": "secret", "kind": "redis", "passwordSecret": "REDIS_PASS"},
            )
            for m in made:
                try:
                    wait_for(lambda m=m: state(d, m["id"])["status"] == "up", 20, m["name"])
                except AssertionError:
                    raise AssertionError(f"{state(d, m['id'])}\n{worker.log}") from None
            down = wait_for(
                lambda: (s := state(d, secret["id"]))["status"] == "down" and s, 20, "secret"
            )
            assert "resolved by dragonopsd serve only" in down["message"], down
        finally:
            worker.stop()
            r.close()
