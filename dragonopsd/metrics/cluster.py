"""Series about the cores of a deployment: how many are alive, how many monitors this one owns.

Each core exports its own monitors' series only (metrics/monitors.py reads the owned ones),
so summing dragonops_cluster_owned_monitors over every core's scrape counts each monitor once.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric

from .families import gauge
from .views import CoreFigures, OwnedFigures


class ClusterCollector:
    """dragonops_cluster_cores and dragonops_cluster_owned_monitors."""

    def __init__(self, core: CoreFigures, view: OwnedFigures) -> None:
        self._core = core
        self._view = view

    def collect(self) -> Iterator[Metric]:
        """Both gauges, as this core sees them now (on the loop)."""
        yield gauge(
            "dragonops_cluster_cores",
            "Live cores of the deployment as this core sees them (0 while it is cut off).",
            self._core.cores(),
        )
        yield gauge(
            "dragonops_cluster_owned_monitors",
            "Monitors this core owns (checks, and exports the series of).",
            self._view.owned_count() or 0,
        )
