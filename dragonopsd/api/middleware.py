"""The front middleware and response hook: request ids, CORS, access, audit, problem+json.

One middleware rather than a chain: each aiohttp middleware layer costs a few microseconds per
request, measured in tests/bench/api.py. Its steps, in order: mint or echo the request id,
answer CORS preflights, check the caller's role, run the handler, turn every failure into a
problem, audit the call, and count it for /metrics. Headers every response carries
(X-Request-ID, security headers, CORS) are added in ``on_response_prepare`` so they also land
on 404s from the router and on websocket upgrades.
"""

from __future__ import annotations

import logging
import os
import re
from time import perf_counter

from aiohttp import web
from aiohttp.typedefs import Handler

from ..keys import CONFIG, METRICS, REQUEST_ID
from ..metrics.requests import UNMATCHED
from ..problem import Problem
from . import access
from .http import encode

log = logging.getLogger("dragonopsd.api")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
PROBLEM_TYPE = "application/problem+json"
EXPOSED = "ETag, X-Request-ID, Retry-After, Location, Idempotent-Replayed"
# Pages load only their own scripts and styles (no inline code, nothing from elsewhere);
# API responses are never rendered as documents at all.
HTML_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
API_CSP = "default-src 'none'; frame-ancestors 'none'"
FORWARDED_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


def problem_response(request: web.Request, problem: Problem) -> web.Response:
    """Render a Problem as application/problem+json."""
    body = problem.body(instance=request.path, request_id=request.get(REQUEST_ID))
    resp = web.Response(body=encode(body), status=problem.status, content_type=PROBLEM_TYPE)
    resp.headers.update(problem.headers)
    return resp


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> Problem:
    if exc.status == 405:
        detail = f"method {request.method} is not allowed here"
    elif exc.status == 404:
        detail = f"no resource at {request.path}"
    elif exc.text and not exc.text.startswith(f"{exc.status}:"):
        detail = exc.text
    else:
        detail = exc.reason
    headers = {name: exc.headers[name] for name in FORWARDED_HEADERS if name in exc.headers}
    return Problem(exc.status, detail, headers=headers)


def _preflight(request: web.Request) -> web.Response:
    """Answer a CORS preflight for an allowed origin, before any auth or routing checks."""
    if _allowed_origin(request) is None:
        raise Problem(403, "origin is not allowed by [server] cors_origins")
    # OPTIONS is registered nowhere, so the router reports the path's methods as a 405.
    exc = request.match_info.http_exception
    if not isinstance(exc, web.HTTPMethodNotAllowed):
        raise web.HTTPNotFound()
    methods = sorted(m for m in exc.allowed_methods if m != "HEAD")
    return web.Response(
        status=204,
        headers={
            "Access-Control-Allow-Methods": ", ".join(methods),
            "Access-Control-Allow-Headers": request.headers.get(
                "Access-Control-Request-Headers", "Authorization, Content-Type"
            ),
            "Access-Control-Max-Age": "600",
        },
    )


@web.middleware
async def front_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id, CORS preflight, access check, handler, audit; failures leave as problems."""
    started = perf_counter()
    given = request.headers.get("X-Request-ID")
    # os.urandom, not uuid4(): same 128 random bits at a quarter of the cost on the hot path.
    request[REQUEST_ID] = given if given and _REQUEST_ID.match(given) else os.urandom(16).hex()
    route = access.route_of(request)
    response: web.StreamResponse
    try:
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            response = _preflight(request)
        else:
            if route is not None and route.role != "public":
                await access.authorize(request, route)
            response = await handler(request)
    except Problem as problem:
        response = problem_response(request, problem)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = problem_response(request, _from_http_exception(request, exc))
    except Exception:
        log.exception(
            "unhandled error in %s %s [request %s]",
            request.method,
            request.path,
            request.get(REQUEST_ID),
        )
        response = problem_response(
            request,
            Problem(500, "internal error; quote the X-Request-ID header when reporting it"),
        )
    if route is not None and route.audited:
        await access.record(request, route, response)
    if not response.prepared:
        common_headers(request, response)
    # Plain counters keyed by the route template; the metrics collector reads them at scrape.
    request.app[METRICS].http.observe(
        route.path if route is not None else UNMATCHED,
        request.method,
        response.status,
        perf_counter() - started,
    )
    return response


def _allowed_origin(request: web.Request) -> str | None:
    origin = request.headers.get("Origin")
    if not origin:
        return None
    allowed = request.app[CONFIG].server.cors_origins
    if "*" in allowed or origin in allowed:
        return origin
    return None


def common_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Headers every response carries (request id, security headers, CORS).

    Set by the front middleware rather than an on_response_prepare signal: the signal costs a
    few microseconds per request (tests/bench/api.py); handlers that prepare a response
    themselves (websocket upgrades) call this before prepare().
    """
    headers = response.headers
    rid = request.get(REQUEST_ID)
    if rid:
        headers["X-Request-ID"] = rid
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    html = headers.get("Content-Type", "").startswith("text/html")
    headers["Content-Security-Policy"] = HTML_CSP if html else API_CSP
    origin = _allowed_origin(request)
    if origin:
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Expose-Headers"] = EXPOSED
        headers.add("Vary", "Origin")
