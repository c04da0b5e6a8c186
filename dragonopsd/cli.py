"""Command line: serve, check-config, db, version.

Exit codes: 0 success; 1 a runtime failure (cannot bind, migration failed, database check
failed); 2 a usage or configuration error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from . import __version__, logs
from .app import build_app
from .config import Config, ConfigError, load, with_overrides
from .store import migrations
from .store.db import Database
from .systemd import Notifier

log = logging.getLogger("dragonopsd")

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
EPILOG = "exit codes: 0 success, 1 runtime failure, 2 usage or configuration error"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dragonopsd", description=__doc__.splitlines()[0], epilog=EPILOG
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--config", type=Path, help="TOML config file (default: built-in defaults)")
        sp.add_argument(
            "--state-dir",
            help="directory for the database and other state "
            "(default: $STATE_DIRECTORY, else ./var)",
        )

    serve = sub.add_parser("serve", help="run the daemon", epilog=EPILOG)
    common(serve)
    serve.add_argument("--host", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default 8750; 0 picks a free one)")
    serve.add_argument("--demo", action="store_true", help="seed a demo inventory on first start")

    check = sub.add_parser(
        "check-config", help="validate the configuration and exit", epilog=EPILOG
    )
    common(check)

    db = sub.add_parser("db", help="database maintenance", epilog=EPILOG)
    dbsub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    for name, text in (
        ("migrate", "apply pending migrations"),
        ("check", "run PRAGMA quick_check and compare the schema version"),
    ):
        common(dbsub.add_parser(name, help=text, epilog=EPILOG))
    backup = dbsub.add_parser(
        "backup", help="copy the live database with SQLite's online backup", epilog=EPILOG
    )
    common(backup)
    backup.add_argument("path", type=Path, help="file to write (must not exist)")

    sub.add_parser("version", help="print the version", epilog=EPILOG)
    return p


def _config(args: argparse.Namespace) -> Config:
    cfg = load(args.config)
    server: dict[str, Any] = {}
    if getattr(args, "host", None):
        server["host"] = args.host
    if getattr(args, "port", None) is not None:
        if not 0 <= args.port <= 65535:
            raise ConfigError([f"--port: {args.port} is not between 0 and 65535"])
        server["port"] = args.port
    storage = {"state_dir": args.state_dir} if getattr(args, "state_dir", None) else {}
    return with_overrides(cfg, server=server, storage=storage)


def _database(cfg: Config) -> Database:
    return Database(
        cfg.resolve(cfg.storage.path),
        synchronous=cfg.storage.synchronous,
        busy_timeout_ms=cfg.storage.busy_timeout_ms,
        readers=1,
    )


async def serve(cfg: Config, config_path: Path | None, demo: bool) -> int:
    """Run until SIGTERM/SIGINT; SIGHUP reloads the log settings from the config file."""
    notifier = Notifier()
    app = build_app(cfg, demo_data=demo)
    runner = web.AppRunner(
        app, handle_signals=False, access_log=None, shutdown_timeout=cfg.server.shutdown_timeout
    )
    try:
        await runner.setup()
    except (migrations.MigrationError, sqlite3.DatabaseError) as exc:
        log.error("cannot start: %s", exc)
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


async def _db_command(cfg: Config, args: argparse.Namespace) -> int:
    db = _database(cfg)
    if args.db_command == "migrate":
        await db.open(migrate=True)
        print(f"{db.path}: schema at version {db.schema_version}")
        await db.close()
        return EXIT_OK
    if not db.path.exists():
        print(f"{db.path}: no such database", file=sys.stderr)
        return EXIT_FAILURE
    await db.open(migrate=False)
    try:
        if args.db_command == "backup":
            if args.path.exists():
                print(f"{args.path}: already exists; refusing to overwrite", file=sys.stderr)
                return EXIT_USAGE
            await db.backup(args.path)
            print(f"backed up {db.path} to {args.path}")
            return EXIT_OK
        result = await db.quick_check()
        latest = migrations.latest()
        ok = result == ["ok"] and db.schema_version == latest
        for line in result:
            print(f"quick_check: {line}")
        print(f"schema version: {db.schema_version} (this build: {latest})")
        return EXIT_OK if ok else EXIT_FAILURE
    finally:
        await db.close()


def _run(coro: Any) -> int:
    try:
        import uvloop  # noqa: PLC0415  -- optional speed-up, used when installed

        return int(uvloop.run(coro))
    except ImportError:
        return int(asyncio.run(coro))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``dragonopsd`` console script."""
    args = _parser().parse_args(argv)
    if args.command == "version":
        print(f"dragonopsd {__version__}")
        return EXIT_OK
    try:
        cfg = _config(args)
    except ConfigError as exc:
        print(f"configuration has {len(exc.problems)} problem(s):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "check-config":
        print(
            f"ok: listen {cfg.server.host}:{cfg.server.port}, "
            f"database {cfg.resolve(cfg.storage.path)}, "
            f"redis {cfg.redis.url or 'off (in-process)'}, log {cfg.log.level}/{cfg.log.format}"
        )
        return EXIT_OK
    logs.setup(cfg.log.level, cfg.log.format)
    try:
        if args.command == "serve":
            return _run(serve(cfg, args.config, args.demo))
        return _run(_db_command(cfg, args))
    except (migrations.MigrationError, sqlite3.DatabaseError) as exc:
        log.error("cannot use the database %s: %s", cfg.resolve(cfg.storage.path), exc)
        return EXIT_FAILURE
