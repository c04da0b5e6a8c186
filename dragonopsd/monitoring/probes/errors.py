"""Turn whatever a probe raised into a short, safe error string.

aiohttp's own messages name the URL (which may carry credentials in userinfo or query), so
messages are built from the exception type and the OS reason, never from str(exc) of a client
error.
"""

from __future__ import annotations

import socket
import ssl

import aiohttp

from .guard import AddressRefused
from .login import AuthenticationFailed
from .secrets import SecretUnavailable


def describe(exc: BaseException, timeout: float) -> str:
    """A one-line reason for a failed probe, fit for a status page and a notification."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return describe(exc.certificate_error, timeout)
    if isinstance(exc, aiohttp.ClientConnectorError):
        # Covers DNS, SSL and connect failures: the OS-level cause says more than the wrapper.
        return describe(exc.os_error, timeout)
    if isinstance(exc, AddressRefused | AuthenticationFailed | SecretUnavailable):
        return str(exc)
    if isinstance(exc, TimeoutError):
        return f"timeout after {timeout}s"
    known = _client_error(exc) or _os_error(exc)
    if known is not None:
        return known
    if isinstance(exc, ValueError):
        # aiohttp rejects some requests before sending (e.g. credentials both in the URL and in
        # an Authorization header); the text may quote the request, so only the kind is given.
        return "invalid request (rejected before sending)"
    return type(exc).__name__


def _client_error(exc: BaseException) -> str | None:
    if isinstance(exc, aiohttp.TooManyRedirects):
        return "too many redirects"
    if isinstance(exc, aiohttp.RedirectClientError):
        return "redirect to an invalid or non-HTTP URL"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server disconnected"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "response body incomplete (connection closed mid-response)"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"invalid response: {exc.message}"[:200]
    return None


def _os_error(exc: BaseException) -> str | None:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {exc.reason or exc.strerror}"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host: {exc.strerror}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, OSError):
        return (exc.strerror or str(exc) or type(exc).__name__)[:200]
    return None
