"""GET /metrics: the Prometheus exposition, on the API port or on its own listener.

The route is public at the role layer (Prometheus holds no API token); ``[metrics] token``,
when set, is checked here instead, in constant time, with the same failure limiter as API
tokens. With ``[metrics] listen`` a second aiohttp site serves only /metrics on that address,
and the API port answers 404 for it, so metrics can stay on an internal interface.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from ..appkeys import AUTH_LIMITER, CONFIG, METRICS
from ..config import MetricsConfig
from ..problem import Problem
from .access import refusal
from .forwarded import PROXIES
from .front import FRONT, problem_response
from .listener import Runner
from .route import Route

log = logging.getLogger("dragonopsd.metrics")


def wants_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header admits gzip (``gzip;q=0`` refuses it)."""
    for part in accept_encoding.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "x-gzip"):
            q = params.strip().lower()
            return not q.startswith("q=") or q[2:].strip() not in ("0", "0.0", "0.00", "0.000")
    return False


def _check_token(request: web.Request, token: str) -> None:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return  # the right token passes whatever failed before it from the same address
    raise refusal(request, "/metrics needs the [metrics] token as a bearer token")


async def _scrape(request: web.Request) -> web.StreamResponse:
    exporter = request.app[METRICS]
    if exporter.token:  # read per scrape: SIGHUP may have rotated it
        _check_token(request, exporter.token)
    scrape = await exporter.scrape(
        request.headers.get("Accept", ""),
        wants_gzip(request.headers.get("Accept-Encoding", "")),
    )
    headers = {"Content-Type": scrape.content_type, "Vary": "Accept, Accept-Encoding"}
    if scrape.gzipped:
        headers["Content-Encoding"] = "gzip"
    resp = web.StreamResponse(headers=headers)
    resp.content_length = scrape.length
    request.app[FRONT].headers(request, resp)  # prepared here, so the front leaves it alone
    await resp.prepare(request)
    if request.method != "HEAD":
        for part in scrape.parts:  # each write waits while the socket's buffer is full
            await resp.write(part)
    await resp.write_eof()
    return resp


async def metrics(request: web.Request) -> web.StreamResponse:
    """The exposition on the API port (404 when [metrics] listen moves it elsewhere)."""
    if request.app[CONFIG].metrics.listen:
        raise Problem(404, "/metrics is served on the [metrics] listen address")
    return await _scrape(request)


async def _listener_metrics(request: web.Request) -> web.StreamResponse:
    try:
        return await _scrape(request)
    except Problem as problem:  # this app has no request front to render it
        return problem_response(request, problem)


def listener_ctx(
    cfg: MetricsConfig,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup_ctx entry: when ``listen`` is set, serve /metrics there for the app's life.
    A port that cannot be bound fails the start, like the API port does."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        if not cfg.listen:
            yield
            return
        host, _, port = cfg.listen.rpartition(":")
        own = web.Application()
        own[CONFIG] = app[CONFIG]
        own[METRICS] = app[METRICS]
        own[AUTH_LIMITER] = app[AUTH_LIMITER]
        own[PROXIES] = app[PROXIES]
        own[FRONT] = app[FRONT]
        own.router.add_get("/metrics", _listener_metrics)
        # The API port's limits and problem+json for what aiohttp refuses (api/listener.py).
        runner = Runner(own, app[CONFIG].server, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, host.strip("[]"), int(port)).start()
        except OSError as exc:
            await runner.cleanup()
            raise OSError(f"cannot serve metrics on {cfg.listen}: {exc}") from exc
        # Not "listening on": that phrase names the API port in the log (tests look for it).
        for address, bound_port, *_ in runner.addresses:
            shown = f"[{address}]" if ":" in address else address
            log.info("metrics served at http://%s:%s/metrics", shown, bound_port)
        try:
            yield
        finally:
            await runner.cleanup()

    return ctx


def routes() -> list[Route]:
    """The Prometheus endpoint."""
    return [
        Route(
            "GET",
            "/metrics",
            metrics,
            "Prometheus metrics: text or OpenMetrics, gzip; [metrics] token when set",
            "System",
            "public",
            content_type="text/plain",
            errors=(401, 404, 429),
            scope="global",
        )
    ]
