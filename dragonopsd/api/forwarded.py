"""Who the client is, behind a reverse proxy or not.

The TCP peer is the client unless it is one of ``[server] trusted_proxies``: then the client is
the rightmost ``X-Forwarded-For`` hop that is not itself a trusted proxy (``X-Real-IP`` when
there is no ``X-Forwarded-For``), and the scheme is the proxy's ``X-Forwarded-Proto``. Hops to
the left of that one are whatever the client chose to send, so they are never believed; from a
peer that is not trusted no forwarded header is believed at all. Failure limits, the audit log,
log lines and the websocket Origin check all ask ``client_of(request)``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web
from multidict import istr

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_XFF = istr("X-Forwarded-For")
_REAL_IP = istr("X-Real-IP")
_PROTO = istr("X-Forwarded-Proto")
MAX_HOPS = 32  # a longer chain is no real deployment; the walk stops there
_DEFAULT_PORTS = {"http": "80", "https": "443"}


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """The client's address and the scheme it used to reach us (``http`` or ``https``)."""

    address: str
    scheme: str


def _ip(text: str) -> IPAddress | None:
    """An address from a forwarded hop (``1.2.3.4``, ``1.2.3.4:5678``, ``[v6]:port``), or None."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:  # IPv4 with a port; a bare IPv6 address has several colons
        text = text.split(":", 1)[0]
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


class Proxies:
    """The ``[server] trusted_proxies`` networks and the resolution they allow."""

    def __init__(self, networks: Iterable[str]) -> None:
        self._networks = tuple(ipaddress.ip_network(n) for n in networks)

    def trusts(self, addr: IPAddress | None) -> bool:
        """True when addr lies in one of the trusted networks."""
        return addr is not None and any(addr in net for net in self._networks)

    def resolve(self, request: web.Request) -> ClientInfo:
        """The client behind request (the TCP peer unless that peer is a trusted proxy)."""
        peer = request.remote or "unknown"
        scheme = request.scheme
        if not self._networks or not self.trusts(_ip(peer)):
            return ClientInfo(peer, scheme)
        headers = request.headers
        address = peer
        hops = headers.getall(_XFF, ())
        if hops:
            chain = ",".join(hops).split(",")[-MAX_HOPS:]
            for hop in reversed(chain):
                addr = _ip(hop)
                if addr is None:  # garbage: the nearest hop we could read is the client
                    break
                address = str(addr)
                if not self.trusts(addr):
                    break
        else:
            real = _ip(headers.get(_REAL_IP, ""))
            if real is not None:
                address = str(real)
        proto = headers.get(_PROTO, "").rsplit(",", 1)[-1].strip().lower()
        return ClientInfo(address, proto if proto in _DEFAULT_PORTS else scheme)


def client_of(request: web.Request) -> ClientInfo:
    """The request's client (resolved once per request, only when someone asks)."""
    info = request.get(CLIENT)
    if info is None:
        info = request[CLIENT] = request.app[PROXIES].resolve(request)
    return info


def same_origin(request: web.Request, origin: str) -> bool:
    """Whether a browser Origin is this site as the client reached it.

    The host must match the Host header. The scheme may not be weaker than the client's: a page
    on ``http://`` of this host cannot open a socket to the ``https://`` site. An ``https``
    origin over a plain hop is accepted, because a TLS proxy that is not in trusted_proxies
    reaches us over http and its pages are https.
    """
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or (scheme == "http" and client_of(request).scheme != "http"):
        return False
    return _netloc(parts.hostname or "", port, scheme) == _host(request.host, scheme)


def _netloc(hostname: str, port: int | None, scheme: str) -> str:
    host = f"[{hostname}]" if ":" in hostname else hostname
    if port is None or str(port) == _DEFAULT_PORTS[scheme]:
        return host.lower()
    return f"{host}:{port}".lower()


def _host(header: str, scheme: str) -> str:
    """The Host header with the origin scheme's default port left out, as an Origin has it."""
    try:
        parts = urlsplit(f"//{header}")
        return _netloc(parts.hostname or "", parts.port, scheme)
    except ValueError:
        return ""


# [server] trusted_proxies: whose forwarded headers name the client.
PROXIES: web.AppKey[Proxies] = web.AppKey("proxies")
# The client's address and scheme, resolved on first use (client_of).
CLIENT: web.RequestKey[ClientInfo] = web.RequestKey("client")
