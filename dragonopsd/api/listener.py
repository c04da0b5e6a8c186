"""The HTTP listener: the protocol aiohttp runs for each connection, with what an open port needs.

aiohttp's own protocol keeps a connection for its keep-alive timeout (an hour) whether or not
the client ever finishes a request, takes any number of connections from one address, and
answers requests it cannot parse (a bad request line, a duplicate Content-Type, too many or too
long headers) in text/plain after logging a traceback at ERROR. ``Connection`` changes that:

- a request head (request line and headers) must arrive whole within ``[server]
  header_timeout``, counted from connecting or from the first byte of the next request; an idle
  keep-alive connection closes after ``keepalive_timeout`` (aiohttp's own timer);
- one client address holds at most ``max_connections_per_address`` connections
  (``per_address_exempt`` aside): the next one gets a 429 problem and is closed;
- every error aiohttp answers itself is application/problem+json, and a client's malformed
  request or early hang-up is a debug line: only failures of our own are logged as errors.

``Runner`` is an ``AppRunner`` whose server builds these; the CLI and the [metrics] listener
use it (tests that go through aiohttp's test client get aiohttp's plain protocol).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from http import HTTPStatus
from typing import Any, cast

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http import RawRequestMessage
from aiohttp.http_exceptions import LineTooLong
from aiohttp.streams import StreamReader

from ..config import ServerConfig
from ..metrics.requests import UNMATCHED, RequestStats
from ..netguard import AddressSet, Quota
from ..problem import Problem
from .codec import encode
from .front import API_CSP, PROBLEM_TYPE

log = logging.getLogger("dragonopsd.api")

# What the request front adds to every response, for the answers written without it.
_HEADERS = {
    "Server": "dragonopsd",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": API_CSP,
}
WARN_EVERY = 60.0  # seconds between warnings about refused connections


def _problem_bytes(status: int, detail: str) -> bytes:
    """A whole problem response, for answers written before any request was read."""
    body = encode(Problem(status, detail).body())
    head = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        *(f"{name}: {value}" for name, value in _HEADERS.items()),
        f"Content-Type: {PROBLEM_TYPE}",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + body


_LATE_HEAD = _problem_bytes(408, "the request head did not arrive within [server] header_timeout")


def _detail(status: int, exc: BaseException | None, message: str | None) -> str:
    """What the client is told: aiohttp's first line, without the request bytes it quotes."""
    if isinstance(exc, LineTooLong):
        return "the request line or a header is too long"  # aiohttp's text quotes the line
    if status >= 500 or not message:
        return "internal error" if status == 500 else HTTPStatus(status).phrase
    first = message.split("\n", 1)[0].split(": b'", 1)[0].rstrip(" :")
    return first[:200] or HTTPStatus(status).phrase


class Limits:
    """What the connections of one listener share: the header timeout and the address quota."""

    def __init__(self, cfg: ServerConfig, stats: RequestStats | None) -> None:
        self.header_timeout = cfg.header_timeout
        cap = cfg.max_connections_per_address
        self.addresses = Quota(cap, AddressSet(cfg.per_address_exempt))
        self.refusal = _problem_bytes(429, f"at most {cap} open connections per client address")
        self.stats = stats  # requests refused before a handler ran are counted here
        self._refused = 0
        self._warned = -math.inf

    def refused(self, address: str) -> None:
        """Note a refused connection: a warning at most every minute, so that a flood of
        connections cannot flood the log too."""
        self._refused += 1
        now = time.monotonic()
        if now - self._warned >= WARN_EVERY:
            log.warning(
                "refused %d connection(s) over [server] max_connections_per_address "
                "(the last from %s)",
                self._refused,
                address,
            )
            self._refused, self._warned = 0, now
        else:
            log.debug("refused a connection from %s: at max_connections_per_address", address)


