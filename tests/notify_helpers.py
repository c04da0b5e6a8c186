"""Real receivers on loopback for the notification tests: a webhook server that records and
verifies deliveries (scripted failures, hangs), and an aiosmtpd SMTP server."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import msgspec
import pytest
import trustme
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from dragonopsd.model.monitor import Scope
from dragonopsd.notify.delivery import DeliveryPolicy
from dragonopsd.notify.event import NotificationEvent

FAST = DeliveryPolicy(
    attempt_timeout=0.3,
    max_attempts=3,
    backoff_base=0.01,
    backoff_max=0.05,
    retry_after_max=0.3,
    queue_size=1000,
    drain_timeout=0,
)
SIGNING_SECRET = "s3cr3t-signing-key-0123456789"


async def until(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    """Wait (bounded) until predicate holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.005)


def event(
    kind: str = "down",
    monitor: str = "m1",
    *,
    status: str | None = None,
    tags: tuple[str, ...] = (),
    environment_id: str | None = None,
    monitor_name: str = "api",
    **extra: Any,
) -> NotificationEvent:
    """A notification event with sensible defaults."""
    return NotificationEvent(
        event=kind,  # type: ignore[arg-type]
        monitor_id=monitor,
        monitor_name=monitor_name,
        kind="http",
        target="https://api.example",
        status=status or ("up" if kind in ("up", "certificate") else "down"),
        previous="up" if kind == "down" else "down",
        message=extra.pop("message", "connection refused" if kind == "down" else None),
        at="2026-01-01T00:00:00.000Z",
        scope=Scope(monitor_id=monitor, tags=tags, environment_id=environment_id),
        **extra,
    )


@dataclass
class Delivery:
    """One request a receiver saw."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return msgspec.json.decode(self.body)


@dataclass
class Receiver:
    """Records deliveries per path; ``plans[path]`` scripts answers (status or (status,
    headers)), then 200; paths in ``hang`` never answer."""

    base: str = ""
    seen: list[Delivery] = field(default_factory=list)
    plans: dict[str, list[Any]] = field(default_factory=dict)
    hang: set[str] = field(default_factory=set)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    bad_signatures: int = 0

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def at(self, path: str) -> list[Delivery]:
        return [d for d in self.seen if d.path == path]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        got = Delivery(request.path, dict(request.headers), body)
        self.seen.append(got)
        signed = request.headers.get("X-DragonOps-Signature")
        if signed is not None:
            want = "sha256=" + hmac.new(SIGNING_SECRET.encode(), body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(signed, want):
                self.bad_signatures += 1
                return web.Response(status=401)
        if request.path in self.hang:
            await asyncio.wait_for(self.release.wait(), 30)
        plan = self.plans.get(request.path)
        if plan:
            step = plan.pop(0)
            status, headers = step if isinstance(step, tuple) else (step, {})
            return web.Response(status=status, headers=headers, text="receiver says no")
        return web.Response(status=200, text="ok")


@pytest.fixture(name="receiver")
async def receiver_fixture(aiohttp_server: Any) -> AsyncIterator[Receiver]:
    """A webhook receiver on loopback (import this into a test module to use ``receiver``)."""
    rec = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", rec.handle)
    # No access log: the receiver's request lines hold the URL, which the daemon never logs.
    server = await aiohttp_server(app, access_log=None)
    rec.base = str(server.make_url("")).rstrip("/")
    yield rec
    rec.release.set()  # let hanging handlers end so the server closes at once


def daemon_logs(caplog: Any) -> str:
    """Everything logged but the test SMTP server's own trace (aiosmtpd logs AUTH lines)."""
    return "\n".join(
        caplog.handler.format(r) for r in caplog.records if not r.name.startswith("mail.log")
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mailbox:
    """aiosmtpd handler: keeps every accepted message."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 OK"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login, data.password))
        return AuthResult(success=data.password == b"smtp-pass-123")

    def message(self, index: int = -1) -> EmailMessage:
        raw = self.envelopes[index].content
        assert isinstance(raw, bytes)
        msg = message_from_bytes(raw, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


def smtp_server(mailbox: Mailbox, *, starttls: bool = False) -> Controller:
    """An SMTP server on a free loopback port (start it off the loop)."""
    kwargs: dict[str, Any] = {"authenticator": mailbox.authenticate, "auth_require_tls": False}
    if starttls:
        ca = trustme.CA()
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(ctx)
        kwargs = {"tls_context": ctx, "require_starttls": True}
    return Controller(mailbox, hostname="127.0.0.1", port=free_port(), **kwargs)
