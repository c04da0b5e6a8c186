"""Redis probe: log in (password or ACL user), PING, and INFO when a condition reads [INFO]."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ...model.monitor import MonitorSpec
from .login import AuthenticationFailed, Login, login_for
from .result import ProbeEnv, ProbeResult


class _ProbeConnection(aioredis.Connection):
    """One connection to the judged IP, with the probe's TLS context (redis-py would build its
    own from file paths and check the certificate against the IP it was given)."""

    def __init__(self, *, tls: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._tls = tls

    def _connection_arguments(self) -> Mapping[str, Any]:
        arguments = dict(super()._connection_arguments())
        if self._tls is not None:
            arguments["ssl"] = self._tls
        return arguments


def _pool(login: Login, timeout: float) -> aioredis.ConnectionPool:
    return aioredis.ConnectionPool(
        connection_class=_ProbeConnection,
        max_connections=1,
        host=login.ip,
        port=login.port,
        username=login.username,
        password=login.password,
        tls=login.ssl,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        # One attempt: the monitor's own retries decide what a failure means.
        retry=Retry(NoBackoff(), 0),
        # No CLIENT SETNAME/SETINFO: a monitoring user allowed only PING and INFO must pass.
        driver_info=None,
    )


async def probe_redis(spec: MonitorSpec, env: ProbeEnv) -> ProbeResult:
    """PING spec.host; CONNECTED, RESPONSE_TIME (to PONG), IP, and INFO if conditions use it."""
    login = await login_for(spec, env)
    pool = _pool(login, spec.timeout)
    client = aioredis.Redis(connection_pool=pool)
    started = time.perf_counter()
    try:
        await client.ping()
        elapsed = (time.perf_counter() - started) * 1000
        context: dict[str, Any] = {"CONNECTED": True, "RESPONSE_TIME": elapsed, "IP": login.ip}
        if any("[INFO]" in c.upper() for c in spec.conditions):
            context["INFO"] = await client.info()
    except redis.exceptions.AuthenticationError:
        raise AuthenticationFailed from None
    except redis.exceptions.TimeoutError:
        raise TimeoutError from None
    except redis.exceptions.ConnectionError as exc:
        # redis-py wraps the OS error in text that names the address; the cause says it plainly.
        cause = exc.__cause__ or exc.__context__
        raise cause if isinstance(cause, OSError) else OSError("connection failed") from None
    except redis.exceptions.ResponseError as exc:
        raise OSError(f"redis error: {exc}"[:200]) from None
    finally:
        await client.aclose()
        await pool.disconnect()
    return ProbeResult(context, latency_ms=elapsed)
