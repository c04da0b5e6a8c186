"""The request front: request ids, CORS, access, audit, problem+json and request counters.

Every route's handler is wrapped once, at registration, in a closure that already knows its
route row, so no aiohttp middleware runs at all: a middleware costs a few microseconds per
request (aiohttp wraps the chain in a partial and a context manager that sets the current app)
and the route row would have to be looked up again on every call (tests/bench/api.py measures
the difference). Requests that match no route (404, 405 and CORS preflights) reach
``Front.fallback``, a catch-all registered after every other route.

The steps, in order: mint or echo the request id, check the caller's role, run the handler
(an audited call's entry rides its writes), turn every failure into a problem, audit the call,
add the headers every response carries, count the request for /metrics. Calls refused to a
caller without a credential are counted for /metrics instead of audited: anyone can make
those, as many as they like.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from collections.abc import Iterable
from time import perf_counter

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from multidict import istr

from ..appkeys import PRINCIPAL, REQUEST_ID
from ..metrics.requests import UNMATCHED, RequestStats
from ..problem import Problem, invalid
from ..store.audit import PendingEntry
from ..store.sql import riding
from . import access
from .codec import encode
from .forwarded import client_of
from .route import Route

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
CLIENT_CLOSED = 499  # nginx's code for "the client closed the connection first"
FALLBACK = "front-fallback"  # the catch-all route's name; it is no API route of its own
_X_REQUEST_ID = istr("X-Request-ID")
_CSP = istr("Content-Security-Policy")


def _security_headers(csp: str) -> tuple[tuple[istr, str], ...]:
    # Pre-built istr pairs: CIMultiDict.extend takes them without re-folding each name.
    return (
        (istr("X-Content-Type-Options"), "nosniff"),
        (istr("Referrer-Policy"), "no-referrer"),
        (_CSP, csp),
        # aiohttp would announce "Python/3.x aiohttp/3.y": versions tell a scanner which
        # advisories to try. The product name is enough for whoever reads the headers.
        (hdrs.SERVER, "dragonopsd"),
    )


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


class Front:
    """The steps every request shares; one per app, built in the app factory."""

    def __init__(self, cors_origins: Iterable[str], stats: RequestStats) -> None:
        origins = frozenset(cors_origins)
        self._cors_any = "*" in origins
        self._cors = origins
        self._stats = stats
        # Request ids only correlate log lines, so they need to be unique, not unguessable:
        # a random per-process prefix and a counter cost a third of os.urandom per request.
        self._id_prefix = os.urandom(8).hex()
        self._ids = itertools.count(1)
        self._api_headers = _security_headers(API_CSP)
        self._html_headers = _security_headers(HTML_CSP)
        self._fallback_resource: web.AbstractResource | None = None

    def allowed_origin(self, request: web.Request) -> str | None:
        """The request's Origin when [server] cors_origins allows it, else None."""
        if not self._cors:
            return None
        origin = request.headers.get(hdrs.ORIGIN)
        if origin and (self._cors_any or origin in self._cors):
            return origin
        return None

    def headers(self, request: web.Request, response: web.StreamResponse) -> None:
        """Headers every response carries (request id, security headers, CORS).

        Handlers that prepare a response themselves (websocket upgrades, streamed scrapes)
        call this before prepare(); the front adds them to every other response.
        """
        headers = response.headers
        html = headers.get(hdrs.CONTENT_TYPE, "").startswith("text/html")
        headers.extend(self._html_headers if html else self._api_headers)
        rid = request.get(REQUEST_ID)
        if rid:
            headers[_X_REQUEST_ID] = rid
        if self._cors:
            origin = self.allowed_origin(request)
            if origin:
                headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
                headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = EXPOSED
                headers.add(hdrs.VARY, "Origin")

    def _request_id(self, request: web.Request) -> str:
        given = request.headers.get(_X_REQUEST_ID)
        if given and _REQUEST_ID.match(given):
            return given
        return f"{self._id_prefix}{next(self._ids):016x}"

    def _finish(
        self,
        request: web.Request,
        response: web.StreamResponse,
        template: str,
        started: float,
    ) -> web.StreamResponse:
        if not response.prepared:
            self.headers(request, response)
        # Plain counters keyed by the route template; the metrics collector reads them.
        self._stats.observe(template, request.method, response.status, perf_counter() - started)
        return response

    def wrap(self, route: Route) -> Handler:
        """The route's handler behind the front: one closure, its decisions made up front."""
        handler = route.handler
        public = route.role == "public"
        audited = route.audited
        template = route.path
        # The API takes exactly the query parameters its OpenAPI document declares, so the
        # document cannot fall behind a handler; pages (/, /status, docs) are left alone.
        declared = frozenset(p.name for p in route.params if p.where == "query")
        strict = template.startswith("/api/") and route.content_type == "application/json"
        request_id = self._request_id
        finish = self._finish
        stats = self._stats

        async def front(request: web.Request) -> web.StreamResponse:
            started = perf_counter()
            request[REQUEST_ID] = request_id(request)
            response: web.StreamResponse
            pending: PendingEntry | None = None
            try:
                if not public:
                    await access.authorize(request, route)
                if strict and request.query_string:
                    _check_query(request, declared)
                if audited:
                    pending = access.open_entry(request, route)
                    with riding(pending):
                        response = await handler(request)
                else:
                    response = await handler(request)
            except Problem as problem:
                response = problem_response(request, problem)
            except web.HTTPException as exc:
                if exc.status < 400:
                    raise
                response = problem_response(request, _from_http_exception(request, exc))
            except Exception as exc:
                response = _failed(request, exc, template)
            if audited:
                if response.status >= 400 and request.get(PRINCIPAL) is None:
                    stats.unaudited(template, response.status)
                else:
                    await access.record(request, route, response, pending)
            return finish(request, response, template, started)

        front.__doc__ = handler.__doc__
        return front

    def register(self, app: web.Application) -> None:
        """Add the catch-all route; call after every API route is on the router."""
        route = app.router.add_route("*", "/{tail:.*}", self.fallback, name=FALLBACK)
        self._fallback_resource = route.resource

    async def _allowed_methods(self, request: web.Request) -> set[str]:
        """The methods the routes at this path accept (the router's own 405 logic)."""
        allowed: set[str] = set()
        for resource in request.app.router.resources():
            if resource is self._fallback_resource:
                continue
            _, methods = await resource.resolve(request)
            allowed |= methods
        return allowed

    async def fallback(self, request: web.Request) -> web.StreamResponse:
        """No route took the request: a CORS preflight, or 405, or 404, as a problem."""
        started = perf_counter()
        request[REQUEST_ID] = self._request_id(request)
        response: web.StreamResponse
        try:
            allowed = await self._allowed_methods(request)
            preflight = hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers
            if request.method == "OPTIONS" and preflight:
                response = self._preflight(request, allowed)
            elif allowed:
                raise web.HTTPMethodNotAllowed(request.method, allowed)
            else:
                raise web.HTTPNotFound()
        except Problem as problem:
            response = problem_response(request, problem)
        except web.HTTPException as exc:
            response = problem_response(request, _from_http_exception(request, exc))
        except Exception as exc:
            response = _failed(request, exc, UNMATCHED)
        return self._finish(request, response, UNMATCHED, started)

    def _preflight(self, request: web.Request, allowed: set[str]) -> web.Response:
        """Answer a CORS preflight for an allowed origin, before any auth checks."""
        if self.allowed_origin(request) is None:
            raise Problem(403, "origin is not allowed by [server] cors_origins")
        if not allowed:
            raise web.HTTPNotFound()
        methods = sorted(m for m in allowed if m != "HEAD")
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


