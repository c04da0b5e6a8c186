"""The tree a parsed condition becomes, and everything evaluating it needs.

Node classes (Ref, Call, Literal, Comparison), the per-evaluation environment that decodes the
body at most once, and the helpers that compare and show values. Nothing here parses text.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from .wildcard import Glob

MAX_JSON_BODY: Final = 1 << 20
MAX_SHOWN: Final = 80

_OPS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
# A fixed pattern, linear on any input; no regex is ever built from condition text.
_NUMBER: Final = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_JSON: Final = msgspec.json.Decoder()
# Go's legacy octal form (a leading 0), which int(x, 0) refuses but Gatus' integer reading takes.
_LEGACY_OCTAL: Final = re.compile(r"[+-]?0(?:_?[0-7])+", re.ASCII)
_INT64: Final = 1 << 63


class ConditionError(ValueError):
    """A condition that does not parse; position is the 0-based offset of the problem."""

    def __init__(self, message: str, position: int, index: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        self.index = index


class _Fail:
    """A value that could not be resolved; absent means the path simply is not there."""

    __slots__ = ("absent", "detail")

    def __init__(self, detail: str, absent: bool = False) -> None:
        self.detail = detail
        self.absent = absent


_NO_BODY: Final = _Fail("[BODY] not available for this probe")
_NOT_DECODED: Final = _Fail("body not decoded yet")


class _Env:
    """One evaluate_all call's view of the probe result; the body is decoded at most once."""

    __slots__ = ("_json", "_text", "ctx")

    def __init__(self, ctx: Mapping[str, Any]) -> None:
        self.ctx = ctx
        self._text: str | _Fail | None = None
        self._json: Any = _NOT_DECODED

    def text(self) -> str | _Fail:
        if self._text is None:
            raw = self.ctx.get("BODY")
            if raw is None:
                self._text = _NO_BODY
            elif isinstance(raw, bytes | bytearray | memoryview):
                self._text = bytes(raw).decode("utf-8", "replace").strip()
            else:
                self._text = str(raw).strip()
        return self._text

    def json(self) -> Any:
        if self._json is _NOT_DECODED:
            raw = self.ctx.get("BODY")
            if raw is None:
                self._json = _NO_BODY
            elif not isinstance(raw, str | bytes | bytearray | memoryview):
                self._json = _Fail("body is not JSON")
            elif len(raw) > MAX_JSON_BODY:
                self._json = _Fail("body is larger than 1 MiB, not parsed as JSON")
            else:
                try:
                    self._json = _JSON.decode(raw)
                except (msgspec.DecodeError, RecursionError):
                    self._json = _Fail("body is not JSON")
        return self._json

    def path(self, ref: Ref) -> Any:
        if ref.name == "BODY":
            doc = self.json()
        elif (doc := self.ctx.get(ref.name)) is None:  # [INFO].role: a mapping in the context
            return _Fail(f"[{ref.name}] not available for this probe")
        if type(doc) is _Fail:
            return doc if doc is _NO_BODY else _Fail(f"{ref.src}: {doc.detail}")
        for step in ref.path:
            if isinstance(step, str):
                found = isinstance(doc, dict) and step in doc
            else:
                found = isinstance(doc, list) and step < len(doc)
            if not found:
                return _Fail(f"{ref.src}: no such field", absent=True)
            doc = doc[step]
        return doc


@dataclass(frozen=True, slots=True)
class Ref:
    """A placeholder such as [STATUS], or a JSON path into the body such as [BODY].items[0]."""

    name: str
    path: tuple[str | int, ...]
    src: str

    def resolve(self, env: _Env) -> Any:
        if self.path:
            return env.path(self)
        if self.name == "BODY":
            return env.text()
        value = env.ctx.get(self.name)
        if value is None and self.name == "CERTIFICATE_EXPIRATION":
            return 0  # as in Gatus: no certificate (plain http, tcp, ...) reads as 0
        return _Fail(f"[{self.name}] not available for this probe") if value is None else value


@dataclass(frozen=True, slots=True)
class Call:
    """len(ref) or has(ref)."""

    func: str
    ref: Ref
    src: str

    def resolve(self, env: _Env) -> Any:
        ref = self.ref
        if self.func == "has":
            if not ref.path:
                value = env.text() if ref.name == "BODY" else env.ctx.get(ref.name)
                return value is not None and type(value) is not _Fail and value != ""
            found = env.path(ref)
            if type(found) is _Fail:
                return False if found.absent else found
            return found is not None  # Gatus cannot walk onto a JSON null: has() is false
        value = ref.resolve(env)
        if type(value) is _Fail:
            return value
        if ref.name == "BODY" and not ref.path and value.startswith("["):
            doc = env.json()  # a JSON array body counts its elements, as in Gatus
            if isinstance(doc, list):
                return len(doc)
        return _length(value, ref)


