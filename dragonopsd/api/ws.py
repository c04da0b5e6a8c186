"""``/api/ws`` and ``/api/servers/{id}/stream``: the live-event websocket (DESIGN.md frames).

The routes are public in the route table because a browser cannot set headers on a websocket:
the handler authenticates itself, from the ``Authorization`` header when there is one (a bad
one is a 401 before the upgrade), else from a first frame ``{"op":"auth","token":"…"}`` that
must arrive within ``auth_timeout`` (close 4401 otherwise). An ``Origin`` outside
``[server] cors_origins`` (and not this host's own) is refused with 403 before the upgrade.
Close codes: 4401 authenticate (again), 4403 role may not stream, 1013 too slow, 1009 frame
over 64 KiB, 1007 a frame that is not JSON before authentication (or nested too deeply, at any
time), 1008 too many sockets for this token or user, 1001 shutdown.

Sockets are capped per client address and per principal (``[server] max_websockets_per_*``):
over the cap the upgrade is refused with 429 when the header said who is calling, and a socket
that authenticated by frame is closed with 1008.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Callable, Sequence
from typing import Annotated

import msgspec
from aiohttp import WSMsgType, web

from ..appkeys import AUTHENTICATOR, HUB, PRINCIPAL
from ..live.client import Client
from ..live.hub import UNAUTHORIZED, Hub
from ..live.topics import ack, error, template_of
from ..model.principal import Principal
from ..problem import Problem
from .access import authenticate
from .forwarded import client_of, same_origin
from .front import FRONT
from .route import Param, Route

log = logging.getLogger("dragonopsd.live")

MAX_FRAME = 64 * 1024
FORBIDDEN = 4403
INVALID_DATA = 1007  # RFC 6455: the frame's payload is not what the protocol expects
POLICY_VIOLATION = 1008
TOO_DEEP = "frame nested too deeply"
_FIN_TEXT = 0x81  # RFC 6455 frame byte 0: final fragment, text; servers do not mask
# Every human role may watch every topic (none carries secrets); agents push samples only.
STREAM_ROLES = frozenset({"viewer", "operator", "admin"})
Topics = Annotated[list[str], msgspec.Meta(max_length=256)]


class Op(msgspec.Struct, tag_field="op", forbid_unknown_fields=True):
    """Base of client frames: ``op`` names the operation."""


class AuthOp(Op, tag="auth"):
    """Authenticate (the first frame, when no Authorization header came)."""

    token: str


class SubscribeOp(Op, tag="subscribe"):
    """Snapshot, then live events, for each topic; ``batch`` switches the socket's live events
    to ``batch`` frames (true) or back to one frame each (false); left out, it stays as is."""

    topics: Topics
    batch: bool | None = None


class UnsubscribeOp(Op, tag="unsubscribe"):
    """Stop live events for each topic."""

    topics: Topics


class PingOp(Op, tag="ping"):
    """Answered with an ack (application-level liveness, beside websocket pings)."""


# Built once: decoding a tagged union picks the Struct by ``op`` in one pass.
DECODER = msgspec.json.Decoder(AuthOp | SubscribeOp | UnsubscribeOp | PingOp)


class _Socket:
    """An aiohttp websocket as the hub's Socket."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request) -> None:
        self._ws = ws
        self._transport = request.transport

    def write_now(self, frame: bytes) -> bool:
        # Uncompressed aiohttp frames are written whole and synchronously, so a frame of ours
        # can never land inside one of aiohttp's (pings, pongs, the close frame).
        t = self._transport
        if t is None or t.is_closing() or t.get_write_buffer_size() or self._ws.closed:
            return False
        n = len(frame)
        if n < 126:
            header = bytes((_FIN_TEXT, n))
        elif n < 65536:
            header = struct.pack("!BBH", _FIN_TEXT, 126, n)
        else:
            header = struct.pack("!BBQ", _FIN_TEXT, 127, n)
        t.write(header + frame)
        return True

    async def send(self, frame: bytes) -> None:
        await self._ws.send_frame(frame, WSMsgType.TEXT)

    async def close(self, code: int, reason: str) -> None:
        await self._ws.close(code=code, message=reason.encode())

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def buffered(self) -> int:
        t = self._transport
        return 0 if t is None or t.is_closing() else t.get_write_buffer_size()


