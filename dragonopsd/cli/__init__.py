"""Command line: serve, check-config, db, token, keys, agent, probe, import, export, version.

Exit codes: 0 success; 1 a runtime failure (cannot bind, migration failed, database check
failed); 2 a usage or configuration error.
"""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import sys

from .. import __version__
from ..config import Config, ConfigError
from ..monitoring.alert_rules import parse_alert_tables
from ..monitoring.declared import parse_channel_tables, parse_window_tables
from ..monitoring.service import parse_monitor_tables
from ..redislink.client import safe_url
from ..store import migrations
from ..store.backend import describe, storage_problems
from ..store.postgres import UNREACHABLE
from . import agent, db, export, imports, keys, probe, serve, tokens
from .common import EPILOG, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, add_common, config_from_args
from .pagecheck import page_warnings
from .state import StateError

log = logging.getLogger("dragonopsd")
_DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    migrations.MigrationError,
    sqlite3.DatabaseError,
    *UNREACHABLE,
)


def _report(problems: list[str]) -> int:
    print(f"configuration has {len(problems)} problem(s):", file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)
    return EXIT_USAGE


def _check_config(cfg: Config, args: argparse.Namespace) -> int:
    # The very checks the syncs make (links to servers, and monitors named by a window's or a
    # channel's scope, need the database: not here).
    declared, problems = parse_monitor_tables(cfg.monitors)
    problems += parse_alert_tables(cfg.alert_rules)[1]
    problems += parse_window_tables(cfg.maintenance)[1]
    problems += parse_channel_tables(cfg.notifications)[1]
    if problems:
        return _report(problems)
    problems = storage_problems(cfg)
    if problems:
        return _report(problems)
    redis = safe_url(cfg.redis.url) if cfg.redis.url else "off (in-process)"
    print(
        f"ok: listen {cfg.server.host}:{cfg.server.port}, "
        f"database {describe(cfg)}, "
        f"redis {redis}, log {cfg.log.level}/{cfg.log.format}"
    )
    # Warnings, not problems: the daemon starts, but a page would show less than meant.
    warnings, read_db = page_warnings(cfg, declared)
    if not read_db and warnings:
        warnings.append("(the database could not be read: checked against [[monitors]] only)")
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dragonopsd", description=__doc__.splitlines()[0], epilog=EPILOG
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve.register(sub)
    check = sub.add_parser(
        "check-config", help="validate the configuration and exit", epilog=EPILOG
    )
    add_common(check)
    check.set_defaults(handler=_check_config)
    db.register(sub)
    tokens.register(sub)
    keys.register(sub)
    agent.register(sub)
    probe.register(sub)
    imports.register(sub)
    export.register(sub)
    sub.add_parser("version", help="print the version", epilog=EPILOG)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``dragonopsd`` console script."""
    args = _parser().parse_args(argv)
    if args.command == "version":
        print(f"dragonopsd {__version__}")
        return EXIT_OK
    try:
        cfg = config_from_args(args)
    except ConfigError as exc:
        return _report(exc.problems)
    # Whatever a command creates (state directory, database and its -wal/-shm, backups, token
    # and key files) holds token hashes, the audit log or sealed secrets: the owner's alone,
    # however the shell that started it set its umask. Restored on return for in-process callers.
    umask = os.umask(0o077)
    try:
        return int(args.handler(cfg, args))
    except StateError as exc:
        print(f"dragonopsd: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except _DATABASE_ERRORS as exc:
        print(f"cannot use the database {describe(cfg)}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        os.umask(umask)