def _check_query(request: web.Request, declared: frozenset[str]) -> None:
    for name in request.query:
        if name not in declared:
            allowed = ", ".join(sorted(declared)) or "none"
            raise invalid(name[:64], f"unknown query parameter (allowed: {allowed})")


def _failed(request: web.Request, exc: Exception, template: str) -> web.Response:
    """The answer to a handler that raised. A client hanging up mid-response (a scrape, a
    websocket upgrade) is no server error: a debug line, counted as 499 like nginx does."""
    transport = request.transport
    if isinstance(exc, ConnectionError) and (transport is None or transport.is_closing()):
        log.debug(
            "client went away during %s %s [request %s]",
            request.method,
            template,
            request.get(REQUEST_ID),
        )
        return web.Response(status=CLIENT_CLOSED)  # never reaches the client, only the counters
    return _internal_error(request, template)


def _internal_error(request: web.Request, template: str) -> web.Response:
    # The route template, not the path: a path can carry a credential (a push token).
    log.exception(
        "unhandled error in %s %s from %s [request %s]",
        request.method,
        template,
        client_of(request).address,
        request.get(REQUEST_ID),
    )
    return problem_response(
        request, Problem(500, "internal error; quote the X-Request-ID header when reporting it")
    )


# The request front every handler is wrapped in: request ids, CORS, access, problems, counters.
FRONT: web.AppKey[Front] = web.AppKey("front")
