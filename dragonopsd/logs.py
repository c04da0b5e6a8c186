"""Logging setup: text for people, one JSON object per line for log shippers."""

from __future__ import annotations

import logging
import sys
import time

import msgspec

_encode = msgspec.json.Encoder().encode


class JsonFormatter(logging.Formatter):
    """One JSON object per record, with the fields log pipelines index on."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as one line of JSON."""
        doc = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return _encode(doc).decode()


def setup(level: str, fmt: str) -> None:
    """Configure the root logger for the daemon (stderr; journald adds timestamps itself)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    set_level(level)


def set_level(level: str) -> None:
    """Change the level at run time (SIGHUP)."""
    logging.getLogger().setLevel(level.upper())
    root = logging.getLogger().level
    logging.getLogger("aiohttp.access").setLevel(max(logging.WARNING, root))
    # aiosqlite logs SQL parameters at DEBUG, and parameters can be credentials (channel
    # passwords, token hashes): never below INFO, whatever the daemon's level.
    logging.getLogger("aiosqlite").setLevel(max(logging.INFO, root))
    # Apprise's messages quote service URLs, which carry tokens: silenced whatever the level.
    # What it failed at reaches the log through the dispatcher (scheme and kind, no URL).
    logging.getLogger("apprise").setLevel(logging.CRITICAL + 1)
