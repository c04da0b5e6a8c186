"""The ping log of push monitors: the newest pings of each, with the body the job sent."""

from __future__ import annotations

from typing import Any, Literal

from ..clock import iso_of
from ..model.inventory import Wire
from .sql import Database

PingKind = Literal["success", "start", "fail"]
# Pings kept per monitor: Healthchecks shows a check's last pings the same way. At 10 KB a
# body that bounds one monitor's log near 0.5 MB.
KEPT = 50
_COLS = "at, kind, exit_code, duration, message, body, truncated, method, source, user_agent"


class Ping(Wire, kw_only=True):
    """One call a push monitor received, newest first in the log."""

    at: str
    kind: PingKind
    exit_code: int | None = None  # /{exitCode}
    duration_seconds: float | None = None  # since the run's /start
    message: str | None = None  # ?msg=
    body: str | None = None  # UTF-8 (invalid bytes replaced), first 10 KB
    truncated: bool = False  # the job sent more than was kept
    method: str
    source: str | None = None  # the caller's address (forwarded only from trusted proxies)
    user_agent: str | None = None


def _ping(r: Any) -> Ping:
    at, kind, code, duration, message, body, truncated, method, source, agent = r
    return Ping(
        at=iso_of(at),
        kind=kind,
        exit_code=code,
        duration_seconds=duration,
        message=message,
        body=body,
        truncated=bool(truncated),
        method=method,
        source=source,
        user_agent=agent,
    )


class PingStore:
    """Appends pings and prunes each monitor's log to its newest ``KEPT``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, monitor: int, at: float, ping: Ping) -> None:
        """Store one ping (at in Unix seconds); nothing when the monitor was just deleted."""
        async with self.db.write() as conn:
            await conn.execute(
                f"INSERT INTO push_pings (monitor, {_COLS}) "
                # Typed casts: PostgreSQL cannot infer a bare parameter's type in a SELECT list
                # (SQLite reads the same type names by affinity).
                "SELECT CAST(? AS BIGINT), CAST(? AS DOUBLE PRECISION), CAST(? AS TEXT), "
                "CAST(? AS BIGINT), CAST(? AS DOUBLE PRECISION), CAST(? AS TEXT), "
                "CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS TEXT), "
                "CAST(? AS TEXT) WHERE EXISTS (SELECT 1 FROM monitors WHERE seq = ?)",
                (
                    monitor,
                    at,
                    ping.kind,
                    ping.exit_code,
                    ping.duration_seconds,
                    ping.message,
                    ping.body,
                    int(ping.truncated),
                    ping.method,
                    ping.source,
                    ping.user_agent,
                    monitor,
                ),
            )
            await conn.execute(
                "DELETE FROM push_pings WHERE monitor = ? AND id <= (SELECT id FROM push_pings "
                "WHERE monitor = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (monitor, monitor, KEPT),
            )

    async def recent(self, monitor: int, limit: int) -> list[Ping]:
        """The monitor's newest pings, newest first."""
        async with (
            self.db.read() as conn,
            conn.execute(
                f"SELECT {_COLS} FROM push_pings WHERE monitor = ? ORDER BY id DESC LIMIT ?",
                (monitor, limit),
            ) as cur,
        ):
            return [_ping(r) for r in await cur.fetchall()]
