"""A small block-style YAML writer, so YAML templates are built as data and always parse.

Strings are written plain only when no YAML reader could take them for anything else (a
number, a boolean, ``on``, a key, a comment); otherwise double-quoted with YAML's escapes.
Multi-line text becomes a ``|`` block when it can be one exactly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

_PLAIN = re.compile(r"[A-Za-z_/.][A-Za-z0-9_./ -]*")
# YAML 1.1 reads these as booleans or null (GitHub's `on:` is the famous one).
_RESERVED = frozenset(
    ["y", "n", "yes", "no", "true", "false", "on", "off", "null", "~", ".inf", ".nan"]
)
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t"}


def _printable(code: int) -> bool:
    """YAML's printable set, less the BOM and NEL (escaped to be safe)."""
    return (
        0x20 <= code <= 0x7E
        or 0xA0 <= code <= 0xD7FF
        or (0xE000 <= code <= 0xFFFD and code != 0xFEFF)
        or 0x10000 <= code <= 0x10FFFF
    )


def _quote(text: str) -> str:
    out = []
    for c in text:
        code = ord(c)
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif _printable(code):
            out.append(c)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def _float(value: float) -> str:
    text = repr(value)
    # YAML 1.1 readers (PyYAML) want a dot in the mantissa: 1e+16 would read as a string.
    mantissa, e, exponent = text.partition("e")
    if e and "." not in mantissa:
        text = f"{mantissa}.0e{exponent}"
    return text


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, float):
        return _float(value)
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _RESERVED and not text.endswith(" "):
        return text
    return _quote(text)


def _inline(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{}"
    if isinstance(value, Sequence) and not isinstance(value, str):
        return "[]"
    return _scalar(value)


def _block(text: str, pad: str) -> list[str]:
    return [f"{pad}{line}" if line else "" for line in text.rstrip("\n").split("\n")]


def _nested(value: Any) -> bool:
    if isinstance(value, Mapping):
        return bool(value)
    return isinstance(value, Sequence) and not isinstance(value, str) and bool(value)


def _multiline(value: Any) -> bool:
    """Text a ``|`` / ``|-`` block holds exactly: several lines, each one _BLOCK_LINE, and at
    most one trailing newline."""
    if not isinstance(value, str) or "\n" not in value.rstrip("\n") or value.endswith("\n\n"):
        return False
    lines = value.removesuffix("\n").split("\n")
    return bool(lines[0]) and all(_block_line(line) for line in lines)


def _block_line(line: str) -> bool:
    """A line a literal block keeps exactly: empty, or printable (tabs too) with no leading
    whitespace (which would change the block's indentation)."""
    if not line:
        return True
    return not line[0].isspace() and all(c == "\t" or _printable(ord(c)) for c in line)


def _lines(value: Any, depth: int) -> list[str]:
    pad = "  " * depth
    out: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            name = _scalar(str(key))
            if _nested(item):
                out.append(f"{pad}{name}:")
                out += _lines(item, depth + 1)
            elif _multiline(item):
                out.append(f"{pad}{name}: |{'' if item.endswith(chr(10)) else '-'}")
                out += _block(item, pad + "  ")
            else:
                out.append(f"{pad}{name}: {_inline(item)}")
        return out
    for item in value:
        if isinstance(item, Mapping) and item:
            sub = _lines(item, depth + 1)
            out.append(f"{pad}- {sub[0].lstrip()}")
            out += sub[1:]
        elif _nested(item):
            out.append(f"{pad}-")
            out += _lines(item, depth + 1)
        elif _multiline(item):
            out.append(f"{pad}- |{'' if item.endswith(chr(10)) else '-'}")
            out += _block(item, pad + "  ")
        else:
            out.append(f"{pad}- {_inline(item)}")
    return out


def dump(document: Mapping[str, Any], header: str = "") -> str:
    """One YAML document; header lines become ``#`` comments at the top."""
    comments = [f"# {line}".rstrip() for line in header.splitlines()]
    return "\n".join([*comments, *_lines(document, 0)]) + "\n"


def dump_all(documents: Sequence[Mapping[str, Any]], header: str = "") -> str:
    """Several documents separated by ``---``."""
    parts = [dump(doc, header if i == 0 else "") for i, doc in enumerate(documents)]
    return "---\n".join(parts)
