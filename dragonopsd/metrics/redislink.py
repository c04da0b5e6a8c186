"""Series about the Redis side of the deployment: the link, the bus and remote probing.

Read from plain counters at scrape time; registered only when ``[redis] url`` is set.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric

from ..bus import RedisBus
from ..redislink.client import RedisLink
from .families import counter
from .views import RemoteFigures


class RedisCollector:
    """Errors and outages of the link, events over pub/sub, probe jobs and results."""

    def __init__(self, link: RedisLink, bus: RedisBus | None, remote: RemoteFigures) -> None:
        self._link = link
        self._bus = bus
        self._remote = remote

    def collect(self) -> Iterator[Metric]:
        """Every family, from the counters as they are now (on the loop)."""
        link, remote = self._link, self._remote
        yield counter(
            "dragonops_redis_errors_total",
            "Redis calls that failed (connection lost, timeout, error reply).",
            link.errors,
        )
        yield counter(
            "dragonops_redis_outages_total",
            "Times Redis went from answering to away.",
            link.outages,
        )
        if self._bus is not None:
            bus = self._bus
            yield counter("dragonops_bus_events_sent_total", "Events sent to Redis.", bus.sent)
            yield counter(
                "dragonops_bus_events_received_total",
                "Events received from other processes through Redis.",
                bus.received,
            )
            yield counter(
                "dragonops_bus_events_unsent_total",
                "Events not sent to Redis (away, or the outgoing queue was full).",
                bus.dropped,
            )
        yield counter(
            "dragonops_remote_jobs_total",
            "Probe jobs queued for remote locations.",
            remote.dispatched,
        )
        yield counter(
            "dragonops_remote_no_worker_total",
            "Remote location checks skipped because no worker of the location was alive.",
            remote.no_worker,
        )
        yield counter(
            "dragonops_remote_results_total",
            "Probe results received from remote workers.",
            remote.received,
        )
