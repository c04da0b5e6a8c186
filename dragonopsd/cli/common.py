"""What every subcommand shares: exit codes, the --config/--state-dir flags, running a coroutine."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from ..config import Config
from ..store.db import Database

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
EPILOG = "exit codes: 0 success, 1 runtime failure, 2 usage or configuration error"


def add_common(parser: argparse.ArgumentParser) -> None:
    """--config and --state-dir, accepted by every command that reads config or state."""
    parser.add_argument("--config", type=Path, help="TOML config file (default: built-in defaults)")
    parser.add_argument(
        "--state-dir",
        help="directory for the database and other state (default: $STATE_DIRECTORY, else ./var)",
    )


def database(cfg: Config) -> Database:
    """A Database for a one-shot command (one reader is plenty)."""
    return Database(
        cfg.resolve(cfg.storage.path),
        synchronous=cfg.storage.synchronous,
        busy_timeout_ms=cfg.storage.busy_timeout_ms,
        readers=1,
    )


def run(coro: Coroutine[Any, Any, int]) -> int:
    """Run a command's coroutine on uvloop when installed, else asyncio's loop."""
    try:
        import uvloop  # noqa: PLC0415  -- optional speed-up, used when installed
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)
