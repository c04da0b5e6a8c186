"""`dragonopsd export [--format toml|json]`: every monitor as config-file tables, on stdout.

Only reads the database, so it runs beside a daemon. Maintenance windows and notification
channels have no config-file form yet and are not exported.
"""

from __future__ import annotations

import argparse

from ..config import Config
from ..importer.export import as_json, as_toml
from ..store.monitors import MonitorStore
from .common import EPILOG, EXIT_OK, add_common, run
from .state import existing_database


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the export command."""
    cmd = sub.add_parser(
        "export", help="print every monitor as [[monitors]] tables (TOML or JSON)", epilog=EPILOG
    )
    add_common(cmd)
    cmd.add_argument("--format", choices=("toml", "json"), default="toml")
    cmd.set_defaults(handler=main)


def main(cfg: Config, args: argparse.Namespace) -> int:
    """Print the export."""
    return run(_export(cfg, args.format))


async def _export(cfg: Config, fmt: str) -> int:
    db = existing_database(cfg)
    await db.open(migrate=False)
    try:
        rows = await MonitorStore(db).all()
    finally:
        await db.close()
    specs = [row.spec for row in sorted(rows, key=lambda r: r.monitor.name)]
    print(as_json(specs) if fmt == "json" else as_toml(specs), end="")
    return EXIT_OK
