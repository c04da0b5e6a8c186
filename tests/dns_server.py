"""A tiny authoritative DNS responder on loopback UDP, built with dnspython, for probe tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


class Responder(asyncio.DatagramProtocol):
    """Answers A/AAAA queries from records; unknown names get NXDOMAIN.

    A name under ``garbage.`` gets bytes that are not DNS; a name under ``silent.`` gets nothing.
    """

    def __init__(self, records: dict[str, list[str]]) -> None:
        self.records = {name.rstrip(".").lower() + ".": ips for name, ips in records.items()}
        self.transport: asyncio.DatagramTransport | None = None
        self.queries: list[str] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        query = dns.message.from_wire(data)
        question = query.question[0]
        name = question.name.to_text().lower()
        self.queries.append(name)
        if name.endswith("silent."):
            return
        if name.endswith("garbage."):
            self.transport.sendto(b"\x00\x01not dns", addr)
            return
        response = dns.message.make_response(query)
        ips = self.records.get(name)
        if ips is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        else:
            wanted = [ip for ip in ips if (":" in ip) == (question.rdtype == dns.rdatatype.AAAA)]
            if wanted:
                response.answer.append(
                    dns.rrset.from_text_list(question.name, 60, "IN", question.rdtype, wanted)
                )
        self.transport.sendto(response.to_wire(), addr)


@asynccontextmanager
async def dns_server(records: dict[str, list[str]]) -> AsyncIterator[tuple[str, Responder]]:
    """Serve records on 127.0.0.1:<free port>; yields ("127.0.0.1:port", responder)."""
    loop = asyncio.get_running_loop()
    transport, responder = await loop.create_datagram_endpoint(
        lambda: Responder(records), local_addr=("127.0.0.1", 0)
    )
    try:
        port = transport.get_extra_info("sockname")[1]
        yield f"127.0.0.1:{port}", responder
    finally:
        transport.close()
