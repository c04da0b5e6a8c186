"""The daemon's HTTP port against raw sockets: slow clients, too many connections from one
address, clients that hang up, and requests aiohttp refuses before any handler runs.

Everything runs against a real ``dragonopsd serve`` process, with the [server] limits set short
through DRAGONOPS_SERVER__* so that nothing waits long; its log (stderr) is read as an operator
would read the journal.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import struct
import time
from pathlib import Path
from typing import Any

import pytest
from daemon import Daemon

WAIT = 10.0  # every blocking read here is bounded by this
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT, source_address=(source, 0))
    sock.settimeout(WAIT)
    return sock


def response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One whole HTTP response: status, headers (lowercased names), body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed mid-response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-body"
        body += chunk
    return int(status_line.split()[1]), headers, body


def problem(sock: socket.socket, status: int) -> dict[str, Any]:
    """The next response, which must be a problem+json document of status."""
    got, headers, body = response(sock)
    assert got == status, body
    assert headers["content-type"] == "application/problem+json", headers
    assert headers["server"] == "dragonopsd"
    doc: dict[str, Any] = json.loads(body)
    assert doc["status"] == status and doc["detail"], doc
    return doc


def closed(sock: socket.socket) -> bool:
    """True once the daemon closed the connection (read to the end; False on our timeout)."""
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def log_problems(daemon: Daemon) -> list[str]:
    return [line for line in daemon.log.splitlines() if "ERROR" in line or "Traceback" in line]


def test_slow_request_heads_are_cut_off_after_header_timeout(tmp_path: Path) -> None:
    env = {"DRAGONOPS_SERVER__HEADER_TIMEOUT": "0.5", "DRAGONOPS_SERVER__KEEPALIVE_TIMEOUT": "3"}
    with Daemon(tmp_path / "state", env=env) as daemon:
        port = daemon.wait_listening()
        with connect(port) as silent:  # sends nothing at all: closed without a word
            assert closed(silent)
        with connect(port) as partial:
            partial.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
            assert "header_timeout" in problem(partial, 408)["detail"]
            assert closed(partial)
        with connect(port) as drip:  # a header now and then: still cut off
            drip.sendall(b"GET /healthz HTTP/1.1\r\n")
            drip.settimeout(0.1)
            for n in range(int(WAIT / 0.1)):
                try:
                    drip.sendall(b"X-Drip-%d: 1\r\n" % n)
                    first = drip.recv(65536)
                    break
                except TimeoutError:
                    continue
            else:
                pytest.fail(f"a dripping client was still connected after {WAIT} s")
            assert first.startswith(b"HTTP/1.1 408 ")
        with connect(port) as keep:  # between requests the keep-alive timeout applies instead
            keep.sendall(HEALTHZ)
            assert response(keep)[0] == 200
            time.sleep(1.0)  # twice the header timeout, well inside the keep-alive one
            keep.sendall(HEALTHZ)
            assert response(keep)[0] == 200
            assert closed(keep)  # keepalive_timeout ends it
        with connect(port) as upload:  # refused before its body was read: that is no head
            upload.sendall(b"POST /api/clients HTTP/1.1\r\nHost: t\r\nContent-Length: 9999\r\n\r\n")
            assert problem(upload, 401)
            upload.settimeout(0.1)
            for _ in range(15):  # three header timeouts' worth of body, while aiohttp reads it off
                upload.sendall(b"x" * 10)
                with contextlib.suppress(TimeoutError):
                    assert upload.recv(65536) == b"", "a second response after the 401"
                    break  # closed: nothing more came
        assert not log_problems(daemon)


def test_one_address_is_capped_and_others_still_get_in(tmp_path: Path) -> None:
    env = {
        "DRAGONOPS_SERVER__MAX_CONNECTIONS_PER_ADDRESS": "3",
        "DRAGONOPS_SERVER__PER_ADDRESS_EXEMPT": "[]",
        "DRAGONOPS_SERVER__HEADER_TIMEOUT": "60",  # the held connections stay
    }
    with Daemon(tmp_path / "state", env=env) as daemon:
        port = daemon.wait_listening()
        held = [connect(port) for _ in range(3)]
        with connect(port) as fourth:
            assert "at most 3 open connections" in problem(fourth, 429)["detail"]
            assert closed(fourth)
        with connect(port, "127.0.0.2") as other:  # all of 127.0.0.0/8 is loopback on Linux
            other.sendall(HEALTHZ)
            assert response(other)[0] == 200
        held.pop().close()  # its slot comes back once the daemon sees the close
        deadline = time.monotonic() + WAIT
        while True:
            with connect(port) as again:
                again.sendall(HEALTHZ)
                if response(again)[0] == 200:
                    break
            assert time.monotonic() < deadline, "a closed connection's slot never came back"
            time.sleep(0.05)
        for sock in held:
            sock.close()
        daemon.wait_log(r"WARNING dragonopsd\.api: refused \d+ connection\(s\) over")
        assert not log_problems(daemon)


def _metrics_requests(port: int) -> dict[tuple[str, str], int]:
    """dragonops_http_requests_total by (route, code), read with a raw GET /metrics."""
    with connect(port) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
        status, _, body = response(sock)
    assert status == 200
    found = re.findall(
        r'dragonops_http_requests_total\{code="(\d+)",method="\w+",route="([^"]+)"\} (\d+)',
        body.decode(),
    )
    counts: dict[tuple[str, str], int] = {}
    for code, route, value in found:
        counts[route, code] = counts.get((route, code), 0) + int(float(value))
    return counts


def test_clients_that_hang_up_or_send_too_many_headers_are_no_errors(tmp_path: Path) -> None:
    hangups = 5
    with Daemon(tmp_path / "state") as daemon:
        port = daemon.wait_listening()
        for _ in range(hangups):
            sock = connect(port)
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
            # Reset at once: the daemon reads the request, then finds nobody to answer.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        with connect(port) as crowded:
            headers = b"".join(b"X-Header-%d: 1\r\n" % n for n in range(200))
            crowded.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n" + headers + b"\r\n")
            assert problem(crowded, 400)["detail"] == "Too many headers received"
        # Each scrape here counts the ones before it: wait until every hang-up is counted.
        deadline = time.monotonic() + WAIT
        for scrapes in range(1000):
            counts = _metrics_requests(port)
            answered = sum(n for (route, _), n in counts.items() if route == "/metrics")
            if answered - scrapes == hangups:
                break
            assert time.monotonic() < deadline, counts
            time.sleep(0.05)
        assert counts["/metrics", "499"] == hangups  # nginx's "client closed request"
        assert counts["unmatched", "400"] == 1  # the request aiohttp refused
        assert not [key for key in counts if key[1].startswith("5")], counts
        assert daemon.stop() == 0
        assert not log_problems(daemon), daemon.log


REFUSED_BEFORE_A_HANDLER = {
    "duplicate Content-Type": (
        b"POST /api/clients HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}",
        "Duplicate 'Content-Type' header found.",
    ),
    "bad request line": (b"GARBAGE\r\n\r\n", "Invalid method encountered"),
    "header too long": (
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n",
        "the request line or a header is too long",
    ),
    "bad header character": (
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer dro_s3kr1t\x01\r\n\r\n",
        "Invalid header value char",
    ),
}


def test_requests_refused_before_a_handler_get_problem_json(tmp_path: Path) -> None:
    with Daemon(tmp_path / "state", env={"DRAGONOPS_LOG__LEVEL": "debug"}) as daemon:
        port = daemon.wait_listening()
        for case, (request, detail) in REFUSED_BEFORE_A_HANDLER.items():
            with connect(port) as sock:
                sock.sendall(request)
                assert problem(sock, 400)["detail"] == detail, case
                assert closed(sock), case
        refusals = r"DEBUG dragonopsd\.api: refused a malformed request from 127\.0\.0\.1"
        deadline = time.monotonic() + WAIT
        while len(re.findall(refusals, daemon.log)) < len(REFUSED_BEFORE_A_HANDLER):
            assert time.monotonic() < deadline, daemon.log
            time.sleep(0.05)
        assert not log_problems(daemon)
        assert "s3kr1t" not in daemon.log  # the request text aiohttp quotes stays out of the log
