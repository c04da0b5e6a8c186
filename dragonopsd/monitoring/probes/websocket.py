"""Websocket probe: the upgrade handshake through the probes' guarded session, an optional
message, and the first reply as [BODY]."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
from multidict import CIMultiDict

from ...model.monitor import MonitorSpec
from .login import AuthenticationFailed
from .result import MAX_BODY, ProbeEnv, ProbeResult
from .secrets import SecretUnavailable, expand


async def probe_websocket(spec: MonitorSpec, env: ProbeEnv) -> ProbeResult:
    """Upgrade to spec.url; send spec.body if set and read the first reply (also read when a
    condition needs [BODY]). CONNECTED, RESPONSE_TIME (handshake), IP, BODY."""
    url = spec.url or ""
    # The model admits only ws(s) URLs for this kind; checked again at the SSRF boundary.
    if not url.startswith(("ws://", "wss://")):
        return ProbeResult({"CONNECTED": False}, error="only ws:// and wss:// are probed")
    headers: CIMultiDict[str] = CIMultiDict({"User-Agent": env.user_agent})
    try:
        for name, value in (spec.headers or {}).items():
            headers[name] = await expand(value, env.secrets)
    except SecretUnavailable as exc:
        return ProbeResult({"CONNECTED": False}, error=str(exc))
    if any(c in value for value in headers.values() for c in "\r\n"):
        return ProbeResult({"CONNECTED": False}, error="a secret in a header holds a line break")
    wants_reply = spec.body is not None or any("[BODY]" in c.upper() for c in spec.conditions)
    started = time.perf_counter()
    try:
        ws = await env.session.ws_connect(
            url,
            headers=headers,
            ssl=spec.verify_tls is not False,
            timeout=aiohttp.ClientWSTimeout(ws_receive=spec.timeout, ws_close=1.0),
            max_msg_size=MAX_BODY,
            autoping=True,
        )
    except aiohttp.WSServerHandshakeError as exc:
        if exc.status in (401, 403):
            raise AuthenticationFailed from None
        raise OSError(f"websocket handshake failed: HTTP {exc.status}") from None
    async with ws:
        elapsed = (time.perf_counter() - started) * 1000
        peer = ws.get_extra_info("peername")
        context: dict[str, Any] = {"CONNECTED": True, "RESPONSE_TIME": elapsed}
        if peer:
            context["IP"] = str(peer[0])
        if wants_reply:
            if spec.body is not None:
                await ws.send_str(spec.body)
            context["BODY"] = await _first_reply(ws)
    return ProbeResult(context, latency_ms=elapsed)


async def _first_reply(ws: aiohttp.ClientWebSocketResponse) -> bytes:
    message = await ws.receive()
    if message.type is aiohttp.WSMsgType.TEXT:
        return str(message.data).encode()[:MAX_BODY]
    if message.type is aiohttp.WSMsgType.BINARY:
        return bytes(message.data)[:MAX_BODY]
    if message.type is aiohttp.WSMsgType.ERROR:
        raise OSError("websocket error before a reply (message too large or malformed)")
    raise OSError("websocket closed before a reply")
