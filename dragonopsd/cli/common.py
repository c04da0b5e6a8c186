"""What every subcommand shares: exit codes, the --config/--state-dir flags, running a coroutine."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from ..config import Config, ConfigError, load, with_overrides
from ..store.backend import database_for
from ..store.sql import Database

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
EPILOG = "exit codes: 0 success, 1 runtime failure, 2 usage or configuration error"


def add_common(parser: argparse.ArgumentParser) -> None:
    """--config and --state-dir, accepted by every command that reads config or state."""
    parser.add_argument("--config", type=Path, help="TOML config file (default: built-in defaults)")
    parser.add_argument(
        "--state-dir",
        help="directory for the database and other state (default: $STATE_DIRECTORY, else ./var)",
    )


def config_from_args(args: argparse.Namespace) -> Config:
    """The config file and DRAGONOPS_* overrides, then the flags (--host, --port, --state-dir),
    which win: at start and again at every reload, so a flag never reads as a change."""
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


def database(cfg: Config) -> Database:
    """A Database for a one-shot command (one reader, or one pooled connection, is plenty)."""
    return database_for(cfg, readers=1)


def run(coro: Coroutine[Any, Any, int]) -> int:
    """Run a command's coroutine on uvloop when installed, else asyncio's loop."""
    try:
        import uvloop  # noqa: PLC0415  -- optional speed-up, used when installed
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)
