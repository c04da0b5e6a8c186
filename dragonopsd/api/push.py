"""Push URLs a job calls (ping, /start, /fail, /{exitCode}) and the ping log the dashboard reads.

The push routes are public: the monitor's token in the path is the credential, as it has been
since push monitors existed (a cron job has no API token to send). The ping log is a viewer's
read, with each body masked below operator like a monitor's request body: a job's output can
hold what only operators should see.

A ping's body is kept up to ``BODY_LIMIT`` bytes; a longer one is truncated, never refused: a
413 would turn a job that succeeded but logged much into a missed ping, and an alert.
"""

from __future__ import annotations

import codecs
import re

import msgspec
from aiohttp import web

from ..appkeys import MONITORS, PRINCIPAL, PUSHES
from ..model.inventory import MASK, Wire
from ..model.principal import allows
from ..monitoring.push import Outlook, PushCall
from ..problem import Problem, invalid
from ..store.pings import KEPT, Ping, PingKind
from .access import name_entity
from .codec import id_param, json_response, page_limit, path_uuid
from .forwarded import client_of
from .route import Param, Route
from .scoped import monitor_row

BODY_LIMIT = 10 * 1024
_EXIT_CODE = re.compile(r"^\d{1,3}$")


class PushAck(Wire, kw_only=True):
    """Answer to a push call."""

    ok: bool


class PingLog(Wire, kw_only=True):
    """GET /api/monitors/{id}/pings: the newest pings, newest first, and what comes next."""

    monitor_id: str
    outlook: Outlook | None  # None while the monitor is paused or not loaded
    items: list[Ping]


async def _body(request: web.Request) -> tuple[str | None, bool]:
    """The first BODY_LIMIT bytes of the body as text, and whether there was more. The rest
    is never read into memory (aiohttp discards it after the answer)."""
    if not request.body_exists:
        return None, False
    data = bytearray()
    while len(data) <= BODY_LIMIT:
        chunk = await request.content.read(BODY_LIMIT + 1 - len(data))
        if not chunk:
            break
        data += chunk
    truncated = len(data) > BODY_LIMIT
    # Not final: a character cut at the limit is dropped rather than shown as U+FFFD.
    text = codecs.getincrementaldecoder("utf-8")("replace").decode(bytes(data[:BODY_LIMIT]))
    return text or None, truncated


def _query(request: web.Request) -> tuple[str | None, float | None]:
    """?msg= and ?ping=, checked; 422 naming the one that is wrong."""
    q = request.query
    message = q.get("msg")
    if message is not None and len(message) > 500:
        raise invalid("msg", "at most 500 characters")
    ping = None
    if "ping" in q:
        try:
            ping = float(q["ping"])
        except ValueError:
            raise invalid("ping", "expected milliseconds as a number") from None
        if not 0 <= ping <= 3_600_000:
            raise invalid("ping", "between 0 and 3600000 ms")
    return message, ping


async def _push(request: web.Request, kind: PingKind, exit_code: int | None = None) -> web.Response:
    message, ping = _query(request)
    body, truncated = await _body(request)
    agent = request.headers.get("User-Agent")
    call = PushCall(
        kind=kind,
        method=request.method,
        exit_code=exit_code,
        message=message,
        ping_ms=ping,
        body=body,
        truncated=truncated,
        source=client_of(request).address,
        user_agent=agent[:200] if agent else None,
    )
    engine = request.app[MONITORS].engine
    monitor_id = await engine.push(request.match_info["token"][:200], call)
    if monitor_id is None:
        raise Problem(404, "no push monitor has this token")
    name_entity(request, "monitors", monitor_id)  # the audit entry names it, not the token
    return json_response(PushAck(ok=True))


async def ping(request: web.Request) -> web.Response:
    """The job reports in: up, or down with ?status=down."""
    status = request.query.get("status", "up")
    if status not in ("up", "down"):
        raise invalid("status", "up or down")
    return await _push(request, "success" if status == "up" else "fail")


async def start(request: web.Request) -> web.Response:
    """A run began: its closing ping measures its duration; maxRuntime bounds it."""
    return await _push(request, "start")


async def fail(request: web.Request) -> web.Response:
    """The run failed: the monitor is down."""
    return await _push(request, "fail")


async def exit_status(request: web.Request) -> web.Response:
    """The run ended with this exit status: 0 is up, anything else is down."""
    raw = request.match_info["exitCode"]
    if not _EXIT_CODE.match(raw) or int(raw) > 255:
        raise invalid("exitCode", "expected an exit status from 0 to 255 (or start, fail)")
    code = int(raw)
    return await _push(request, "success" if code == 0 else "fail", code)


async def pings(request: web.Request) -> web.Response:
    """A push monitor's ping log with bodies, and when its next ping is expected."""
    ident = path_uuid(request, "monitor")
    limit = min(page_limit(request.query, 20), KEPT)
    row = await monitor_row(request, ident)
    if row.spec.kind != "push":
        raise Problem(409, f"monitor {ident} is a {row.spec.kind} monitor; only push monitors ping")
    service = request.app[PUSHES]
    items = await service.pings.recent(row.seq, limit)
    if not allows(request[PRINCIPAL].role, "operator"):
        items = [msgspec.structs.replace(p, body=MASK) if p.body else p for p in items]
    outlook = service.outlook(ident)
    return json_response(PingLog(monitor_id=ident, outlook=outlook, items=items))


def routes() -> list[Route]:
    """/api/push/{token}[/start|/fail|/{exitCode}] and /api/monitors/{id}/pings."""
    token = Param("token", "The push monitor's token", {"type": "string"}, "path", True)
    msg = Param("msg", "A message kept with the ping", {"type": "string", "maxLength": 500})
    took = Param("ping", "The job's own duration in ms", {"type": "number", "minimum": 0})
    status = Param("status", "What the job reports (default up)", {"enum": ["up", "down"]})
    code = Param(
        "exitCode",
        "The job's exit status: 0 is up, 1 to 255 down",
        {"type": "integer", "minimum": 0, "maximum": 255},
        "path",
        True,
    )
    signals = (
        ("", ping, "Push a heartbeat (the job ran)", (token, status, msg, took)),
        ("/start", start, "A run began (measures its duration)", (token, msg)),
        ("/fail", fail, "The run failed (down)", (token, msg, took)),
        # After /start and /fail: aiohttp tries routes in the order they were added.
        ("/{exitCode}", exit_status, "The run ended with an exit status", (token, code, msg, took)),
    )
    table = [
        Route(
            method,
            f"/api/push/{{token}}{tail}",
            handler,
            summary,
            "Monitors",
            # Public by design: the unguessable token in the path is the credential.
            "public",
            response=PushAck,
            params=params,
            errors=(404, 422),
            scope="global",
        )
        for tail, handler, summary, params in signals
        for method in ("GET", "POST")
    ]
    table.append(
        Route(
            "GET",
            "/api/monitors/{id}/pings",
            pings,
            "A push monitor's last pings, bodies included (masked below operator)",
            "Monitors",
            "viewer",
            response=PingLog,
            params=(
                id_param("monitor"),
                Param("limit", f"How many, 1 to {KEPT} (default 20)", {"type": "integer"}),
            ),
            errors=(404, 409, 422),
            scope="filtered",
        )
    )
    return table
