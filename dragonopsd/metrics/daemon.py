"""The daemon's own series: scheduler, history writer, websockets, notifications, Redis, build.

Everything is read from the services' counters at scrape time, on the loop; nothing here is
updated per probe.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ..store.protocols import HistorySink
from .families import counter, gauge, histogram
from .views import HubFigures, NotifierFigures, SchedulerFigures

# True: connected; False: configured but unreachable; None: no Redis configured (no series).
RedisProbe = Callable[[], bool | None]


class DaemonCollector:
    """Internals: how the daemon itself is keeping up."""

    def __init__(
        self,
        *,
        scheduler: SchedulerFigures,
        history: HistorySink,
        hub: HubFigures,
        notifier: NotifierFigures,
        redis_up: Callable[[], bool | None],
        version: str,
    ) -> None:
        self._scheduler = scheduler
        self._history = history
        self._hub = hub
        self._notifier = notifier
        self._redis_up = redis_up
        self._version = version

    def collect(self) -> Iterator[Metric]:
        """Every family, from the counters as they are now (on the loop)."""
        s, h = self._scheduler, self._history
        yield histogram(
            "dragonops_scheduler_drift_seconds",
            "How late each check started after its due time.",
            s.drift_buckets,
        )
        yield counter(
            "dragonops_scheduler_checks_started_total", "Scheduled checks started.", s.started
        )
        yield counter(
            "dragonops_scheduler_checks_skipped_total",
            "Scheduled runs skipped because the previous check of the monitor was still going.",
            s.skipped,
        )
        yield gauge("dragonops_probes_in_flight", "Scheduled checks running now.", s.in_flight)
        yield gauge(
            "dragonops_history_queue_depth", "Heartbeats waiting for the next flush.", h.queue_depth
        )
        yield histogram(
            "dragonops_history_flush_seconds",
            "Time to store one batch of heartbeats.",
            h.flush_buckets,
        )
        yield counter(
            "dragonops_history_heartbeats_written_total", "Heartbeats stored.", h.flushed_total
        )
        yield counter(
            "dragonops_history_heartbeats_dropped_total",
            "Heartbeats dropped because the queue was full.",
            h.dropped,
        )
        yield from self._live()
        yield from self._notifications()
        up = self._redis_up()
        if up is not None:
            yield gauge("dragonops_redis_up", "1 while the Redis connection works.", int(up))
        info = GaugeMetricFamily(
            "dragonops_build_info",
            "Always 1; the labels name the daemon and Python versions.",
            labels=("version", "python_version"),
        )
        info.add_metric([self._version, platform.python_version()], 1)
        yield info

    def _live(self) -> Iterator[Metric]:
        yield gauge(
            "dragonops_ws_connections", "Open websocket connections.", len(self._hub.clients)
        )
        dropped = CounterMetricFamily(
            "dragonops_ws_events_dropped_total",
            "Websocket frames that never reached a client, by reason.",
            labels=("reason",),
        )
        for reason, count in self._hub.drops.items():
            dropped.add_metric([reason], count)
        yield dropped

    def _notifications(self) -> Iterator[Metric]:
        labels = ("channel_id", "channel", "kind")
        sent = CounterMetricFamily(
            "dragonops_notifications_total",
            "Notifications per channel by outcome: sent, failed (after retries) or dropped "
            "(queue full).",
            labels=(*labels, "result"),
        )
        retries = CounterMetricFamily(
            "dragonops_notification_retries_total", "Delivery attempts retried.", labels=labels
        )
        backlog = GaugeMetricFamily(
            "dragonops_notification_queue_depth", "Notifications waiting.", labels=labels
        )
        queued = self._notifier.backlog()
        for ident, stats in sorted(self._notifier.stats.items()):
            values = [ident, stats.name, stats.kind]
            sent.add_metric([*values, "sent"], stats.sent)
            sent.add_metric([*values, "failed"], stats.failed)
            sent.add_metric([*values, "dropped"], stats.dropped)
            retries.add_metric(values, stats.retried)
            backlog.add_metric(values, queued.get(ident, 0))
        yield sent
        yield retries
        yield backlog
        yield counter(
            "dragonops_notifications_deduped_total",
            "Notifications not sent because the same one went out within the dedupe window.",
            self._notifier.deduped,
        )
