"""Fixed-bound bucket counts: the data behind a Prometheus histogram, kept as plain ints.

Services count into these on their hot paths (one bisect and two additions, no locks, no
prometheus_client objects); the metrics collectors turn them into ``_bucket`` / ``_sum`` /
``_count`` series at scrape time.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable

# Seconds, for waits and durations from a millisecond to a minute.
SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0)


class Buckets:
    """How many observations fell at or below each bound (the last slot is +Inf), and their sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Iterable[float] = SECONDS) -> None:
        self.bounds = tuple(sorted(bounds))
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Count one observation (loop thread only)."""
        # bisect_left: a value equal to a bound belongs to that bucket (Prometheus' "le").
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        """How many observations were counted."""
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, observations at or below it) per bucket, ending with +Inf."""
        out: list[tuple[float, int]] = []
        total = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += count
            out.append((bound, total))
        return out
