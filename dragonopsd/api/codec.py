"""Request decoding, response encoding, and the parameters handlers share (ids, pages, ETags)."""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from ..appkeys import CONFIG
from ..model.inventory import FieldError, in_words
from ..problem import FieldIssue, Problem, invalid, not_found
from .route import Param

T = TypeVar("T")

JSON_TYPES = frozenset({"application/json", "application/merge-patch+json"})
_encoder = msgspec.json.Encoder()
_AT = re.compile(r"^(?P<msg>.*?)(?: - at `(?P<path>[^`]*)`)?$", re.DOTALL)
_NAMED = re.compile(r"(?:unknown|missing required) field `([^`]+)`")
_STRING: dict[str, Any] = {"type": "string"}


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


# The conditional-request headers, as the routes that honour them document them.
IF_MATCH = Param("If-Match", "ETag from a previous GET; 412 when stale", _STRING, "header")
IF_NONE_MATCH = Param(
    "If-None-Match",
    "ETag the client holds; 304 without a body while it is current",
    _STRING,
    "header",
)


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


def path_uuid(request: web.Request, entity: str) -> str:
    """The ``{id}`` path segment as a canonical UUID. Text that is no UUID names nothing, so
    it is the same 404 as an unknown id, with the entity word (``monitor``, ``secret``)."""
    raw = request.match_info["id"]
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise not_found(entity, raw) from None


UUID_SCHEMA: dict[str, Any] = {"type": "string", "format": "uuid"}


def id_param(entity: str) -> Param:
    """The ``{id}`` path parameter as OpenAPI documents it (``entity``: "monitor", "secret")."""
    return Param("id", f"The {entity}'s UUID", UUID_SCHEMA, "path", True)


def query_uuid(query: Mapping[str, str], name: str) -> str | None:
    """A UUID filter in the query (``serverId``), canonical; None when absent, 422 naming it
    when it is no UUID."""
    if name not in query:
        return None
    try:
        return str(uuid.UUID(query[name]))
    except ValueError:
        raise invalid(name, "expected a UUID") from None


def query_list(query: Mapping[str, str], name: str, allowed: Collection[str]) -> tuple[str, ...]:
    """A comma-separated filter (``state=queued,running``); 422 naming the first unknown value."""
    values = tuple(v for v in query.get(name, "").split(",") if v)
    for v in values:
        if v not in allowed:
            raise invalid(name, f"unknown {name} '{v}' (one of {', '.join(allowed)})")
    return values


def no_repeats(request: web.Request) -> None:
    """422 naming the first query parameter given more than once, for handlers that read one
    value each (the front has already refused the undeclared ones)."""
    for name in request.query:
        if len(request.query.getall(name)) > 1:
            raise invalid(name, "given more than once")


MAX_LIMIT = 500


def page_limit(query: Mapping[str, str], default: int) -> int:
    """The ``limit`` query parameter: 1..MAX_LIMIT, 422 naming it otherwise."""
    raw = query.get("limit")
    if raw is None:
        return default
    try:
        limit = int(raw)
    except ValueError:
        raise invalid("limit", "expected an integer") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise invalid("limit", f"must be between 1 and {MAX_LIMIT}")
    return limit


def page_params(default: int | str) -> tuple[Param, Param]:
    """``limit`` and ``cursor`` as OpenAPI documents them. ``default``: the page size without
    a limit, or words for what no limit gives ("every match")."""
    schema: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}
    if isinstance(default, int):
        limit = Param("limit", "Page size", {**schema, "default": default})
    else:
        limit = Param("limit", f"Page size (default: {default})", schema)
    cursor = Param("cursor", "Opaque cursor from the previous page's nextCursor", _STRING)
    return limit, cursor


_RELATIVE = re.compile(r"^-(\d{1,6})(s|m|h|d)$")
_DURATION = re.compile(r"^(\d{1,6})(s|m|h|d)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
# Year 1970 to 9999: beyond it, times cannot be formatted or stored as ISO text.
_LATEST = 253_402_300_799.0


def query_time(raw: str | None, name: str, default: float) -> float:
    """A time in a query: Unix seconds, ISO 8601, or relative to now (``-24h``, ``-90m``,
    ``-7d``) so that saved links and scripts keep working as time passes; 422 naming the
    parameter otherwise."""
    if raw is None:
        return default
    rel = _RELATIVE.match(raw.strip())
    if rel:
        return time.time() - int(rel[1]) * _UNITS[rel[2]]
    try:
        value = float(raw)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise invalid(name, "expected Unix seconds, ISO 8601 or -24h style") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        value = parsed.timestamp()
    if not 0 <= value <= _LATEST:  # also NaN and infinities
        raise invalid(name, "must be between 1970 and the year 9999")
    return value


def duration(text: str, name: str) -> float:
    """``90s``, ``15m``, ``24h``, ``30d`` -> seconds; 422 naming the parameter otherwise."""
    m = _DURATION.match(text.strip())
    if not m:
        raise invalid(name, f"expected a duration like 24h or 30d, got {text[:20]!r}")
    return int(m[1]) * _UNITS[m[2]]


def iso_time(ts: float) -> str:
    """Unix seconds -> the ISO 8601 text every entity time uses (UTC, milliseconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"
