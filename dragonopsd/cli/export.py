"""`dragonopsd export [--format toml|json]`: every monitor, maintenance window and notification
channel as config-file tables, on stdout.

A channel credential held in clear (a channel made through the API) is first stored in the
secrets store as ``CHANNEL_<NAME>_<FIELD>`` and exported as its ``${secret:…}`` reference, so
the file can be committed: no value is ever printed. Stderr names each secret written. That
is the one write; everything else is read, so the command runs beside a daemon.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..config import Config
from ..importer.export import as_json, as_toml, channel_secrets, document
from ..notify.refs import credentials, ref_name
from ..secrets.crypto import KEYS_ENV
from ..secrets.vault import VaultService
from ..store.maintenance import MaintenanceStore
from ..store.monitors import MonitorStore
from ..store.notifications import NotificationStore
from ..store.vault import VaultStore
from .common import EPILOG, EXIT_OK, EXIT_USAGE, add_common, run
from .state import existing_database


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the export command."""
    cmd = sub.add_parser(
        "export",
        help="print monitors, maintenance windows and notification channels as "
        "[[monitors]], [[maintenance]] and [[notifications]] tables (TOML or JSON)",
        epilog=EPILOG,
    )
    add_common(cmd)
    cmd.add_argument("--format", choices=("toml", "json"), default="toml")
    cmd.set_defaults(handler=main)


def main(cfg: Config, args: argparse.Namespace) -> int:
    """Print the export."""
    return run(_export(cfg, args.format))


def _fail(message: str) -> int:
    print(f"dragonopsd export: {message}", file=sys.stderr)
    return EXIT_USAGE


async def _export(cfg: Config, fmt: str) -> int:
    db = existing_database(cfg)
    await db.open(migrate=False)
    try:
        vault = VaultService(VaultStore(db), cfg.key_file(), os.environ.get(KEYS_ENV))
        await vault.start()
        monitors = await MonitorStore(db).all()
        windows = await MaintenanceStore(db).all()
        channels = await NotificationStore(db, keys=vault).list()
        if locked := [c.name for c in channels if c.locked]:
            return _fail(
                f"the credentials of channel(s) {', '.join(locked)} are sealed with a secrets "
                f"key that is not loaded ({cfg.key_file()}); restore the key file"
            )
        clear = [
            c.name for c in channels if any(ref_name(v) is None for _, v in credentials(c.config))
        ]
        if clear and vault.ring is None:
            return _fail(
                f"channel(s) {', '.join(clear)} hold credentials, which the export stores as "
                "secrets, and there is no secrets key: create one with `dragonopsd keys "
                "generate` (the daemon's key file, or [secrets] key_file)"
            )
        channels, notes = await channel_secrets(vault, channels)
    finally:
        await db.close()
    for note in notes:
        print(f"dragonopsd export: {note}", file=sys.stderr)
    names = {r.monitor.id: r.monitor.name for r in monitors}
    doc = document([r.spec for r in monitors], windows, channels, names)
    print(as_json(doc) if fmt == "json" else as_toml(doc), end="")
    return EXIT_OK
