"""`dragonopsd serve`: run the daemon until SIGTERM, telling systemd (sd_notify) how it goes.

The app reloads on SIGHUP itself (reload.py's sighup_ctx, registered by the app factory with
the reread given here). SIGTERM and SIGINT stay here: they end the run this module owns (stop
listening, drain, exit), and READY=1, the watchdog and STOPPING=1 go with the listeners.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from .. import __version__, logs
from ..api.listener import Runner
from ..app import build_app
from ..appkeys import INVENTORY, METRICS, MONITORS
from ..config import Config
from ..demo import seed_monitors
from ..secrets.crypto import KeyRingError
from ..store import migrations
from ..store.backend import storage_problems
from ..store.postgres import UNREACHABLE
from ..systemd import Notifier
from .common import EPILOG, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, add_common, config_from_args, run
from .state import StateLocked, lock, readable_by_others

log = logging.getLogger("dragonopsd")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the serve command."""
    serve = sub.add_parser("serve", help="run the daemon", epilog=EPILOG)
    add_common(serve)
    serve.add_argument("--host", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default 8750; 0 picks a free one)")
    serve.add_argument("--demo", action="store_true", help="seed a demo inventory on first start")
    serve.set_defaults(handler=main)


def main(cfg: Config, args: argparse.Namespace) -> int:
    """Serve until stopped."""
    logs.setup(cfg.log.level, cfg.log.format)
    for problem in storage_problems(cfg):
        log.error("cannot start: %s", problem)
        return EXIT_USAGE
    try:
        held = lock(cfg)  # before anything opens the database
    except StateLocked as exc:
        log.error("cannot start: %s", exc)
        return EXIT_FAILURE
    for path, mode in readable_by_others(cfg):  # left as they are: the operator chose them
        log.warning(
            "%s is mode %04o: group or others can read the token hashes, audit log and sealed "
            "secrets it holds (chmod %s %s)",
            path,
            mode,
            "700" if path.is_dir() else "600",
            path,
        )
    try:
        # No cyclic garbage collection while the daemon loads: 25,000 monitors make a few
        # hundred thousand long-lived objects, and the collections they triggered walked the
        # growing heap again and again (~40 % of the start's CPU). serve() collects once,
        # freezes what was loaded and turns the collector back on once it is listening.
        gc.disable()
        return run(serve(cfg, args.config, args.demo, reread=lambda: config_from_args(args)))
    finally:
        gc.enable()
        os.close(held)


_CANNOT_START: tuple[type[BaseException], ...] = (
    migrations.MigrationError,
    sqlite3.DatabaseError,
    KeyRingError,
    *UNREACHABLE,
)


async def _listen(runner: web.AppRunner, cfg: Config) -> bool:
    """Start the app and bind; False (after logging why and cleaning up) when it cannot."""
    try:
        await runner.setup()
    # KeyRingError: the secrets key file is unusable or does not match the database.
    # OSError: a listener started with the app ([metrics] listen) cannot bind.
    # UNREACHABLE: PostgreSQL refused the connection, the database or the role.
    except _CANNOT_START as exc:
        log.error("cannot start: %s", exc)
        await runner.cleanup()  # closes what did start (the database), nothing else
        return False
    try:
        await web.TCPSite(runner, cfg.server.host, cfg.server.port).start()
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", cfg.server.host, cfg.server.port, exc)
        await runner.cleanup()
        return False
    return True


async def serve(
    cfg: Config, config_path: Path | None, demo: bool, *, reread: Callable[[], Config]
) -> int:
    """Run until SIGTERM/SIGINT; the app applies reread() on SIGHUP (reload.py)."""
    notifier = Notifier()
    app = build_app(cfg, demo_data=demo, config_path=config_path, reread=reread, notifier=notifier)
    runner = Runner(
        app,
        cfg.server,
        stats=app[METRICS].http,
        handle_signals=False,
        shutdown_timeout=cfg.server.shutdown_timeout,
    )
    if not await _listen(runner, cfg):
        return EXIT_FAILURE
    bound = runner.addresses
    urls = ", ".join(f"http://{h}:{p}" for h, p, *_ in bound)
    if demo and await seed_monitors(app[INVENTORY], app[MONITORS].create, int(bound[0][1])):
        log.info("seeded the demo monitors")
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    # Handlers go in before READY=1: systemd may send SIGTERM the moment we are ready (the
    # app's SIGHUP handler went in when it started).
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    # Everything loaded at start (monitors, routes, caches) lives as long as the process:
    # moved out of the collector's reach, a full collection no longer walks it. Measured with
    # 10,000 monitors: full-GC loop pauses of 220-570 ms became ~5 ms (tests/bench/metrics.py).
    gc.collect()
    gc.freeze()
    gc.enable()
    log.info("dragonopsd %s listening on %s", __version__, urls)
    notifier.ready(f"listening on {urls}")
    watchdog = asyncio.create_task(notifier.watchdog())
    try:
        await stop.wait()
    finally:
        log.info("draining")
        notifier.stopping()
        watchdog.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watchdog
        await runner.cleanup()
        notifier.close()
        log.info("stopped")
    return EXIT_OK
