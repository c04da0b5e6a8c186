"""`dragonopsd import gatus|uptime-kuma PATH [--dry-run]`: bring monitors over from elsewhere.

The command writes the database itself, so it needs the daemon stopped: a running daemon
would not schedule monitors written behind its back. It takes the state directory's lock
(the one `serve` holds) and, when a daemon has it, says so and points at POST /api/import,
which imports through the running daemon. Everything is validated before anything is
written, and everything is written in one transaction: an input that cannot be read, or an
object of it the database refuses, exits 2 with nothing written.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..config import Config
from ..importer import gatus, kuma
from ..importer.apply import apply
from ..importer.plan import Plan
from ..importer.report import ImportFailed
from ..importer.target import store_target
from ..secrets.crypto import KEYS_ENV
from ..secrets.vault import VaultService
from ..store.maintenance import MaintenanceStore
from ..store.monitors import MonitorStore
from ..store.notifications import NotificationStore
from ..store.sql import Database
from ..store.vault import VaultStore
from .common import EPILOG, EXIT_OK, EXIT_USAGE, add_common, run
from .state import StateLocked, existing_database, lock

MAX_BYTES = 32 * 1024 * 1024


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the import command and its sources."""
    cmd = sub.add_parser(
        "import",
        help="import monitors, channels and maintenance from Gatus or Uptime Kuma",
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog=EPILOG,
    )
    sources = cmd.add_subparsers(dest="import_source", required=True, metavar="SOURCE")
    for name, what in (("gatus", "Gatus' config.yaml"), ("uptime-kuma", "Uptime Kuma's kuma.db")):
        one = sources.add_parser(name, help=f"import {what}", epilog=EPILOG)
        add_common(one)
        one.add_argument("path", type=Path, help=what)
        one.add_argument("--dry-run", action="store_true", help="report only, write nothing")
    cmd.set_defaults(handler=main)


def read_plan(source: str, path: Path) -> Plan:
    """The source file read into a plan; ImportFailed when it cannot be."""
    if source == "uptime-kuma":
        return kuma.parse_file(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImportFailed(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_BYTES:
        raise ImportFailed(f"{path}: larger than {MAX_BYTES // 1024 // 1024} MB")
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise ImportFailed(f"{path}: not UTF-8 text") from None
    return gatus.parse(text)


def main(cfg: Config, args: argparse.Namespace) -> int:
    """Read the source, then write it (unless --dry-run) and print the report."""
    try:
        plan = read_plan(args.import_source, args.path)
    except ImportFailed as exc:
        print(f"dragonopsd: nothing imported: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    db = existing_database(cfg)
    try:
        held = lock(cfg)
    except StateLocked as exc:
        print(
            f"dragonopsd: {exc}. Import needs the daemon stopped (it would not schedule what "
            "is written behind its back), or import through it: POST /api/import",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        return run(_write(cfg, db, plan, args.dry_run))
    finally:
        os.close(held)


async def _write(cfg: Config, db: Database, plan: Plan, dry_run: bool) -> int:
    await db.open(migrate=True)
    try:
        vault = VaultService(VaultStore(db), cfg.key_file(), os.environ.get(KEYS_ENV))
        await vault.start()
        target = store_target(
            db, MonitorStore(db), NotificationStore(db, keys=vault), MaintenanceStore(db), vault
        )
        report = await apply(plan, target, dry_run)
    except ImportFailed as exc:
        print(f"dragonopsd: nothing imported: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        await db.close()
    print("\n".join(report.lines()))
    return EXIT_OK
