"""What a template returns: the file and the sentences explaining it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Rendered:
    """A generated file. ``notes`` say what it does; the provider adds what was assumed."""

    code: str
    language: str
    filename: str
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
