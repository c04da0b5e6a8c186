"""`dragonopsd db migrate|backup PATH|check`: database maintenance, safe while the daemon runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import Config
from ..store import migrations
from .common import EPILOG, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, add_common, database, run
from .state import announce, existing_database


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the db command and its actions."""
    db = sub.add_parser("db", help="database maintenance", epilog=EPILOG)
    actions = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    for name, text in (
        ("migrate", "apply pending migrations"),
        ("check", "check the database (SQLite: PRAGMA quick_check) and its schema version"),
    ):
        add_common(actions.add_parser(name, help=text, epilog=EPILOG))
    backup = actions.add_parser(
        "backup",
        help="copy the live database (SQLite's online backup; PostgreSQL: pg_dump)",
        epilog=EPILOG,
    )
    add_common(backup)
    backup.add_argument(
        "path", type=Path, help="file to write (must not exist; its directory must), mode 0600"
    )
    db.set_defaults(handler=main)


def main(cfg: Config, args: argparse.Namespace) -> int:
    """Run the chosen db action."""
    return run(_db(cfg, args))


async def _db(cfg: Config, args: argparse.Namespace) -> int:
    if args.db_command == "migrate":  # the one command besides serve that may start a database
        announce(cfg)
        db = database(cfg)
        await db.open(migrate=True)
        print(f"{db.where}: schema at version {db.schema_version}")
        await db.close()
        return EXIT_OK
    db = existing_database(cfg)
    if args.db_command == "backup":
        if not args.path.parent.is_dir():
            print(f"{args.path}: no directory {args.path.parent}; create it first", file=sys.stderr)
            return EXIT_USAGE
        if args.path.exists():
            print(f"{args.path}: already exists; refusing to overwrite", file=sys.stderr)
            return EXIT_USAGE
    await db.open(migrate=False)
    try:
        if args.db_command == "backup":
            try:
                await db.backup(args.path)
            except FileExistsError:  # appeared since the check above
                print(f"{args.path}: already exists; refusing to overwrite", file=sys.stderr)
                return EXIT_USAGE
            except (FileNotFoundError, RuntimeError) as exc:  # PostgreSQL: pg_dump absent/failed
                print(f"cannot back up {db.where}: {exc}", file=sys.stderr)
                return EXIT_FAILURE
            how = " with pg_dump (custom format)" if db.dialect == "postgres" else ""
            print(f"backed up {db.where} to {args.path}{how}")
            return EXIT_OK
        result = await db.quick_check()
        latest = migrations.latest(db.dialect)
        ok = result == ["ok"] and db.schema_version == latest
        for line in result:
            print(f"quick_check: {line}")
        print(f"schema version: {db.schema_version} (this build: {latest})")
        return EXIT_OK if ok else EXIT_FAILURE
    finally:
        await db.close()