Operand = Ref | Call


@dataclass(frozen=True, slots=True)
class Literal:
    """A right-hand value; num is set when it reads as a number (durations already converted)."""

    text: str
    num: int | float | None


@dataclass(frozen=True, slots=True)
class Comparison:
    """The root of every condition: operand, operator, right-hand side."""

    lhs: Operand
    op: str
    rhs: Literal | Glob | tuple[Literal, ...] | Operand
    rhs_src: str
    kind: str

    def check(self, env: _Env) -> tuple[bool, str]:
        left = self.lhs.resolve(env)
        if type(left) is _Fail:
            return False, left.detail
        rhs, rhs_src = self.rhs, self.rhs_src
        if isinstance(rhs, Literal):
            ok = _compare(_OPS[self.op], left, rhs.num, rhs.text)
        elif isinstance(rhs, Glob):  # pat(...)
            ok = rhs.match(_text(left)) == (self.op == "==")
        elif isinstance(rhs, tuple):  # any(...)
            hit = any(_compare(operator.eq, left, o.num, o.text) for o in rhs)
            ok = hit == (self.op == "==")
        else:
            right = rhs.resolve(env)
            if type(right) is _Fail:
                return False, right.detail
            ok = _compare(_OPS[self.op], left, _num(right), _text(right))
            rhs_src = f"{rhs_src} ({_show(right, 'text')})"
        return ok, f"{self.lhs.src} ({_show(left, self.kind)}) {self.op} {rhs_src}"


def _num(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and len(value) <= 80:
        if (whole := _go_int(value)) is not None:
            return whole
        if _NUMBER.fullmatch(value):
            return float(value)
    return None


def _go_int(text: str) -> int | None:
    """An integer as Gatus reads one (Go's base-0 syntax): 12, 0x1F, 0o17, 0b101, 017, 1_000."""
    if not text.isascii() or not text or text[-1].isspace() or text[0].isspace():
        return None
    try:
        value = int(text, 0)
    except ValueError:
        if not _LEGACY_OCTAL.fullmatch(text):
            return None
        value = int(text.replace("_", ""), 8)
    return value if -_INT64 <= value < _INT64 else None


def _length(value: Any, ref: Ref) -> int | _Fail:
    """What Gatus' len() measures: an array's elements, else the bytes of the value as text.

    An object is measured as its minified JSON with sorted keys (how Go re-encodes a map), and
    strings in UTF-8 bytes, so a verdict matches Gatus' for the same body.
    """
    if isinstance(value, list):
        return len(value)
    if value is None:
        return _Fail(f"{ref.src}: the value is null")
    if isinstance(value, dict):
        encoded = msgspec.json.encode(value, order="sorted")
        # Go's encoder escapes these five; each becomes a six-byte \uXXXX sequence.
        extra = sum(encoded.count(c) for c in (b"<", b">", b"&")) * 5
        extra += sum(encoded.count(c) for c in ("\u2028".encode(), "\u2029".encode())) * 3
        return len(encoded) + extra
    return len(_text(value).encode())


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(int(value))  # int() so an IntEnum such as HTTPStatus shows as 503
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, list | dict):
        return msgspec.json.encode(value).decode()
    return str(value)


def _compare(fn: Callable[[Any, Any], bool], left: Any, num: float | None, text: str) -> bool:
    if num is not None:
        n = _num(left)
        if n is not None:
            return fn(n, num)
    return fn(_text(left), text)


def _show(value: Any, kind: str) -> str:
    if kind == "s" and _num(value) is not None:
        return _duration_text(float(value))
    if kind != "text" and isinstance(value, float) and math.isfinite(value):
        return _text(round(value, 3))
    text = _text(value)
    if isinstance(value, int):
        return text
    text = " ".join(text[: MAX_SHOWN * 2].split())
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "…"


def _duration_text(seconds: float) -> str:
    if not math.isfinite(seconds):
        return str(seconds)
    sign, rest = ("-" if seconds < 0 else ""), int(abs(seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return sign + "".join(parts) if parts else "0s"
