"""The glob behind pat(): only `*` is special, so no regex is ever built from user input."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Glob:
    """A compiled `*` glob; matching is a prefix, a suffix and one left-to-right scan."""

    pattern: str
    parts: tuple[str, ...]
    min_length: int

    @classmethod
    def compile(cls, pattern: str) -> Glob:
        """Split on `*` once; empty middle parts (from `**`) match anywhere and are dropped."""
        parts = pattern.split("*")
        if len(parts) > 2:
            parts = [parts[0], *(p for p in parts[1:-1] if p), parts[-1]]
        return cls(pattern, tuple(parts), sum(map(len, parts)))

    def match(self, text: str) -> bool:
        """Whether text matches, case-sensitively; greedy leftmost search cannot backtrack."""
        parts = self.parts
        if len(parts) == 1:
            return text == parts[0]
        first, last = parts[0], parts[-1]
        if len(text) < self.min_length or not text.startswith(first) or not text.endswith(last):
            return False
        pos, end = len(first), len(text) - len(last)
        for middle in parts[1:-1]:
            found = text.find(middle, pos, end)
            if found < 0:
                return False
            pos = found + len(middle)
        return True
