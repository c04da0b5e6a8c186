"""Who answered: the peer address and certificate of a connection, captured while it is open."""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any

import aiohttp
from aiohttp.connector import Connection
from cryptography import x509


def peer_certificate(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> bytes | None:
    """The peer's leaf certificate as DER.

    binary_form works even when verification was off, where getpeercert() returns {}.
    """
    if ssl_object is None:
        return None
    return ssl_object.getpeercert(binary_form=True)


def expiry_fields(der: bytes | None) -> tuple[dict[str, Any], float | None]:
    """(context entries, notAfter as Unix time) for a DER certificate; empty when unparseable."""
    if not der:
        return {}, None
    try:
        not_after = x509.load_der_x509_certificate(der).not_valid_after_utc.timestamp()
    except ValueError:
        return {}, None
    return {"CERTIFICATE_EXPIRATION": not_after - time.time()}, not_after


class PeerResponse(aiohttp.ClientResponse):
    """A ClientResponse that remembers the peer's IP and certificate.

    aiohttp hands the connection back as soon as the body has arrived, which for a small body
    is before the caller sees the response, so resp.connection is often already None. start()
    is the one moment the connection is known to be open.
    """

    peer_ip: str | None = None
    peer_cert: bytes | None = None

    async def start(self, connection: Connection) -> aiohttp.ClientResponse:
        """Record the peer, then read the response head as usual."""
        transport: asyncio.Transport | None = connection.transport
        if transport is not None:
            peer = transport.get_extra_info("peername")
            self.peer_ip = str(peer[0]) if peer else None
            self.peer_cert = peer_certificate(transport.get_extra_info("ssl_object"))
        return await super().start(connection)
