"""Monitor series: their families, and a snapshot of the engine's figures to render them from.

Ten thousand monitors make ~95,000 samples; prometheus_client builds and formats them at
about 2 s per scrape here, so the exporter renders these families itself (exposition.py) from
a ``Snapshot``: one plain list per field, taken in steps of SLICE monitors with the loop given
back between steps. Columns rather than a tuple per monitor: ten thousand short-lived tuples
per scrape pushed the garbage collector into full collections, which take ~0.5 s with this
many monitors in the heap. Each monitor's label text is cached until the monitor or its
inventory names change. ``collect`` yields the same families as prometheus_client Metrics,
for the registry and for tests that check the fast text against prometheus_client's own.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ..model.monitor import Monitor
from ..store.monitors import MonitorRow
from .labels import InventoryLabels
from .views import EngineFigures, MonitorFigures

LABELS = ("monitor_id", "monitor", "kind", "client", "project", "environment")
STATES = ("up", "down", "pending", "maintenance", "paused")
# Monitors per step: each step (a snapshot slice, or one family's text for them) takes a few ms
# of the loop, which runs whatever else is due before the next one.
SLICE = 1000


@dataclass(frozen=True)
class Family:
    """A metric family's name, type and help text: one table for both render paths."""

    name: str
    kind: Literal["gauge", "counter"]
    help: str

    def header(self, openmetrics: bool) -> str:
        """HELP and TYPE lines (OpenMetrics names a counter family without ``_total``)."""
        name = self.name
        if openmetrics and self.kind == "counter":
            name = name.removesuffix("_total")
        return f"# HELP {name} {self.help}\n# TYPE {name} {self.kind}\n"


UP = Family("dragonops_monitor_up", "gauge", "1 while the monitor's status is up, else 0.")
STATUS = Family(
    "dragonops_monitor_status", "gauge", "The monitor's status: 1 on the series of its state."
)
RESPONSE = Family(
    "dragonops_monitor_response_time_seconds", "gauge", "Response time of the last check."
)
CHECKS = Family(
    "dragonops_monitor_checks_total", "counter", "Checks by result since the monitor was loaded."
)
CERT = Family(
    "dragonops_monitor_certificate_expiry_timestamp_seconds",
    "gauge",
    "When the certificate the last check saw expires (Unix time).",
)
INCIDENTS = Family("dragonops_incidents_open", "gauge", "Incidents currently open.")
FAMILIES = (UP, STATUS, RESPONSE, CHECKS, CERT, INCIDENTS)


def escape(value: str) -> str:
    """A label value as the exposition formats quote it."""
    if "\\" not in value and '"' not in value and "\n" not in value:
        return value
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def label_text(values: Sequence[str]) -> str:
    """A monitor's label values as exposition text, escaped (without the braces)."""
    return ",".join(f'{k}="{escape(v)}"' for k, v in zip(LABELS, values, strict=True))


class Labels:
    """One monitor's rendered label text; cached per monitor row. The values themselves are
    not kept (a tuple per monitor, ~2 MB for 25,000): only the slow collect() path reads them."""

    __slots__ = ("generation", "row", "text")

    def __init__(self, row: MonitorRow, generation: int, text: str) -> None:
        self.row = row
        self.generation = generation
        self.text = text


@dataclass
class Snapshot:
    """Every monitor's figures, one list per field (index i is the same monitor throughout)."""

    labels: list[Labels] = field(default_factory=list)
    status: list[str] = field(default_factory=list)
    seconds: list[float | None] = field(default_factory=list)  # last response time
    successes: list[int] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    cert: list[float | None] = field(default_factory=list)  # certificate expiry, Unix time
    incidents: int = 0  # open

    def __len__(self) -> int:
        return len(self.labels)


