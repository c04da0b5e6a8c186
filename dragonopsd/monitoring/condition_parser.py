"""The condition parser: a hand-written scanner and recursive descent over the text.

Every check that can happen at parse time (placeholder names, literal types, durations) happens
here, and every error points at a character. No eval, and no regex built from condition text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from .condition_tree import (
    _NUMBER,
    _OPS,
    Call,
    Comparison,
    ConditionError,
    Literal,
    Operand,
    Ref,
    _num,
)
from .wildcard import Glob

PLACEHOLDERS: Final = frozenset(
    [
        "STATUS",
        "RESPONSE_TIME",
        "BODY",
        "CERTIFICATE_EXPIRATION",
        "CONNECTED",
        "DNS_RCODE",
        "IP",
        "PACKET_LOSS",
        "RESULT",
        "ROWS",
        "INFO",
        "QUEUE_MESSAGES",
        "QUEUE_CONSUMERS",
        "GRPC_STATUS",
    ]
)
MAX_PATTERN: Final = 256
# What a right-hand literal must be: num, ms (number or duration), s (duration), bool; else text.
_KINDS: Final = {
    "STATUS": "num",
    "PACKET_LOSS": "num",
    "ROWS": "num",
    "QUEUE_MESSAGES": "num",
    "QUEUE_CONSUMERS": "num",
    "RESPONSE_TIME": "ms",
    "CERTIFICATE_EXPIRATION": "s",
    "CONNECTED": "bool",
}
_LEN_TARGETS: Final = ("BODY", "IP", "DNS_RCODE", "RESULT")
# Placeholders that take a path: [BODY] into its JSON, [INFO] into Redis INFO's fields.
_PATHED: Final = ("BODY", "INFO")
_KEY_STOP: Final = frozenset(".[]()=!<>,")
# Go's duration units (what Gatus accepts) plus d; "ms" must be tried before "m".
_UNITS: Final = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}


class _Parser:
    """Recursive descent straight over the text, so every error can point at a character."""

    def __init__(self, text: str) -> None:
        self.text, self.pos, self.end = text, 0, len(text.rstrip())

    def fail(self, message: str, pos: int | None = None) -> ConditionError:
        return ConditionError(message, self.pos if pos is None else pos)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < self.end else ""

    def skip(self) -> None:
        while self.pos < self.end and self.text[self.pos].isspace():
            self.pos += 1

    def scan(self, accept: Callable[[str], bool]) -> str:
        start = self.pos
        while self.pos < self.end and accept(self.text[self.pos]):
            self.pos += 1
        return self.text[start : self.pos]

    def function(self) -> str:
        """A call's name, consuming it and its '('; '' (consuming nothing) when there is none."""
        start = self.pos
        name = self.scan(_is_name)
        self.skip()
        if name and self.peek() == "(":
            self.pos += 1
            return name
        self.pos = start
        return ""

    def condition(self) -> Comparison:
        self.skip()
        if self.pos >= self.end:
            raise self.fail("empty condition")
        func_pos = self.pos
        func = self.function()
        opened = self.pos
        self.skip()
        placeholder_first, self.pos = self.peek() == "[", opened
        if func in ("any", "pat") and not placeholder_first:  # Gatus' any(1, 2) == [STATUS]
            return self.reversed(func, func_pos)
        if func == "any":  # the any([STATUS], 200, 204) form
            self.skip()
            lhs = self.operand()
            self.skip()
            if self.peek() != ",":
                raise self.fail("expected ',' after the first argument of any()")
            self.pos += 1
            options = self.options(lhs)
            rhs_src = f"any({', '.join(o.text for o in options)})"
            tree = Comparison(lhs, "==", options, rhs_src, _kind(lhs))
        else:
            self.pos = 0
            self.skip()
            lhs = self.operand()
            self.skip()
            op_pos, op = self.pos, self.text[self.pos : self.pos + 2]
            if op not in _OPS:
                op = self.peek()
                if op not in ("<", ">"):
                    raise self.fail("expected an operator (==, !=, <, <=, >, >=)")
            self.pos += len(op)
            if _kind(lhs) == "bool" and op not in ("==", "!="):
                raise self.fail(f"{lhs.src} compares only with == or !=", op_pos)
            self.skip()
            rhs_start = self.pos
            rhs = self.rhs(lhs, op)
            tree = Comparison(lhs, op, rhs, self.text[rhs_start : self.pos].strip(), _kind(lhs))
        self.skip()
        if self.pos < self.end:
            raise self.fail(f"unexpected {self.peek()!r} after the condition")
        return tree

    def reversed(self, func: str, start: int) -> Comparison:
        """any(...) or pat(...) on the left, as Gatus allows: the same tree with sides swapped.

        Gatus splits a condition at its operator, so the function's text runs up to the first
        " == " (else " != "); the other side must be a placeholder.
        """
        opened = self.pos
        split = next((at for op in (" == ", " != ") if (at := self.text.find(op, start)) >= 0), -1)
        if split < 0:
            raise self.fail(f"{func}() compares only with == or !=", start)
        close = len(self.text[:split].rstrip())
        if close <= opened or self.text[close - 1] != ")":
            raise self.fail(f"{func}( is not closed with ')'", close)
        op = self.text[split + 1 : split + 3]
        self.pos = split + 3
        self.skip()
        if self.pos >= self.end:
            raise self.fail(f"expected a placeholder after {op}")
        other = self.operand()
        self.skip()
        if self.pos < self.end:
            raise self.fail(f"unexpected {self.peek()!r} after the condition")
        end, source = self.pos, self.text[start:close]
        if func == "pat":
            pattern = self.text[opened : close - 1]
            if len(pattern) > MAX_PATTERN:
                raise self.fail(f"pattern is longer than {MAX_PATTERN} characters", opened)
            return Comparison(other, op, Glob.compile(pattern), source, _kind(other))
        self.pos, self.end = opened, close
        options = self.options(other)
        if self.pos != close:
            raise self.fail(f"unexpected {self.peek()!r} after any(...)")
        self.pos, self.end = end, end
        return Comparison(other, op, options, source, _kind(other))

    def operand(self) -> Operand:
        start = self.pos
        if self.peek() == "[":
            return self.ref()
        func = self.function()
        if func in ("len", "has"):
            self.skip()
            if self.peek() != "[":
                raise self.fail(f"{func}() takes a placeholder such as [BODY]")
            ref_pos, ref = self.pos, self.ref()
            if func == "len" and ref.name not in _LEN_TARGETS:
                raise self.fail("len() takes [BODY], [IP], [DNS_RCODE] or [RESULT]", ref_pos)
            self.skip()
            if self.peek() != ")":
                raise self.fail(f"expected ')' to close {func}(")
            self.pos += 1
            return Call(func, ref, self.text[start : self.pos])
        if func in ("pat", "any"):
            raise self.fail(f"{func}() belongs on the right of == or !=", start)
        if func:
            raise self.fail(f"unknown function {func}()", start)
        raise self.fail("expected a placeholder such as [STATUS], or len(), has(), any()")

    def ref(self) -> Ref:
        start = self.pos
        self.pos += 1
        name = self.scan(_is_name).upper()
        if self.peek() != "]":
            raise self.fail("expected ']' to close the placeholder")
        self.pos += 1
        if name not in PLACEHOLDERS:
            known = ", ".join(f"[{p}]" for p in sorted(PLACEHOLDERS))
            raise self.fail(f"unknown placeholder [{name}]; expected one of {known}", start)
        path: list[str | int] = []
        while (char := self.peek()) in (".", "[") and char:
            if name not in _PATHED:
                raise self.fail(f"only [BODY] and [INFO] take a path, not [{name}]")
            self.pos += 1
            if char == ".":
                key = self.scan(lambda c: not c.isspace() and c not in _KEY_STOP)
                if not key:
                    raise self.fail("expected a field name after '.'")
                path.append(key)
                continue
            digits = self.scan(lambda c: "0" <= c <= "9")
            if not digits or len(digits) > 9:
                raise self.fail("expected an array index such as [0]", self.pos - len(digits))
            if self.peek() != "]":
                raise self.fail("expected ']' to close the array index")
            self.pos += 1
            path.append(int(digits))
        return Ref(name, tuple(path), self.text[start : self.pos])

    def rhs(self, lhs: Operand, op: str) -> Literal | Glob | tuple[Literal, ...] | Operand:
        start = self.pos
        if self.pos >= self.end:
            raise self.fail(f"expected a value after {op}")
        if self.peek() == "[":
            return self.operand()
        func = self.function()
        if func in ("pat", "any") and op not in ("==", "!="):
            raise self.fail(f"{func}() works only with == and !=", start)
        if func == "pat":
            close = self.end - 1
            if close < self.pos or self.text[close] != ")":
                raise self.fail("pat( is not closed with ')'", self.end)
            pattern = self.text[self.pos : close]
            if len(pattern) > MAX_PATTERN:
                raise self.fail(f"pattern is longer than {MAX_PATTERN} characters", self.pos)
            self.pos = close + 1
            return Glob.compile(pattern)
        if func == "any":
            return self.options(lhs)
        if func:
            self.pos = start
            return self.operand()
        return self.literal(lhs)

    def options(self, lhs: Operand) -> tuple[Literal, ...]:
        options = []
        while True:
            self.skip()
            options.append(self.literal(lhs))
            self.skip()
            if self.peek() not in (",", ")") or not self.peek():
                raise self.fail("expected ',' or ')' in any(")
            self.pos += 1
            if self.text[self.pos - 1] == ")":
                return tuple(options)

    def literal(self, lhs: Operand) -> Literal:
        start, words = self.pos, []
        while word := self.scan(lambda c: not c.isspace() and c not in "(),"):
            if word in _OPS or word in ("=", "!"):
                raise self.fail(f"unexpected operator {word!r}", self.pos - len(word))
            words.append(word)
            self.skip()
        if not words:
            raise self.fail("expected a value")
        text, kind = " ".join(words), _kind(lhs)
        if kind == "bool":
            if text.lower() not in ("true", "false"):
                raise self.fail(f"{lhs.src} compares with true or false", start)
            return Literal(text.lower(), None)
        num = _num(text)
        if kind == "ms" and num is None and (seconds := _parse_duration(text)) is not None:
            num = seconds * 1000
        elif kind == "s":
            seconds = _parse_duration(text)
            if seconds is None:
                if num is None:
                    message = "compares with a duration such as 72h, or a number of milliseconds"
                    raise self.fail(f"{lhs.src} {message}", start)
                seconds = num / 1000  # Gatus reads a bare number as milliseconds
            num = seconds
        if kind in ("num", "ms") and num is None:
            raise self.fail(f"{lhs.src} compares with a number", start)
        return Literal(text, num)


def _is_name(char: str) -> bool:
    return char.isascii() and (char.isalnum() or char == "_")


def _kind(operand: Operand) -> str:
    if isinstance(operand, Call):
        return "num" if operand.func == "len" else "bool"
    return "text" if operand.path else _KINDS.get(operand.name, "text")


def _parse_duration(text: str) -> float | None:
    """1h30m, 72h, 500ms, -1.5d -> seconds, as Go reads them (plus d); a bare 0 is allowed."""
    sign = -1.0 if text[:1] == "-" else 1.0
    text = text[1:] if text[:1] in ("-", "+") else text
    if text == "0":
        return 0.0
    total, pos, n = 0.0, 0, len(text)
    while pos < n:
        start = pos
        while pos < n and ("0" <= text[pos] <= "9" or text[pos] == "."):
            pos += 1
        number = text[start:pos]
        unit = next((u for u in _UNITS if text.startswith(u, pos)), None)
        if unit is None or not _NUMBER.fullmatch(number):
            return None
        total += float(number) * _UNITS[unit]
        pos += len(unit)
    return sign * total if n else None
