"""Server series: the latest resource sample and the inventory status of each server."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from .labels import NOWHERE, InventoryLabels
from .views import LatestSamples

LABELS = ("server_id", "server", "client", "project", "environment")
# Statuses in which a server is expected to answer; the others are planned or failed states.
RUNNING = frozenset({"running"})


class ServerCollector:
    """``dragonops_server_{up,cpu_ratio,memory_ratio}``, labelled along the hierarchy."""

    def __init__(self, sampler: LatestSamples, labels: InventoryLabels) -> None:
        self._sampler = sampler
        self._labels = labels

    def _values(self, server_id: str) -> list[str]:
        server = self._labels.names.servers.get(server_id)
        if server is None:  # sampled, but gone from the inventory (or not in it yet)
            return [server_id, "", *NOWHERE]
        return [server_id, server.name, *self._labels.placement(server.environment_id, None)]

    def collect(self) -> Iterator[Metric]:
        """Every server the inventory knows, and every server with a sample (on the loop)."""
        up = GaugeMetricFamily(
            "dragonops_server_up",
            "1 while the server's inventory status is running, else 0.",
            labels=LABELS,
        )
        for ident, server in sorted(self._labels.names.servers.items()):
            up.add_metric(self._values(ident), 1 if server.status in RUNNING else 0)
        cpu = GaugeMetricFamily(
            "dragonops_server_cpu_ratio", "CPU in use (0-1), latest sample.", labels=LABELS
        )
        memory = GaugeMetricFamily(
            "dragonops_server_memory_ratio", "Memory in use (0-1), latest sample.", labels=LABELS
        )
        for sample in self._sampler.all_latest():
            values = self._values(sample.server_id)
            cpu.add_metric(values, sample.cpu / 100)
            memory.add_metric(values, sample.memory / 100)
        yield up
        yield cpu
        yield memory
