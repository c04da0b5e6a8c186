"""The state directory as the commands see it: which one they use, and one daemon per directory.

A command run from the wrong directory would otherwise work on a fresh ``./var`` of its own
(a token minted there is unknown to the daemon), and a second ``serve`` on the same directory
would share its database with the first. So every command says on stderr which state it uses,
only ``serve`` and ``db migrate`` create a database, and ``serve`` holds an exclusive lock on
a file in the state directory for as long as it runs (the kernel drops it when the process
ends, kill -9 included, so a crash leaves nothing stale behind).
"""

from __future__ import annotations

import fcntl
import os
import stat
import sys
from pathlib import Path

from ..config import Config
from ..store.backend import describe
from ..store.sql import Database
from .common import database

LOCK_FILE = "dragonopsd.lock"
WHERE = (
    "point the command at the daemon's state with --state-dir DIR, or --config FILE "
    "([storage] state_dir)"
)


class StateError(Exception):
    """The state directory or database is not what the command needs (a usage error, exit 2)."""


class StateLocked(Exception):
    """Another process serves this state directory, or its lock cannot be taken."""


def _shown(path: Path) -> Path:
    """The path as the operator should read it: absolute, without symlinks resolved."""
    return Path(os.path.abspath(path))


def announce(cfg: Config) -> None:
    """Say on stderr which state directory and database this command uses."""
    state = _shown(cfg.state_dir())
    db = describe(cfg) if cfg.storage.url else _shown(cfg.resolve(cfg.storage.path))
    print(f"dragonopsd: state directory {state}, database {db}", file=sys.stderr)


def existing_database(cfg: Config) -> Database:
    """The daemon's database for a one-shot command; StateError when there is none there."""
    announce(cfg)
    db = database(cfg)
    path = cfg.resolve(cfg.storage.path)
    if not cfg.storage.url and not path.exists():  # a PostgreSQL database says so on open
        raise StateError(
            f"no database at {_shown(path)}; this command does not create one: {WHERE} "
            "(`dragonopsd db migrate` makes a new, empty one there)"
        )
    return db


def lock(cfg: Config) -> int:
    """Take the state directory's lock (creating the directory, 0700); the descriptor holds
    it until closed or the process ends. StateLocked when another process has it."""
    state = cfg.state_dir()
    path = state / LOCK_FILE
    try:
        state.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StateLocked(f"cannot lock the state directory {_shown(state)}: {exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise StateLocked(
            f"another dragonopsd (pid {holder}) is already serving the state directory "
            f"{_shown(state)}; stop it first, or give this one its own with --state-dir DIR "
            "(or [storage] state_dir in --config FILE)"
        ) from None
    except OSError as exc:
        os.close(fd)
        raise StateLocked(f"cannot lock {_shown(path)}: {exc}") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def readable_by_others(cfg: Config) -> list[tuple[Path, int]]:
    """The state directory and database when group or others may read them (made by hand or
    by an older version; new ones are 0700/0600), with their modes: worth a warning."""
    found = []
    for path in (cfg.state_dir(), cfg.resolve(cfg.storage.path)):
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            found.append((_shown(path), mode))
    return found
