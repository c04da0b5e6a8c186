"""Request decoding and response encoding shared by every handler."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from ..keys import CONFIG
from ..model import FieldError, in_words
from ..problem import FieldIssue, Problem

T = TypeVar("T")

JSON_TYPES = frozenset({"application/json", "application/merge-patch+json"})
_encoder = msgspec.json.Encoder()
_AT = re.compile(r"^(?P<msg>.*?)(?: - at `(?P<path>[^`]*)`)?$", re.DOTALL)
_NAMED = re.compile(r"(?:unknown|missing required) field `([^`]+)`")


def encode(value: Any) -> bytes:
    """JSON-encode a Struct (or builtins) with the shared encoder."""
    return _encoder.encode(value)


def etag_of(body: bytes) -> str:
    """Strong ETag: a short hash of the exact representation."""
    return '"' + hashlib.blake2b(body, digest_size=8).hexdigest() + '"'


def json_response(
    value: Any, *, status: int = 200, etag: bool = False, headers: dict[str, str] | None = None
) -> web.Response:
    """Encode value as the JSON body of a response."""
    body = encode(value)
    resp = web.Response(body=body, status=status, content_type="application/json")
    if etag:
        resp.headers["ETag"] = etag_of(body)
    if headers:
        resp.headers.update(headers)
    return resp


def issue_from_validation(exc: msgspec.ValidationError) -> FieldIssue:
    """Turn msgspec's ``message - at `$.path``` into a field issue with a full JSON path."""
    m = _AT.match(str(exc))
    assert m is not None
    message, path = m["msg"], m["path"] or "$"
    message = in_words(message)
    named = _NAMED.search(message)
    if named:
        path = f"{path}.{named[1]}"
    return FieldIssue(path, message)


def convert(raw: Any, type_: type[T]) -> T:
    """Validate already-decoded JSON into a Struct; 422 naming the field on failure."""
    try:
        return msgspec.convert(raw, type_)
    except msgspec.ValidationError as exc:
        issue = issue_from_validation(exc)
        raise Problem(422, f"{issue.field}: {issue.message}", errors=[issue]) from None
    except FieldError as exc:
        raise Problem(
            422, f"{exc.path}: {exc.message}", errors=[FieldIssue(exc.path, exc.message)]
        ) from None


async def read_json(request: web.Request, type_: type[T]) -> T:
    """Read, size-check, parse and validate a JSON body.

    415 for another content type, 413 past max_body_bytes (before reading when the length is
    announced), 400 for malformed JSON, 422 for JSON of the wrong shape.
    """
    if request.content_type not in JSON_TYPES:
        raise Problem(
            415,
            f"Content-Type must be application/json, got '{request.content_type}'",
            headers={"Accept-Patch": "application/json, application/merge-patch+json"},
        )
    limit = request.app[CONFIG].server.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise Problem(413, f"request body is larger than the {limit} byte limit")
    try:
        data = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise Problem(413, f"request body is larger than the {limit} byte limit") from None
    if not data.strip():
        raise Problem(400, "a JSON request body is required")
    try:
        raw = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise Problem(400, f"malformed JSON: {exc}") from None
    except RecursionError:
        raise Problem(400, "malformed JSON: nested too deeply") from None
    return convert(raw, type_)


def etag_matches(header: str, etag: str) -> bool:
    """If-Match / If-None-Match comparison (``*`` or a comma-separated list)."""
    candidates = [c.strip() for c in header.split(",")]
    return "*" in candidates or etag in candidates or f"W/{etag}" in candidates


IF_MATCH_DOC = "ETag from a previous GET; 412 when stale"
IF_NONE_MATCH_DOC = "ETag the client holds; 304 without a body while it is current"


def cacheable_response(request: web.Request, value: Any) -> web.Response:
    """value as JSON with its ETag; 304 without a body when If-None-Match names that ETag."""
    body = encode(value)
    etag = etag_of(body)
    inm = request.headers.get("If-None-Match")
    if inm and etag_matches(inm, etag):
        return web.Response(status=304, headers={"ETag": etag})
    return web.Response(body=body, content_type="application/json", headers={"ETag": etag})


def if_match(request: web.Request, render: Callable[[T], Any]) -> Callable[[T], None] | None:
    """The request's If-Match as a check to run on the current row inside the write's
    transaction (412 when the row, rendered as GET would answer it, has another ETag);
    None when the client sent no If-Match."""
    header = request.headers.get("If-Match")
    if header is None:
        return None

    def check(current: T) -> None:
        if not etag_matches(header, etag_of(encode(render(current)))):
            raise Problem(412, "If-Match does not match the current ETag; GET it again")

    return check
