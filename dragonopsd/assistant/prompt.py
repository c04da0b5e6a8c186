"""Prompt sanitising: what reaches the matcher or the model is printable text of bounded size."""

from __future__ import annotations

import unicodedata

from ..problem import invalid

MAX_PROMPT = 4000
# Line breaks and tabs are layout, not control: a pasted multi-line request keeps them.
_KEEP = frozenset("\n\t")


def clean(raw: str) -> str:
    """NFC text without control or format characters (bidi overrides, zero-width joiners),
    stripped; 422 naming $.prompt unless 1..MAX_PROMPT characters remain."""
    text = unicodedata.normalize("NFC", raw.replace("\r\n", "\n"))
    kept = "".join(
        c for c in text if c in _KEEP or unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Co")
    ).strip()
    if not kept:
        raise invalid("$.prompt", "must contain text (control characters do not count)")
    if len(kept) > MAX_PROMPT:
        raise invalid(
            "$.prompt",
            f"at most {MAX_PROMPT} characters after removing control characters (got {len(kept)})",
        )
    return kept
