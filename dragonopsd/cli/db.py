"""`dragonopsd db migrate|backup PATH|check|copy`: database maintenance, safe while the daemon
runs (copy reads the SQLite file read-only; stop the daemon first so it copies a final state)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import Config
from ..store import migrations
from ..store.postgres import UNREACHABLE, PostgresDatabase, redact, split_password
from ..store.transfer import TransferError, copy_sqlite
from .common import EPILOG, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, add_common, database, run
from .state import announce, existing_database

# Opening the target can meet: no server, no database, a refused login, a bad URL, a schema newer
# than this build.
_CANNOT_OPEN: tuple[type[BaseException], ...] = (
    *UNREACHABLE,
    ValueError,
    OSError,
    migrations.MigrationError,
)


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
    copy = actions.add_parser(
        "copy",
        help="copy every row of a SQLite install into a new, empty PostgreSQL database",
        epilog=EPILOG,
    )
    add_common(copy)
    copy.add_argument(
        "--from", dest="source", type=Path, required=True, help="the SQLite file (dragonops.db)"
    )
    copy.add_argument(
        "--to",
        dest="target",
        help="postgresql://user@host:5432/dbname (default: [storage] url)",
    )
    db.set_defaults(handler=main)


def main(cfg: Config, args: argparse.Namespace) -> int:
    """Run the chosen db action."""
    return run(_db(cfg, args))


async def _copy(cfg: Config, args: argparse.Namespace) -> int:
    """db copy: migrate the target, copy, print the rows per table; exit 2 when refused."""
    url = args.target or cfg.storage.url
    if not url:
        print("db copy: give the target with --to URL (or [storage] url)", file=sys.stderr)
        return EXIT_USAGE
    try:
        _, password = split_password(url)
        shown = redact(url)
    except ValueError as exc:  # the message names the bad part, never the password
        print(f"db copy: the --to URL cannot be parsed: {exc}", file=sys.stderr)
        return EXIT_USAGE

    def hidden(exc: BaseException) -> str:  # a driver message may echo the URL it was given
        text = str(exc) or type(exc).__name__
        return text.replace(url, shown).replace(password, "***") if password else text

    if not url.startswith(("postgresql://", "postgres://")):
        print(
            f"{shown}: not a PostgreSQL URL (postgresql://user@host:5432/dbname)", file=sys.stderr
        )
        return EXIT_USAGE
    pwfile = cfg.resolve(cfg.storage.password_file) if cfg.storage.password_file else None
    target = PostgresDatabase(url, password_file=pwfile, max_size=1)
    try:
        await target.open(migrate=True)
    except _CANNOT_OPEN as exc:
        print(f"cannot open {shown}: {hidden(exc)}", file=sys.stderr)
        return EXIT_USAGE
    try:
        counts = await copy_sqlite(args.source, target)
    except TransferError as exc:
        print(f"db copy refused, nothing written: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        await target.close()
    for table, rows in counts:
        print(f"{table}: {rows} rows")
    total = sum(rows for _, rows in counts)
    print(f"copied {total} rows in {len(counts)} tables from {args.source} to {shown}")
    return EXIT_OK


async def _db(cfg: Config, args: argparse.Namespace) -> int:
    if args.db_command == "copy":
        return await _copy(cfg, args)
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
