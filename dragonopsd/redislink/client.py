"""One Redis client per process, and whether Redis is answering right now.

Every user of Redis goes through ``RedisLink``: it owns the redis.asyncio client (a pool), a
watcher task that pings once a second and flips ``up``, the error counter the metrics export,
and hooks that run when Redis comes back (the cache drops what it may have missed). Callers
never wait for Redis to come back: they check ``up`` or catch ``ERRORS`` and carry on locally.

The health check asks Redis for its TIME, which also gives the shared clock: times that
cross hosts (worker liveness, job expiry, when a remote probe ran) are written in Redis's
clock with ``now()`` and read back with ``local()``, so hosts whose clocks disagree by
seconds or minutes still agree on what is alive, expired or when it happened.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ..config import RedisConfig
from .keys import Keys

log = logging.getLogger("dragonopsd.redis")

# What a call may raise when Redis is away or the connection broke.
ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)
PING_INTERVAL = 1.0
# A TIME answer slower than this says too little about the offset to replace the last one.
CLOCK_MAX_RTT = 0.25
# The offset moves only when a reading is this far from it: every reading is off by up to
# half a round trip, and an offset that wandered by a millisecond each second would shift
# stored check times for nothing (liveness and expiry windows are whole seconds).
CLOCK_TOLERANCE = 0.5
MAX_CONNECTIONS = 256  # blocking stream readers hold one each; dispatch bursts need the rest
BLOCK_MS = 1000  # blocking stream reads wait at most this long, so they notice cancellation


class RedisLink:
    """The client, its health, and the names under this deployment's prefix."""

    def __init__(self, cfg: RedisConfig, *, name: str = "core") -> None:
        self.cfg = cfg
        self.keys = Keys(cfg.prefix)
        self.name = name
        # Blocking reads (XREADGROUP BLOCK) must fit in the socket timeout.
        timeout = cfg.connect_timeout + BLOCK_MS / 1000 + 1
        # A blocking pool: past MAX_CONNECTIONS a caller waits (up to the timeout) for a free
        # connection instead of failing at once with "Too many connections" (a burst of
        # dispatches at start would otherwise mark Redis away).
        pool = redis.BlockingConnectionPool.from_url(
            cfg.url,
            max_connections=MAX_CONNECTIONS,
            timeout=timeout,
            socket_connect_timeout=cfg.connect_timeout,
            socket_timeout=timeout,
            health_check_interval=5,
            client_name=f"dragonopsd-{name}",
        )
        # One quick retry of a broken connection, no more: a call against a Redis that is
        # away must fail fast (the caller carries on locally), and a retried XADD duplicates.
        self.client: redis.Redis = redis.Redis(connection_pool=pool, retry=Retry(NoBackoff(), 1))
        self.up = False
        self.errors = 0
        self.outages = 0
        # When the current outage was first logged (monotonic), None while Redis answers: an
        # outage is one WARNING and its end one INFO, never a line per retry.
        self._away_since: float | None = None
        # Run (in order) each time Redis answers again after being away, and at the first ping.
        self.on_up: list[Callable[[], Awaitable[None]]] = []
        self._up_event = asyncio.Event()
        # Redis's clock minus this host's (seconds), from the last quick TIME answer.
        self.clock_offset = 0.0

    def shared(self, t: float) -> float:
        """A time of this host's clock in Redis's, for values other hosts read."""
        return t + self.clock_offset

    def now(self) -> float:
        """The current time in Redis's clock (Unix seconds)."""
        return self.shared(time.time())

    def local(self, shared: float) -> float:
        """A time another host wrote in Redis's clock, in this host's clock."""
        return shared - self.clock_offset

    async def ack_and_delete(self, stream: str, group: str, *ids: Any) -> None:
        """XACK then XDEL in one MULTI: entries done with leave Redis at once instead of
        waiting for the stream's trim (jobs carry monitor specs, results response bodies)."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.xack(stream, group, *ids)
            pipe.xdel(stream, *ids)
            await pipe.execute()

    @property
    def state(self) -> str:
        """What /readyz reports."""
        return "ok" if self.up else "degraded"

    def failed(self, exc: BaseException, what: str) -> None:
        """A call failed: count it, and mark Redis away until the watcher sees it again.
        The first failure of an outage (at start too) is logged, the retries are not."""
        self.errors += 1
        if self.up:
            self.up = False
            self.outages += 1
            self._up_event.clear()
        if self._away_since is None:
            self._away_since = time.monotonic()
            log.warning(
                "redis at %s is unreachable (%s: %s); carrying on locally, retrying every %gs",
                safe_url(self.cfg.url),
                what,
                exc,
                PING_INTERVAL,
            )
        else:
            log.debug("redis still away (%s: %s)", what, exc)

    async def wait_up(self) -> None:
        """Return once Redis answers (immediately when it does)."""
        await self._up_event.wait()

    async def ping(self) -> bool:
        """One health check (TIME, which also sets the clock offset); flips ``up`` and runs
        the on_up hooks on recovery."""
        try:
            async with asyncio.timeout(self.cfg.connect_timeout):
                sent = time.time()
                seconds, micros = await self.client.time()
                received = time.time()
        except ERRORS as exc:
            self.failed(exc, "ping")
            return False
        offset = seconds + micros / 1e6 - (sent + received) / 2
        if received - sent <= CLOCK_MAX_RTT and abs(offset - self.clock_offset) > CLOCK_TOLERANCE:
            log.info("Redis's clock is %+.1f s from this host's; shared times use Redis's", offset)
            self.clock_offset = offset
        if not self.up:
            for hook in self.on_up:
                try:
                    await hook()
                except ERRORS as exc:
                    self.failed(exc, "recovery")
                    return False
            self.up = True
            self._up_event.set()
            if self._away_since is None:
                log.info("redis is answering at %s", safe_url(self.cfg.url))
            else:
                away = time.monotonic() - self._away_since
                log.info(
                    "redis is answering again at %s (away %.0fs)", safe_url(self.cfg.url), away
                )
                self._away_since = None
        return True

    async def watch(self) -> None:
        """Ping every second until cancelled."""
        while True:
            await self.ping()
            await asyncio.sleep(PING_INTERVAL)

    async def close(self) -> None:
        """Close the client and its pool."""
        await self.client.aclose(close_connection_pool=True)


async def ensure_group(link: RedisLink, stream: str, group: str, start: str = "0") -> None:
    """Create the consumer group (and the stream) unless it exists."""
    try:
        await link.client.xgroup_create(stream, group, id=start, mkstream=True)
    except ERRORS as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def safe_url(url: str) -> str:
    """The URL without credentials (user:password@ or ?password=), for logs and output."""
    scheme, _, rest = url.partition("://")
    rest = rest.split("?", 1)[0]
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return f"{scheme}://{rest}"
