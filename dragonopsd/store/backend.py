"""Which database a configuration names: the SQLite file, or PostgreSQL when [storage] url is."""

from __future__ import annotations

from ..config import Config
from .db import Database as SqliteDatabase
from .postgres import PostgresDatabase, redact
from .sql import Database


def database_for(cfg: Config, *, readers: int | None = None) -> Database:
    """The Database of cfg, not yet opened (readers: SQLite reader connections / pool size)."""
    storage = cfg.storage
    if storage.url:
        return PostgresDatabase(
            storage.url,
            password_file=cfg.resolve(storage.password_file) if storage.password_file else None,
            max_size=readers or storage.pool_size,
        )
    return SqliteDatabase(
        cfg.resolve(storage.path),
        synchronous=storage.synchronous,
        busy_timeout_ms=storage.busy_timeout_ms,
        readers=readers or storage.readers,
    )


def storage_problems(cfg: Config) -> list[str]:
    """What keeps this storage setting from starting: PostgreSQL means several cores, and
    cores share their events and ownership through Redis."""
    if cfg.storage.url and not cfg.redis.url:
        return [
            "[storage] url is PostgreSQL, which needs [redis] url too (cores share events "
            "and monitors through Redis); set [redis] url, or empty [storage] url for SQLite"
        ]
    return []


def describe(cfg: Config) -> str:
    """The database for humans: the SQLite path, or the PostgreSQL URL without its password."""
    return redact(cfg.storage.url) if cfg.storage.url else str(cfg.resolve(cfg.storage.path))
