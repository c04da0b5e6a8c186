"""Resource alert series: one gauge per rule in force on each server."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from prometheus_client.core import GaugeMetricFamily, Metric

from .labels import InventoryLabels


class RuleFigures(Protocol):
    """The one fact of a rule the series show."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...


class AlertFigures(Protocol):
    """(server id, rule, firing) for every rule in force on every server (the alert service)."""

    def firing(self) -> Iterable[tuple[str, RuleFigures, bool]]: ...


class AlertCollector:
    """``dragonops_server_alert_firing{server_id,server,rule_id,rule}``: 1 while firing, else 0."""

    def __init__(self, alerts: AlertFigures, labels: InventoryLabels) -> None:
        self._alerts = alerts
        self._labels = labels

    def collect(self) -> Iterator[Metric]:
        """Every (server, rule) pair in force, on the loop."""
        family = GaugeMetricFamily(
            "dragonops_server_alert_firing",
            "1 while a resource alert rule fires on the server (an incident is open), else 0.",
            labels=("server_id", "server", "rule_id", "rule"),
        )
        servers = self._labels.names.servers
        for server_id, rule, firing in self._alerts.firing():
            link = servers.get(server_id)
            name = link.name if link else ""
            family.add_metric([server_id, name, rule.id, rule.name], 1 if firing else 0)
        yield family
