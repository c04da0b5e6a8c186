"""Badges as SVG in the shields.io look: a grey label, a coloured value, three styles.

Pure functions from text to bytes. Every piece of text (a monitor's name can be anything) is
XML-escaped and stripped of the characters XML 1.0 cannot carry, so no name can add markup.
Widths are estimated from Verdana's advance widths, which is what shields.io measures with too;
the text is also given ``textLength`` so a browser without Verdana still fits it in the box.
"""

from __future__ import annotations

import hashlib
import html
from typing import Final, Literal

Style = Literal["flat", "flat-square", "for-the-badge"]
STYLES: Final[tuple[Style, ...]] = ("flat", "flat-square", "for-the-badge")
MAX_TEXT: Final = 64

COLOURS: Final = {
    "brightgreen": "#4c1",
    "green": "#97ca00",
    "yellowgreen": "#a4a61d",
    "yellow": "#dfb317",
    "orange": "#fe7d37",
    "red": "#e05d44",
    "blue": "#007ec6",
    "grey": "#9f9f9f",
    "lightgrey": "#9f9f9f",
}
_LABEL_FILL: Final = "#555"
_FONT: Final = "Verdana,Geneva,DejaVu Sans,sans-serif"

# Verdana advance widths in em; anything not listed is measured as an average lowercase letter.
_NARROW: Final = dict.fromkeys("ijl.,:;'|!I", 0.32) | dict.fromkeys("frt()[] -/", 0.42)
_WIDE: Final = dict.fromkeys("mwMW%@", 0.95) | dict.fromkeys("ABCDGHKNOQRUVXY&", 0.74)
_DIGIT: Final = 0.636
_AVERAGE: Final = 0.6


def _clean(text: str) -> str:
    """Drop what XML 1.0 cannot hold (controls but tab/newline, lone surrogates), cap length."""
    kept = "".join(
        c
        for c in text
        if (c >= " " or c in "\t\n") and not ("\ud800" <= c <= "\udfff") and c not in "\ufffe\uffff"
    )
    kept = " ".join(kept.split())
    return kept if len(kept) <= MAX_TEXT else kept[: MAX_TEXT - 1] + "…"


def _width(text: str, size: float, spacing: float = 0.0) -> float:
    em = 0.0
    for c in text:
        em += _NARROW.get(c) or _WIDE.get(c) or (_DIGIT if c.isdigit() else _AVERAGE)
    return em * size + spacing * len(text)


def render(label: str, value: str, colour: str, style: Style = "flat") -> bytes:
    """One badge. ``colour`` is a name from COLOURS or a #hex value; label may be empty."""
    label, value = _clean(label), _clean(value)
    fill = COLOURS.get(colour, colour)
    big = style == "for-the-badge"
    if big:
        label, value = label.upper(), value.upper()
    size, spacing, height, pad = (10.0, 1.25, 28, 12) if big else (11.0, 0.0, 20, 6)
    label_text_w = _width(label, size, spacing) if label else 0.0
    value_text_w = _width(value, size, spacing)
    label_w = round(label_text_w + 2 * pad) if label else 0
    value_w = round(value_text_w + 2 * pad)
    total = label_w + value_w
    title = f"{label}: {value}" if label else value
    e = html.escape
    # ids unique per badge: several badges inlined in one page must not share a clip path.
    tag = hashlib.blake2s(f"{title}|{fill}|{style}".encode(), digest_size=4).hexdigest()
    weight = ' font-weight="bold"' if big else ""
    letter = f' letter-spacing="{spacing}"' if big else ""
    rounded = 3 if style == "flat" else 0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="{height}" '
        f'role="img" aria-label="{e(title)}">',
        f"<title>{e(title)}</title>",
    ]
    if style == "flat":
        parts.append(
            f'<linearGradient id="s{tag}" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" '
            'stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>'
        )
    parts += [
        f'<clipPath id="r{tag}"><rect width="{total}" height="{height}" rx="{rounded}" '
        'fill="#fff"/></clipPath>',
        f'<g clip-path="url(#r{tag})">',
        f'<rect width="{label_w}" height="{height}" fill="{_LABEL_FILL}"/>' if label else "",
        f'<rect x="{label_w}" width="{value_w}" height="{height}" fill="{e(fill)}"/>',
        f'<rect width="{total}" height="{height}" fill="url(#s{tag})"/>' if style == "flat" else "",
        "</g>",
        f'<g fill="#fff" text-anchor="middle" font-family="{_FONT}" font-size="{size:g}"'
        f"{weight}{letter}>",
    ]
    baseline = 18 if big else 14
    for text, x, w in (
        (label, label_w / 2, label_text_w),
        (value, label_w + value_w / 2, value_text_w),
    ):
        if not text:
            continue
        fit = f'textLength="{w:.0f}" lengthAdjust="spacing"'
        if style == "flat":  # the one-pixel shadow under the text
            parts.append(
                f'<text x="{x:.1f}" y="{baseline + 1}" fill="#010101" fill-opacity=".3" '
                f'aria-hidden="true" {fit}>{e(text)}</text>'
            )
        parts.append(f'<text x="{x:.1f}" y="{baseline}" {fit}>{e(text)}</text>')
    parts.append("</g></svg>")
    return "".join(parts).encode()
