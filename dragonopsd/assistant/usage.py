"""Counters of what the assistant did, kept on the service for the metrics exporter to read."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Usage:
    """Monotonic counters since start.

    ``requests`` by answer source ("template", "llm"); ``fallbacks`` by why the model's answer
    was not used ("timeout", "error", "invalid", "refused", "no-key"); tokens as the model
    server reported them, including calls whose output was then rejected.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: Counter[str] = field(default_factory=Counter)
    fallbacks: Counter[str] = field(default_factory=Counter)
    rate_limited: int = 0
    unmatched: int = 0
