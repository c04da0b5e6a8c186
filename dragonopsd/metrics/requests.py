"""HTTP request counters, kept as plain ints by the request front and exported at scrape time.

The request front is the hottest path in the daemon (tests/bench/api.py), so recording a request
is two dict lookups, a bisect and three additions; no prometheus_client object is touched.
Labels come from the route template (``/api/monitors/{id}``), never the raw path, and methods
outside the HTTP vocabulary count as ``other``: a client cannot mint new series.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

from ..buckets import Buckets
from .families import bucket_pairs

UNMATCHED = "unmatched"  # 404s, 405s and preflights: no route template to name
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
BOUNDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SWITCHING = 101  # a websocket's "duration" is its whole life: counted, never timed


class RouteStats:
    """One route template's requests per (method, status) and its response time buckets."""

    __slots__ = ("counts", "durations")

    def __init__(self) -> None:
        self.counts: dict[tuple[str, int], int] = {}
        self.durations = Buckets(BOUNDS)


class RequestStats:
    """Requests per (route, method, code) and response time buckets per route."""

    def __init__(self) -> None:
        self.routes: dict[str, RouteStats] = {}
        # (route, code) of audited calls refused to callers without a credential: counted
        # here instead of written to the audit log, which anyone could otherwise flood.
        self.unaudited_calls: dict[tuple[str, int], int] = {}

    def unaudited(self, route: str, status: int) -> None:
        """Count one audited call that was refused before anyone was identified."""
        key = (route, status)
        self.unaudited_calls[key] = self.unaudited_calls.get(key, 0) + 1

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request (loop thread only; ~0.3 us, so inlined by hand)."""
        stats = self.routes.get(route)
        if stats is None:
            stats = self.routes[route] = RouteStats()
        key = (method if method in METHODS else "other", status)
        counts = stats.counts
        counts[key] = counts.get(key, 0) + 1
        if status != SWITCHING:
            buckets = stats.durations
            buckets.counts[bisect_left(buckets.bounds, seconds)] += 1
            buckets.sum += seconds

    def collect(self) -> Iterator[Metric]:
        """``dragonops_http_requests_total`` and ``dragonops_http_request_duration_seconds``."""
        requests = CounterMetricFamily(
            "dragonops_http_requests_total",
            "HTTP requests answered, by route template, method and status code.",
            labels=("route", "method", "code"),
        )
        durations = HistogramMetricFamily(
            "dragonops_http_request_duration_seconds",
            "Time from the request reaching the app to the handler's response, by route.",
            labels=("route",),
        )
        for route, stats in sorted(self.routes.items()):
            for (method, code), count in sorted(stats.counts.items()):
                requests.add_metric([route, method, str(code)], count)
            if stats.durations.count:  # websocket routes: counted, never timed
                durations.add_metric(
                    [route], bucket_pairs(stats.durations), sum_value=stats.durations.sum
                )
        unaudited = CounterMetricFamily(
            "dragonops_http_unaudited_refusals_total",
            "Writes refused to callers without a valid credential (no audit entry is kept "
            "for these), by route template and status code.",
            labels=("route", "code"),
        )
        for (route, code), count in sorted(self.unaudited_calls.items()):
            unaudited.add_metric([route, str(code)], count)
        yield requests
        yield durations
        yield unaudited
