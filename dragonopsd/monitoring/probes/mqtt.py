"""MQTT probe: connect with aiomqtt; optionally publish to a topic and wait for the message back,
or wait for the next message on it; [BODY] is the payload received."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import aiomqtt

from ...model.monitor import MonitorSpec
from .login import AuthenticationFailed, login_for
from .result import MAX_BODY, ProbeEnv, ProbeResult

# CONNACK refusals for credentials: 4/5 in MQTT 3.1.1, 134/135 as paho reports them in v5 terms.
_AUTH_CODES = frozenset({4, 5, 134, 135})
_ERRNO = re.compile(r"^\[Errno (\d+)\] (.*)$")


def _os_error(exc: aiomqtt.MqttError) -> OSError:
    """aiomqtt flattens the connect OSError into its text; rebuild it so it reads like others."""
    text = str(exc)
    match = _ERRNO.match(text)
    if match:
        return OSError(int(match[1]), match[2])
    return OSError(f"mqtt error: {text}"[:200])


def _rc(exc: aiomqtt.MqttCodeError) -> int | None:
    rc = exc.rc
    return rc if isinstance(rc, int) else getattr(rc, "value", None)


async def probe_mqtt(spec: MonitorSpec, env: ProbeEnv) -> ProbeResult:
    """Connect to spec.host; with spec.topic, publish spec.body there (if any) and wait for it,
    else for any message. CONNECTED, RESPONSE_TIME, IP, BODY."""
    login = await login_for(spec, env)
    client = aiomqtt.Client(
        hostname=login.ip,
        port=login.port,
        username=login.username,
        password=login.password,
        identifier=f"dragonopsd-{uuid.uuid4().hex[:12]}",
        tls_context=login.ssl,
        timeout=spec.timeout,
        keepalive=max(5, int(spec.timeout) + 5),
    )
    started = time.perf_counter()
    context: dict[str, Any] = {"CONNECTED": True, "IP": login.ip}
    try:
        try:
            async with client:
                if spec.topic is not None:
                    context["BODY"] = await _round_trip(client, spec)
        except BaseException:
            _abandon(client)
            raise
    except aiomqtt.MqttCodeError as exc:
        if _rc(exc) in _AUTH_CODES:
            raise AuthenticationFailed from None
        raise OSError(f"mqtt refused: {exc}"[:200]) from None
    except aiomqtt.MqttError as exc:
        raise _os_error(exc) from None
    elapsed = (time.perf_counter() - started) * 1000
    context["RESPONSE_TIME"] = elapsed
    return ProbeResult(context, latency_ms=elapsed)


def _abandon(client: aiomqtt.Client) -> None:
    """Close the socket of a connection cut short (timeout before CONNACK, cancellation).

    aiomqtt leaves a connect that never completed registered with the loop, and its callbacks
    would fire on a client nobody awaits when the broker finally talks or hangs up. paho's own
    close unregisters them through aiomqtt's socket callbacks; aiomqtt has no public way.
    """
    client._client._sock_close()


async def _round_trip(client: aiomqtt.Client, spec: MonitorSpec) -> bytes:
    """The payload of the first message on spec.topic (the one we sent, when we send one)."""
    assert spec.topic is not None
    sent = spec.body.encode() if spec.body is not None else None
    await client.subscribe(spec.topic, qos=1)
    if sent is not None:
        await client.publish(spec.topic, payload=sent, qos=1)
    async for message in client.messages:
        payload = message.payload
        body = bytes(payload) if isinstance(payload, bytes | bytearray) else str(payload).encode()
        # A retained or foreign message on the topic is not our echo.
        if sent is None or body == sent:
            return body[:MAX_BODY]
    raise OSError("disconnected before a message arrived")
