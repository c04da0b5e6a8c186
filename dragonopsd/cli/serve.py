"""`dragonopsd serve`: run the daemon until SIGTERM; SIGHUP reloads, sd_notify tells systemd."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sqlite3
from pathlib import Path

from aiohttp import web

from .. import __version__, logs
from ..app import build_app
from ..config import Config, ConfigError, load
from ..crypto import KeyRingError
from ..store import migrations
from ..systemd import Notifier
from .common import EPILOG, EXIT_FAILURE, EXIT_OK, add_common, run

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
    return run(serve(cfg, args.config, args.demo))


async def serve(cfg: Config, config_path: Path | None, demo: bool) -> int:
    """Run until SIGTERM/SIGINT; SIGHUP reloads the log settings from the config file."""
    notifier = Notifier()
    app = build_app(cfg, demo_data=demo)
    runner = web.AppRunner(
        app, handle_signals=False, access_log=None, shutdown_timeout=cfg.server.shutdown_timeout
    )
    try:
        await runner.setup()
    # KeyRingError: the secrets key file is unusable or does not match the database.
    except (migrations.MigrationError, sqlite3.DatabaseError, KeyRingError) as exc:
        log.error("cannot start: %s", exc)
        await runner.cleanup()  # closes what did start (the database), nothing else
        return EXIT_FAILURE
    site = web.TCPSite(runner, cfg.server.host, cfg.server.port)
    try:
        await site.start()
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", cfg.server.host, cfg.server.port, exc)
        await runner.cleanup()
        return EXIT_FAILURE
    urls = ", ".join(f"http://{h}:{p}" for h, p, *_ in runner.addresses)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def reload() -> None:
        notifier.reloading()
        try:
            new = load(config_path)
        except ConfigError as exc:
            log.error("reload failed, keeping the running config: %s", exc)
        else:
            logs.setup(new.log.level, new.log.format)
            log.info("reloaded %s (log level %s)", config_path or "defaults", new.log.level)
        notifier.ready(f"listening on {urls}")

    # Handlers go in before READY=1: systemd may send SIGHUP/SIGTERM the moment we are ready.
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload)
    if cfg.redis.url:
        log.warning("[redis] url is set, but this build keeps cache and bus in-process")
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
