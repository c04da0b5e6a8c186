"""Middlewares and response hooks: request ids, problem+json errors, CORS.

Order (outermost first): request id -> CORS preflight -> errors -> handler. Headers every
response must carry (X-Request-ID, CORS) are added in ``on_response_prepare`` so they also land
on errors, 404s from the router and websocket upgrades.
"""

from __future__ import annotations

import logging
import re
import uuid

from aiohttp import web
from aiohttp.typedefs import Handler

from ..keys import CONFIG, REQUEST_ID
from ..problem import Problem
from .http import encode

log = logging.getLogger("dragonopsd.api")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
PROBLEM_TYPE = "application/problem+json"
EXPOSED = "ETag, X-Request-ID, Retry-After, Location"


def problem_response(request: web.Request, problem: Problem) -> web.Response:
    """Render a Problem as application/problem+json."""
    body = problem.body(instance=request.path, request_id=request.get(REQUEST_ID))
    resp = web.Response(body=encode(body), status=problem.status, content_type=PROBLEM_TYPE)
    resp.headers.update(problem.headers)
    return resp


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Echo a sane client X-Request-ID, else mint one; logs and problems quote it."""
    given = request.headers.get("X-Request-ID", "")
    request[REQUEST_ID] = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
    return await handler(request)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure leaves as problem+json; a 500 never shows a stack trace."""
    try:
        return await handler(request)
    except Problem as problem:
        return problem_response(request, problem)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        detail = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
        if exc.status == 405:
            detail = f"method {request.method} is not allowed here"
        elif exc.status == 404:
            detail = f"no resource at {request.path}"
        headers = {
            name: exc.headers[name]
            for name in ("Allow", "Retry-After", "WWW-Authenticate")
            if name in exc.headers
        }
        return problem_response(request, Problem(exc.status, detail, headers=headers))
    except Exception:
        log.exception(
            "unhandled error in %s %s [request %s]",
            request.method,
            request.path,
            request.get(REQUEST_ID),
        )
        return problem_response(
            request,
            Problem(500, "internal error; quote the X-Request-ID header when reporting it"),
        )


def _allowed_origin(request: web.Request) -> str | None:
    origin = request.headers.get("Origin")
    if not origin:
        return None
    allowed = request.app[CONFIG].server.cors_origins
    if "*" in allowed or origin in allowed:
        return origin
    return None


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer CORS preflights for allowed origins before routing-level method checks."""
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        origin = _allowed_origin(request)
        if origin is None:
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
    return await handler(request)


async def on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Headers every response carries, errors and upgrades included."""
    rid = request.get(REQUEST_ID)
    if rid:
        response.headers["X-Request-ID"] = rid
    origin = _allowed_origin(request)
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = EXPOSED
        response.headers.add("Vary", "Origin")
