"""`dragonopsd keys generate|rotate|prune`: the secrets key file, safe while the daemon runs.

rotate writes the new primary to the key file first (the daemon re-reads it within about a
second), then re-seals rows in batches of one transaction each, notification channels'
credentials included; prune then drops keys that no row (secret or channel) uses. Neither
applies to keys given in DRAGONOPS_SECRETS_KEYS: the file is not in use then.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

from ..config import Config
from ..secrets.crypto import (
    KEYS_ENV,
    KeyRing,
    KeyRingError,
    SealError,
    read_key_file,
    write_key_file,
)
from ..secrets.vault import RECHECK_SECONDS, reseal_all
from ..store.notifications import NotificationStore
from ..store.vault import VaultStore
from .common import EPILOG, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, add_common, run
from .state import existing_database

BATCH = 200


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the keys command and its actions."""
    keys = sub.add_parser("keys", help="manage the secrets key file", epilog=EPILOG)
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    for name, text in (
        ("generate", "write a new key file (refuses to overwrite one)"),
        ("rotate", "add a new primary key and re-encrypt every secret with it"),
        ("prune", "drop keys that no secret uses any more"),
    ):
        add_common(actions.add_parser(name, help=text, epilog=EPILOG))
    keys.set_defaults(handler=main)


def main(cfg: Config, args: argparse.Namespace) -> int:
    """Run the chosen keys action."""
    path = cfg.key_file()
    from_env = bool(os.environ.get(KEYS_ENV, "").strip())
    if args.keys_command == "generate":
        try:
            ring = KeyRing.new(str(path))
            write_key_file(path, ring, overwrite=False)
        except (KeyRingError, OSError) as exc:
            print(f"cannot generate: {exc}", file=sys.stderr)
            return EXIT_FAILURE
        print(f"wrote {os.path.abspath(path)} (mode 0600) with key {ring.primary}")
        if from_env:
            print(f"note: {KEYS_ENV} is set and takes precedence over this file", file=sys.stderr)
        return EXIT_OK
    if from_env:
        print(
            f"{KEYS_ENV} is set, so the key file is not in use; rotate and prune work on the "
            f"key file only (edit {KEYS_ENV} yourself: the first key is the primary)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        ring = read_key_file(path)
    except KeyRingError as exc:
        print(f"cannot read the key file: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    try:
        return run(_rotate(cfg, ring) if args.keys_command == "rotate" else _prune(cfg, ring))
    except (KeyRingError, SealError) as exc:
        print(f"{args.keys_command} failed: {exc}", file=sys.stderr)
        return EXIT_FAILURE


def _progress(done: int, total: int) -> None:
    print(f"re-encrypted {done}/{total}", flush=True)


async def _rotate(cfg: Config, old: KeyRing) -> int:
    path = cfg.key_file()
    db = existing_database(cfg)
    await db.open(migrate=True)
    try:
        store, channels = VaultStore(db), NotificationStore(db)
        ring = old.rotated()
        await asyncio.to_thread(write_key_file, path, ring, overwrite=True)
        written = time.monotonic()
        print(f"added primary key {ring.primary} to {path}", flush=True)
        done = await reseal_all(store, channels, ring, BATCH, _progress)
        # A running daemon may seal with the old primary until it notices the new file (at
        # most RECHECK_SECONDS); one more pass after that catches such a late write.
        await asyncio.sleep(max(0.0, written + RECHECK_SECONDS + 0.2 - time.monotonic()))
        done += await reseal_all(store, channels, ring, BATCH, _progress)
        left = await store.count_not_under(ring.primary)
        print(f"re-encrypted {done} secret(s) with {ring.primary}; {left} still on older keys")
        if left == 0:
            print("run `dragonopsd keys prune` to drop the old keys from the key file")
        return EXIT_OK if left == 0 else EXIT_FAILURE
    finally:
        await db.close()


async def _prune(cfg: Config, ring: KeyRing) -> int:
    path = cfg.key_file()
    db = existing_database(cfg)
    await db.open(migrate=True)
    try:
        store = VaultStore(db)
        used = await store.key_ids()
        drop = set(ring.keys) - used - {ring.primary}
        if not drop:
            print(f"nothing to prune: {len(ring.keys)} key(s), all in use or primary")
            return EXIT_OK
        await asyncio.to_thread(write_key_file, path, ring.without(drop), overwrite=True)
        await store.drop_checks(drop)
        print(f"dropped {', '.join(sorted(drop))} from {path}; {len(ring.keys) - len(drop)} left")
        return EXIT_OK
    finally:
        await db.close()
