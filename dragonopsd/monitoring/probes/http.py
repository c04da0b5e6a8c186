"""HTTP(S) probe: one request through the app's session; status, body, timing, certificate."""

from __future__ import annotations

import functools
import time
from typing import Any

import aiohttp
from multidict import CIMultiDict

from ...model.monitor import MonitorSpec
from .peer import PeerResponse, expiry_fields
from .result import MAX_BODY, ProbeEnv, ProbeResult
from .secrets import SecretUnavailable, expand

MAX_REDIRECTS = 10


async def probe_http(spec: MonitorSpec, env: ProbeEnv) -> ProbeResult:
    """Request spec.url and report STATUS, BODY, RESPONSE_TIME, IP and, for https, expiry."""
    url = spec.url or ""
    # The model only admits http(s) URLs; checked again because this is the SSRF boundary
    # (no file://, no other scheme ever reaches the client).
    if not url.startswith(("http://", "https://")):
        return ProbeResult({"CONNECTED": False}, error="only http:// and https:// are probed")
    headers: CIMultiDict[str] = CIMultiDict({"User-Agent": env.user_agent})
    try:
        for name, value in (spec.headers or {}).items():
            headers[name] = await expand(value, env.secrets)
        if "${" in url:  # most URLs reference no secret: no coroutine, no regex for them
            url = await expand(url, env.secrets, quote=True)  # only ever in the password
    except SecretUnavailable as exc:
        return ProbeResult({"CONNECTED": False}, error=str(exc))
    if any("\r" in value or "\n" in value for value in headers.values()):
        # A secret's value is not checked like a header typed into the monitor is.
        return ProbeResult({"CONNECTED": False}, error="a secret in a header holds a line break")
    verify = spec.verify_tls is not False
    started = time.perf_counter()
    async with env.session.request(
        spec.method or "GET",
        url,
        headers=headers,
        data=spec.body.encode() if spec.body is not None else None,
        allow_redirects=spec.follow_redirects is not False,
        max_redirects=MAX_REDIRECTS,
        # True: the session's trust (system store or the configured CA); False: no checks.
        ssl=verify,
        timeout=_timeout(spec.timeout),
    ) as resp:
        context: dict[str, Any] = {"CONNECTED": True, "STATUS": resp.status}
        cert_expires_at: float | None = None
        if isinstance(resp, PeerResponse):  # sessions from make_session(); others lack the peer
            if resp.peer_ip is not None:
                context["IP"] = resp.peer_ip
            cert, cert_expires_at = expiry_fields(resp.peer_cert)
            context.update(cert)
        body, truncated = await _read_capped(resp.content)
    elapsed = (time.perf_counter() - started) * 1000
    context["RESPONSE_TIME"] = elapsed
    context["BODY"] = body
    if truncated:
        context["BODY_TRUNCATED"] = True
    return ProbeResult(context, latency_ms=elapsed, cert_expires_at=cert_expires_at)


@functools.lru_cache(maxsize=64)
def _timeout(total: float) -> aiohttp.ClientTimeout:
    """The request timeout for a probe budget (immutable, so one per distinct value)."""
    return aiohttp.ClientTimeout(total=total)


async def _read_capped(stream: aiohttp.StreamReader) -> tuple[bytes, bool]:
    """At most MAX_BODY bytes of the body, and whether more was there (one byte over tells)."""
    chunks: list[bytes] = []
    remaining = MAX_BODY + 1
    while remaining > 0:
        chunk = await stream.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    body = b"".join(chunks)
    return body[:MAX_BODY], len(body) > MAX_BODY
