"""Repeated authentication failures from one client address get 429 instead of another try.

Only failures are limited: a credential that checks out is always accepted, so a client that
fails (or an attacker behind the same proxy address) never locks out anyone who can log in.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque


class FailureLimiter:
    """Sliding window of failure times per address; bounded so a flood cannot grow it forever."""

    def __init__(self, limit: int, window: float, max_addresses: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self._max = max_addresses
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def configure(self, limit: int, window: float) -> None:
        """Take new limits (SIGHUP); failures already counted stay counted."""
        self.limit = limit
        self.window = window

    def _recent(self, address: str, now: float) -> deque[float] | None:
        times = self._failures.get(address)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[address]
            return None
        return times

    @property
    def active(self) -> bool:
        """True while any address has a failure in its window (False: nobody can be blocked).

        Addresses are kept in order of their last failure, so stale ones are dropped from the
        front as they are found; the answer costs one dict peek when nobody failed lately.
        """
        failures = self._failures
        if not failures:
            return False
        cutoff = time.monotonic() - self.window
        while failures:
            address, times = next(iter(failures.items()))
            if times and times[-1] > cutoff:
                return True
            del failures[address]
        return False

    def retry_after(self, address: str) -> int | None:
        """Seconds until address may try again, or None when it is not blocked."""
        now = time.monotonic()
        times = self._recent(address, now)
        if times is None or len(times) < self.limit:
            return None
        return max(1, math.ceil(times[0] + self.window - now))

    def fail(self, address: str) -> bool:
        """Count one failure for address; True when this one reached the limit."""
        now = time.monotonic()
        times = self._recent(address, now)
        if times is None:
            if len(self._failures) >= self._max:
                self._failures.popitem(last=False)
            times = self._failures[address] = deque(maxlen=self.limit)
        times.append(now)
        self._failures.move_to_end(address)
        return len(times) == self.limit