class Connection(web.RequestHandler):
    """aiohttp's HTTP/1.1 protocol with a header timeout, a per-address cap and problem+json."""

    def __init__(self, manager: web.Server, *, limits: Limits, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._limits = limits
        self._address: str | None = None  # set once admitted: the quota slot it holds
        self._refused = False
        self._awaiting_head = True  # between requests: the next bytes start a request head
        self._head_begun = False  # some of that head has arrived
        self._head_timer: asyncio.TimerHandle | None = None
        self._unread_body: StreamReader | None = None  # a body aiohttp is reading off, unread

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else "local"
        if not self._limits.addresses.take(address):
            self._refused = True
            self._limits.refused(address)
            cast(asyncio.Transport, transport).write(self._limits.refusal)
            transport.close()  # after the write is flushed; aiohttp never sees this connection
            return
        self._address = address
        super().connection_made(transport)
        self._arm()  # a new connection owes its first request head at once

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._refused:
            return
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        if self._address is not None:
            self._limits.addresses.give_back(self._address)
            self._address = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        body = self._unread_body
        if self._awaiting_head and data and (body is None or body.is_eof()):
            self._head_begun = True
            if self._head_timer is None:
                self._arm()
        super().data_received(data)

    def head_received(self) -> None:
        """A whole request head was parsed (the server's request factory calls this)."""
        self._awaiting_head = self._head_begun = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def log_access(
        self, request: web.BaseRequest, response: web.StreamResponse, time: float | None
    ) -> None:
        # aiohttp calls this once each response is finished: a next head may follow, once the
        # rest of a body the handler left unread is read off ("lingering"): its bytes are none.
        self._awaiting_head = True
        self._unread_body = None if request.content.is_eof() else request.content
        super().log_access(request, response, time)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        transport = self.transport
        gone = isinstance(exc, ConnectionError) and (transport is None or transport.is_closing())
        if gone:
            log.debug("client %s went away mid-response", request.remote)
        elif status >= 500:
            log.error("error handling a request from %s", request.remote, exc_info=exc)
        else:  # the client's own doing; the class name is enough (the text may quote a secret)
            name = type(exc).__name__ if exc else status
            log.debug("refused a malformed request from %s: %s", request.remote, name)
        if request.writer.output_size > 0:
            raise ConnectionError("a response was already under way; dropping the connection")
        if self._limits.stats is not None and not gone:
            self._limits.stats.observe(UNMATCHED, request.method, status, 0.0)
        body = encode(Problem(status, _detail(status, exc, message)).body())
        resp = web.Response(body=body, status=status, headers=_HEADERS)
        resp.content_type = PROBLEM_TYPE
        resp.force_close()
        return resp

    def _arm(self) -> None:
        self._head_timer = asyncio.get_running_loop().call_later(
            self._limits.header_timeout, self._head_late
        )

    def _head_late(self) -> None:
        self._head_timer = None
        if not self._awaiting_head or self.transport is None:
            return
        log.debug("closed a connection from %s: no request head in time", self._address)
        if self._head_begun:  # someone is typing: say why; a silent connection just closes
            self.transport.write(_LATE_HEAD)
        self.force_close()


class _Server(web.Server):
    """The protocol factory a site listens with: aiohttp's, building ``Connection``s."""

    def __init__(self, plain: web.Server, limits: Limits, protocol_args: dict[str, Any]) -> None:
        make_request = plain.request_factory

        def request_factory(
            message: RawRequestMessage,
            payload: StreamReader,
            protocol: web.RequestHandler,
            writer: AbstractStreamWriter,
            task: asyncio.Task[None],
        ) -> web.BaseRequest:
            if isinstance(protocol, Connection):
                protocol.head_received()
            return make_request(message, payload, protocol, writer, task)

        super().__init__(
            plain.request_handler,
            request_factory=request_factory,
            handler_cancellation=plain.handler_cancellation,
            **protocol_args,
        )
        self._limits = limits
        self._protocol_args = protocol_args

    def __call__(self) -> web.RequestHandler:
        loop = asyncio.get_running_loop()
        return Connection(self, loop=loop, limits=self._limits, **self._protocol_args)


class Runner(web.AppRunner):
    """An ``AppRunner`` whose connections are ``Connection``s, limited by ``[server]``."""

    def __init__(
        self,
        app: web.Application,
        cfg: ServerConfig,
        *,
        stats: RequestStats | None = None,
        **kwargs: Any,
    ) -> None:
        # Access logging off: the request front counts requests, and logs what goes wrong.
        self._protocol_args: dict[str, Any] = {
            "keepalive_timeout": cfg.keepalive_timeout,
            "access_log": None,
        }
        super().__init__(app, **self._protocol_args, **kwargs)
        self._limits = Limits(cfg, stats)

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()  # starts and freezes the app, as AppRunner does
        return _Server(plain, self._limits, self._protocol_args)
