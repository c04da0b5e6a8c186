"""What a service probe (postgres, mysql, redis, mqtt, amqp, grpc) dials and logs in with.

The address is resolved and judged by the SSRF guard here, and the client is handed the judged
IP, so no second resolution inside a driver can swap it. The password exists only in memory,
read from the secrets store by the name the monitor holds.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import dataclass

from ...model.monitor import DEFAULT_PORTS, MonitorSpec
from .guard import allowed_addresses
from .result import ProbeEnv
from .secrets import SecretUnavailable


class AuthenticationFailed(Exception):
    """The server refused the credentials; the message never carries them."""

    def __init__(self) -> None:
        super().__init__("authentication failed")


class NamedContext(ssl.SSLContext):
    """A client context that checks the certificate against the monitor's host name.

    Drivers are handed an IP (the guard's), and pass that IP on as the TLS server name; this
    context puts the name the user wrote back, for SNI and the certificate check.
    """

    server_name: str | None = None

    def wrap_bio(  # same parameters as ssl.SSLContext; only server_hostname is replaced
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        return super().wrap_bio(
            incoming, outgoing, server_side, self.server_name or server_hostname, session
        )

    def wrap_socket(  # noqa: PLR0917  # ssl.SSLContext's signature; paho-mqtt wraps a socket
        self,
        sock: socket.socket,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLSocket:
        return super().wrap_socket(
            sock,
            server_side,
            do_handshake_on_connect,
            suppress_ragged_eofs,
            self.server_name or server_hostname,
            session,
        )


@dataclass(frozen=True, slots=True)
class Login:
    """The judged address, the port, the credentials and the TLS context of one probe."""

    ip: str
    port: int
    username: str | None
    password: str | None
    ssl: ssl.SSLContext | None

    @property
    def netloc_host(self) -> str:
        """The IP as it stands in a URL or a gRPC target (IPv6 in brackets)."""
        return f"[{self.ip}]" if ":" in self.ip else self.ip


async def password_of(spec: MonitorSpec, env: ProbeEnv) -> str | None:
    """The password named by spec.password_secret, read now; None when the monitor has none."""
    name = spec.password_secret
    if name is None:
        return None
    if env.secrets is None:
        raise SecretUnavailable(
            "passwordSecret is resolved by dragonopsd serve only, not by probe workers"
        )
    try:
        value = await env.secrets(name)
    except Exception as exc:  # no key configured, unreadable row: say which secret
        raise SecretUnavailable(f"secret {name!r} cannot be read ({type(exc).__name__})") from None
    if value is None:
        raise SecretUnavailable(f"secret {name!r} does not exist")
    return value


async def tls_context(spec: MonitorSpec, env: ProbeEnv) -> ssl.SSLContext:
    """A client context for spec: verified against the host name unless verifyTls is false."""
    ctx = NamedContext(ssl.PROTOCOL_TLS_CLIENT)
    if spec.verify_tls is False:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    ctx.server_name = (spec.host or "").strip("[]")
    if env.ssl_context is None:
        # Off the loop: the system store is read from files.
        await asyncio.to_thread(ctx.load_default_certs)
    else:
        # The configured trust ([probes] CA) carried into the named context.
        for der in env.ssl_context.get_ca_certs(binary_form=True):
            ctx.load_verify_locations(cadata=der)
    return ctx


async def login_for(spec: MonitorSpec, env: ProbeEnv) -> Login:
    """Resolve and judge the host, read the password; the port defaults per kind and TLS."""
    assert spec.host is not None
    default = DEFAULT_PORTS.get(spec.kind, (0, 0))[1 if spec.tls else 0]
    port = spec.port or default
    password = await password_of(spec, env)
    addresses = await allowed_addresses(env.guard, spec.host, port, env.resolver)
    ctx = await tls_context(spec, env) if spec.tls else None
    return Login(addresses[0], port, spec.username, password, ctx)
