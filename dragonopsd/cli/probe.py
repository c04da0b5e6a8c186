"""`dragonopsd probe`: a remote probe worker for one location, fed through Redis.

The core stays the one scheduler: monitors whose ``locations`` name this location get their
jobs on ``<prefix>:jobs:<location>``. Run several workers per location to share the load.
SIGTERM or SIGINT: stop taking jobs, finish those in hand (up to 10 s), exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import signal
import socket

from .. import logs
from ..config import Config, with_overrides
from ..monitoring.worker import Worker
from ..redislink.client import RedisLink
from .common import EPILOG, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, add_common, run

log = logging.getLogger("dragonopsd.worker")
_LOCATION = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def _location(text: str) -> str:
    if not _LOCATION.match(text) or text == "local":
        raise argparse.ArgumentTypeError(
            f"{text!r}: lowercase letters, digits and '-', at most 63, and not 'local'"
        )
    return text


def _redis_url(text: str) -> str:
    if not re.match(r"^(redis|rediss|unix)://", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a redis://, rediss:// or unix:// URL")
    return text


def _prefix(text: str) -> str:
    if not re.match(r"^[A-Za-z0-9_.\-]{1,64}$", text):
        raise argparse.ArgumentTypeError(f"{text!r}: letters, digits, '_', '.', '-', at most 64")
    return text


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``probe`` command."""
    p = sub.add_parser(
        "probe",
        help="run a remote probe worker for one location",
        epilog=EPILOG,
        description=__doc__.splitlines()[0],
    )
    add_common(p)
    p.add_argument("--location", required=True, type=_location, help="this worker's location")
    p.add_argument("--redis", type=_redis_url, help="Redis URL (default: [redis] url)")
    p.add_argument("--prefix", type=_prefix, help="key prefix (default: [redis] prefix)")
    p.add_argument("--name", help="worker name, unique in the location (default: host-pid)")
    p.add_argument(
        "--concurrency", type=int, default=64, help="probes at once (1..10000, default 64)"
    )
    p.set_defaults(handler=_probe)


def _probe(cfg: Config, args: argparse.Namespace) -> int:
    redis: dict[str, object] = {}
    if args.redis:
        redis["url"] = args.redis
    if args.prefix:
        redis["prefix"] = args.prefix
    cfg = with_overrides(cfg, redis=redis)
    logs.setup(cfg.log.level, cfg.log.format)
    if not cfg.redis.url:
        log.error("a probe worker needs Redis: --redis URL or [redis] url")
        return EXIT_USAGE
    if not 1 <= args.concurrency <= 10_000:
        log.error("--concurrency: %d is not between 1 and 10000", args.concurrency)
        return EXIT_USAGE
    name = args.name or f"{socket.gethostname()}-{os.getpid()}"
    return run(_main(cfg, args.location, name, args.concurrency))


async def _main(cfg: Config, location: str, name: str, concurrency: int) -> int:
    link = RedisLink(cfg.redis, name=name)
    worker = Worker(cfg, link, location, concurrency)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    log.info("probe worker %s for location %s", name, location)
    try:
        await worker.run()
    finally:
        await link.close()
    log.info("probe worker %s stopped: %d jobs done, %d expired", name, worker.done, worker.expired)
    return EXIT_FAILURE if worker.crashed else EXIT_OK