def _origin_ok(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser: there is no page whose credentials could be borrowed
    # The built-in dashboard is served from this host, so its own origin is always fine.
    allowed = request.app[FRONT].allowed_origin(request) is not None
    return allowed or same_origin(request, origin)


def _still_valid(request: web.Request, principal: Principal, credential: str) -> Callable[[], bool]:
    """How the hub re-checks a socket's credential: tokens can be revoked, JWTs expire."""
    if principal.kind == "token":
        tokens = request.app[AUTHENTICATOR].tokens
        return lambda: tokens.principal(credential) is not None
    expires = principal.expires_at
    authenticator = request.app[AUTHENTICATOR]
    generation = authenticator.jwt_generation  # a reload of [auth] JWT settings moves it
    # A profile whose role or scope an admin changed signs in again: the socket's principal
    # (and the events its scope lets through) was fixed when it connected.
    subject, access = principal.id, authenticator.access(principal.id)
    return lambda: (
        (expires is None or expires > time.time())
        and authenticator.jwt_generation == generation
        and authenticator.access(subject) == access
    )


async def _first_frame(ws: web.WebSocketResponse, wait: float) -> str | None:
    """The token from an ``auth`` first frame, or None (the socket is then closed)."""
    try:
        msg = await ws.receive(timeout=wait)
    except TimeoutError:
        await ws.close(code=UNAUTHORIZED, message=b"authentication timed out")
        return None
    if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
        try:
            op = DECODER.decode(msg.data)
        except msgspec.ValidationError:
            op = None  # JSON, but not an auth frame: the 4401 below says what is expected
        except (msgspec.DecodeError, RecursionError) as exc:
            # Not JSON at all (as read_json's 400): nothing here is worth more than a debug line.
            reason = TOO_DEEP if isinstance(exc, RecursionError) else "frame is not JSON"
            log.debug("websocket closed before authentication: %s", reason)
            await ws.close(code=INVALID_DATA, message=reason.encode())
            return None
        if isinstance(op, AuthOp):
            return op.token
    if not ws.closed:
        await ws.close(code=UNAUTHORIZED, message=b'expected {"op":"auth","token":"..."} first')
    return None


async def _frame_auth(
    request: web.Request, ws: web.WebSocketResponse, wait: float
) -> tuple[Principal, str] | None:
    """The principal and token of an auth first frame; None when the socket was closed."""
    token = await _first_frame(ws, wait)
    if token is None:
        return None
    try:
        principal = await authenticate(request, f"Bearer {token}")
    except Problem as exc:
        await ws.close(code=UNAUTHORIZED, message=exc.detail.encode()[:120])
        return None
    if principal.role not in STREAM_ROLES:
        await ws.close(code=FORBIDDEN, message=b"this role may not open websockets")
        return None
    return principal, token


async def _handle(hub: Hub, client: Client, data: str | bytes) -> bool:
    """One client frame; bad input earns an error frame and nothing else, but a frame nested
    past the decoder's depth (no client makes one by mistake) closes the socket: False then."""
    try:
        op = DECODER.decode(data)
    except msgspec.DecodeError as exc:
        client.send(error(f"bad frame: {exc}"))
        return True
    except RecursionError:
        log.debug("websocket closed: %s", TOO_DEEP)
        client.shutdown(INVALID_DATA, TOO_DEEP)
        return False
    match op:
        case SubscribeOp(topics=topics, batch=batch):
            if batch is not None:
                client.batch = batch
            await hub.subscribe(client, topics)
        case UnsubscribeOp(topics=topics):
            hub.unsubscribe(client, topics)
        case PingOp():
            client.send(ack("ping"))
        case AuthOp():
            client.send(error("already authenticated", op="auth"))
    return True


async def _before_upgrade(request: web.Request) -> tuple[Principal | None, str]:
    """Origin and header auth (401, or 429 past the failure limit), each refused as HTTP before
    the upgrade; the principal and its credential when an Authorization header came, else
    (None, "")."""
    if not _origin_ok(request):
        raise Problem(403, "origin is not allowed by [server] cors_origins")
    header = request.headers.get("Authorization")
    if not header:
        return None, ""
    principal = await authenticate(request, header)
    credential = header.strip().partition(" ")[2].strip()
    if principal.role not in STREAM_ROLES:
        raise Problem(403, f"role {principal.role} may not open websockets")
    return principal, credential


async def _serve(request: web.Request, initial: Sequence[str]) -> web.StreamResponse:
    hub = request.app[HUB]
    settings = hub.settings
    ws = web.WebSocketResponse(
        heartbeat=settings.heartbeat,
        max_msg_size=MAX_FRAME,
        compress=False,  # frames are small; deflate would cost CPU per client per frame
        timeout=settings.close_timeout,
    )
    if not ws.can_prepare(request).ok:
        raise Problem(400, "websocket upgrade required", headers={"Upgrade": "websocket"})
    principal, credential = await _before_upgrade(request)
    principals, addresses = hub.caps.principals, hub.caps.addresses
    address = client_of(request).address
    if not addresses.take(address):
        raise Problem(429, f"at most {addresses.cap} websockets per client address")
    over = f"at most {principals.cap} websockets per token or user"
    actor = ""  # whose principal slot this socket holds, once it holds one
    try:
        if principal is not None:
            if not principals.take(principal.actor):
                raise Problem(429, over)
            actor = principal.actor
        async with asyncio.timeout(10):  # a peer that never reads cannot hold the upgrade
            request.app[FRONT].headers(request, ws)  # request id and security headers
            await ws.prepare(request)
        if principal is None:
            authenticated = await _frame_auth(request, ws, settings.auth_timeout)
            if authenticated is None:
                return ws
            principal, credential = authenticated
            if not principals.take(principal.actor):
                await ws.close(code=POLICY_VIOLATION, message=over.encode())
                return ws
            actor = principal.actor
            await ws.send_frame(ack("auth", role=principal.role), WSMsgType.TEXT)
        request[PRINCIPAL] = principal
        await _stream(request, ws, _still_valid(request, principal, credential), initial)
    finally:
        addresses.give_back(address)
        if actor:
            principals.give_back(actor)
    return ws


async def _stream(
    request: web.Request,
    ws: web.WebSocketResponse,
    still_valid: Callable[[], bool],
    initial: Sequence[str],
) -> None:
    """An authenticated socket's life: its client in the hub, fed by the frames it sends."""
    hub = request.app[HUB]
    client = hub.attach(_Socket(ws, request), still_valid, request[PRINCIPAL])
    try:
        if initial:
            await hub.subscribe(client, initial)
        async for msg in ws:
            data = msg.data if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY) else None
            if data is not None and not await _handle(hub, client, data):
                break
    finally:
        await hub.detach(client)


async def websocket(request: web.Request) -> web.StreamResponse:
    """Live events: subscribe to topics, get a snapshot, then events (see DESIGN.md)."""
    return await _serve(request, ())


async def server_stream(request: web.Request) -> web.StreamResponse:
    """One server's metrics: ``/api/ws`` already subscribed to ``servers.{id}.metrics``."""
    topic = f"servers.{request.match_info['id']}.metrics"
    if template_of(topic) is None:
        raise Problem(404, f"no server {request.match_info['id']!r}")
    return await _serve(request, (topic,))


_ERRORS = (400, 401, 403, 429)


def routes() -> list[Route]:
    """The websocket routes: public here, authenticated by the handler (header or frame)."""
    ident = Param("id", "Server id", {"type": "string"}, "path")
    return [
        Route(
            "GET",
            "/api/ws",
            websocket,
            "Live events (websocket)",
            "Live",
            "public",
            status=101,
            errors=_ERRORS,
            scope="filtered",
        ),
        Route(
            "GET",
            "/api/servers/{id}/stream",
            server_stream,
            "One server's live metrics (websocket)",
            "Live",
            "public",
            status=101,
            params=(ident,),
            errors=(*_ERRORS, 404),
            scope="filtered",
        ),
    ]