class MonitorCollector:
    """The ``dragonops_monitor_*`` and ``dragonops_incidents_open`` families."""

    def __init__(self, view: EngineFigures, labels: InventoryLabels) -> None:
        self._view = view
        self._labels = labels
        self._cache: dict[int, Labels] = {}

    def _values(self, monitor: Monitor) -> tuple[str, ...]:
        client, project, env = self._labels.placement(monitor.environment_id, monitor.server_id)
        return (monitor.id, monitor.name, monitor.kind, client, project, env)

    def _label(self, row: MonitorRow, generation: int) -> Labels:
        labels = self._cache.get(row.seq)
        if labels is not None and labels.row is row and labels.generation == generation:
            return labels
        text = label_text(self._values(row.monitor))
        if labels is not None and labels.row is row and labels.text == text:
            # The inventory changed elsewhere: the same object, so kept segments still hold.
            labels.generation = generation
            return labels
        labels = self._cache[row.seq] = Labels(row, generation, text)
        return labels

    def _add(self, snap: Snapshot, runtimes: Sequence[MonitorFigures]) -> None:
        generation = self._labels.generation
        label = self._label
        labels, status, seconds = snap.labels.append, snap.status.append, snap.seconds.append
        ok, failed, cert = snap.successes.append, snap.failures.append, snap.cert.append
        for rt in runtimes:
            row = rt.row
            last = rt.last
            latency = last.latency_ms if last is not None else None
            labels(label(row, generation))
            status(rt.visible_status)
            seconds(latency / 1000 if latency is not None and math.isfinite(latency) else None)
            ok(rt.successes)
            failed(rt.failures)
            cert(rt.cert_expires_at)
            if rt.incident is not None:
                snap.incidents += 1

    def _forget_removed(self, snap: Snapshot) -> None:
        if len(self._cache) > len(snap):
            live = {id(lb) for lb in snap.labels}
            self._cache = {seq: lb for seq, lb in self._cache.items() if id(lb) in live}

    def snapshot(self) -> Snapshot:
        """Every monitor's figures, in one go."""
        snap = Snapshot()
        self._add(snap, list(self._view.figures()))
        self._forget_removed(snap)
        return snap

    async def snapshot_sliced(self, step: float = 0.005) -> Snapshot:
        """The same, in SLICEs of monitors (~1 ms each), giving the loop back once a step's
        seconds of them are done."""
        runtimes = list(self._view.figures())
        snap = Snapshot()
        deadline = time.perf_counter() + step
        for start in range(0, len(runtimes), SLICE):
            self._add(snap, runtimes[start : start + SLICE])
            if time.perf_counter() >= deadline:
                await asyncio.sleep(0)
                deadline = time.perf_counter() + step
        self._forget_removed(snap)
        return snap

    def collect(self) -> Iterator[Metric]:
        """The families as prometheus_client Metrics (the registry's path; slow at scale)."""
        snap = self.snapshot()
        up = GaugeMetricFamily(UP.name, UP.help, labels=LABELS)
        status = GaugeMetricFamily(STATUS.name, STATUS.help, labels=(*LABELS, "state"))
        response = GaugeMetricFamily(RESPONSE.name, RESPONSE.help, labels=LABELS)
        checks = CounterMetricFamily(CHECKS.name, CHECKS.help, labels=(*LABELS, "result"))
        cert = GaugeMetricFamily(CERT.name, CERT.help, labels=LABELS)
        for labels, state, seconds, ok, failed, expires in zip(
            snap.labels,
            snap.status,
            snap.seconds,
            snap.successes,
            snap.failures,
            snap.cert,
            strict=True,
        ):
            values = list(self._values(labels.row.monitor))
            up.add_metric(values, 1 if state == "up" else 0)
            for s in STATES:
                status.add_metric([*values, s], 1 if s == state else 0)
            if seconds is not None:
                response.add_metric(values, seconds)
            checks.add_metric([*values, "success"], ok)
            checks.add_metric([*values, "failure"], failed)
            if expires is not None:
                cert.add_metric(values, expires)
        incidents = GaugeMetricFamily(INCIDENTS.name, INCIDENTS.help)
        incidents.add_metric([], snap.incidents)
        yield from (up, status, response, checks, cert, incidents)
