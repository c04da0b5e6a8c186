"""Per-caller request limit for the assistant: a sliding window, bounded in the callers it keeps.

A model call costs money and a template costs CPU; either way one token must not be able to
take the assistant from everyone else.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque


class RateLimiter:
    """At most ``limit`` requests per ``window`` seconds per key (the caller's token id)."""

    def __init__(self, limit: int, window: float = 60.0, max_keys: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self._max = max_keys
        self._calls: OrderedDict[str, deque[float]] = OrderedDict()

    def acquire(self, key: str, now: float | None = None) -> int | None:
        """Count one request for key; None when allowed, else whole seconds until it would be."""
        now = time.monotonic() if now is None else now
        calls = self._calls.get(key)
        if calls is None:
            if len(self._calls) >= self._max:
                # The least recently seen caller goes first: it is the likeliest to be done.
                self._calls.popitem(last=False)
            calls = self._calls[key] = deque(maxlen=self.limit)
        while calls and calls[0] <= now - self.window:
            calls.popleft()
        self._calls.move_to_end(key)
        if len(calls) >= self.limit:
            return max(1, math.ceil(calls[0] + self.window - now))
        calls.append(now)
        return None
