"""AMQP 0-9-1 probe (RabbitMQ): connect to a vhost with aiormq; with a queue, a passive declare
reports its depth and consumers. Passive: a missing queue is an error, never created."""

from __future__ import annotations

import time
import urllib.parse
from typing import Any

import aiormq
import aiormq.exceptions
from yarl import URL

from ...model.monitor import MonitorSpec
from .login import AuthenticationFailed, Login, login_for
from .result import ProbeEnv, ProbeResult


def _url(login: Login, vhost: str) -> URL:
    def quote(text: str) -> str:
        return urllib.parse.quote(text, safe="")

    # guest/guest is RabbitMQ's own default, and aiormq's when the URL names no user.
    user = quote(login.username or "guest")
    password = quote(login.password if login.password is not None else "guest")
    scheme = "amqps" if login.ssl is not None else "amqp"
    return URL(f"{scheme}://{user}:{password}@{login.netloc_host}:{login.port}/{quote(vhost)}")


async def probe_amqp(spec: MonitorSpec, env: ProbeEnv) -> ProbeResult:
    """Connect to spec.vhost; CONNECTED, RESPONSE_TIME, IP, and QUEUE_MESSAGES/QUEUE_CONSUMERS."""
    login = await login_for(spec, env)
    started = time.perf_counter()
    try:
        connection = await aiormq.connect(
            _url(login, spec.vhost or "/"),
            context=login.ssl,
            client_properties={"connection_name": "dragonopsd"},
        )
    except aiormq.exceptions.ProbableAuthenticationError:
        raise AuthenticationFailed from None
    except aiormq.exceptions.AMQPConnectionError as exc:
        cause = exc.__cause__
        raise cause if isinstance(cause, OSError) else OSError("amqp connection failed") from None
    except aiormq.exceptions.ProtocolSyntaxError:
        # The broker closed the handshake: RabbitMQ does so for a vhost that is missing or
        # that the user may not use.
        raise OSError(f"the broker refused vhost {spec.vhost or '/'!r}") from None
    context: dict[str, Any] = {"CONNECTED": True, "IP": login.ip}
    try:
        if spec.queue is not None:
            channel = await connection.channel()
            try:
                declared = await channel.queue_declare(spec.queue, passive=True)
            except aiormq.exceptions.ChannelNotFoundEntity:
                elapsed = (time.perf_counter() - started) * 1000
                context["RESPONSE_TIME"] = elapsed
                error = f"queue {spec.queue!r} does not exist"
                return ProbeResult(context, latency_ms=elapsed, error=error)
            except aiormq.exceptions.ChannelAccessRefused:
                raise OSError(f"access to queue {spec.queue!r} refused") from None
            context["QUEUE_MESSAGES"] = declared.message_count
            context["QUEUE_CONSUMERS"] = declared.consumer_count
    finally:
        await connection.close()
    elapsed = (time.perf_counter() - started) * 1000
    context["RESPONSE_TIME"] = elapsed
    return ProbeResult(context, latency_ms=elapsed)
