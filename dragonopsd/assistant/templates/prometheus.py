"""Prometheus alerting rules for the signals the prompt names (``promtool check rules`` clean).

Host alerts use node_exporter's metrics, HTTP alerts the conventional ``http_requests_total``
and ``http_request_duration_seconds`` names, certificates blackbox_exporter's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .. import yamldoc
from ..params import Params
from .rendered import Rendered

Rule = dict[str, Any]
# Stands for the threshold in expressions and descriptions (PromQL and Go templates use both
# kinds of braces, so no str.format).
LIMIT = "LIMIT"


@dataclass(frozen=True)
class Alert:
    """One alert the prompt can ask for: the words that name it and the rule it becomes."""

    key: str
    pattern: str
    default: int  # threshold when the prompt gives none
    unit: str
    name: str
    expr: str
    severity: str
    summary: str
    description: str
    for_: str | None = None  # fixed duration; None: what the prompt says, else 5m

    def rule(self, threshold: int, for_: str) -> Rule:
        """The rule with the threshold filled in."""
        return {
            "alert": self.name,
            "expr": self.expr.replace(LIMIT, str(threshold)),
            "for": self.for_ or for_,
            "labels": {"severity": self.severity},
            "annotations": {
                "summary": self.summary,
                "description": self.description.replace(LIMIT, str(threshold)),
            },
        }


ALERTS = (
    Alert(
        "down",
        r"\b(?:down|unreachable|availability|uptime)\b",
        0,
        "",
        "InstanceDown",
        "up == 0",
        "critical",
        "{{ $labels.instance }} is down",
        "{{ $labels.job }} target {{ $labels.instance }} does not answer scrapes.",
    ),
    Alert(
        "cpu",
        r"\bcpu\b|\bprocessor\b|\bload\b",
        90,
        "%",
        "HighCpuUsage",
        '100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m]))) > LIMIT',
        "warning",
        "High CPU on {{ $labels.instance }}",
        'CPU usage is {{ $value | printf "%.0f" }}% (above LIMIT%).',
    ),
    Alert(
        "memory",
        r"\bmemory\b|\bram\b|\bmem\b",
        90,
        "%",
        "HighMemoryUsage",
        "100 * (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes) > LIMIT",
        "warning",
        "High memory use on {{ $labels.instance }}",
        'Memory use is {{ $value | printf "%.0f" }}% (above LIMIT%).',
    ),
    Alert(
        "disk",
        r"\bdisk\b|\bstorage\b|\bfilesystem\b|\bspace\b",
        85,
        "%",
        "DiskAlmostFull",
        '100 * (1 - node_filesystem_avail_bytes{fstype!~"tmpfs|overlay"}'
        ' / node_filesystem_size_bytes{fstype!~"tmpfs|overlay"}) > LIMIT',
        "warning",
        "{{ $labels.mountpoint }} on {{ $labels.instance }} is filling up",
        '{{ $labels.mountpoint }} is {{ $value | printf "%.0f" }}% full (above LIMIT%).',
    ),
    Alert(
        "errors",
        r"\b5xx\b|\berror(?:s| rate)?\b|\bfailures?\b",
        5,
        "%",
        "HighErrorRate",
        '100 * sum by (job) (rate(http_requests_total{status=~"5.."}[5m]))'
        " / sum by (job) (rate(http_requests_total[5m])) > LIMIT",
        "critical",
        "{{ $labels.job }} answers too many 5xx",
        '{{ $value | printf "%.1f" }}% of requests fail with 5xx (above LIMIT%).',
    ),
    Alert(
        "latency",
        r"\blatency\b|\bslow\b|\bp9[59]\b|\bresponse time\b",
        500,
        "ms",
        "HighLatency",
        "histogram_quantile(0.95, sum by (job, le) "
        "(rate(http_request_duration_seconds_bucket[5m]))) * 1000 > LIMIT",
        "warning",
        "{{ $labels.job }} is slow",
        'p95 latency is {{ $value | printf "%.0f" }} ms (above LIMIT ms).',
    ),
    Alert(
        "certificate",
        r"\bcert(?:ificate)?s?\b|\bssl\b|\btls\b|\bexpir",
        14,
        "days",
        "CertificateExpiresSoon",
        "(probe_ssl_earliest_cert_expiry - time()) / 86400 < LIMIT",
        "warning",
        "Certificate of {{ $labels.instance }} expires soon",
        'It expires in {{ $value | printf "%.0f" }} days (less than LIMIT).',
        for_="1h",
    ),
)
DEFAULT_ALERTS = ("down", "cpu", "memory", "disk")
_FOR = re.compile(r"\bfor\s+(\d{1,4})\s*(s|sec|seconds?|m|min|minutes?|h|hours?)\b", re.I)


def _threshold(p: Params, alert: Alert) -> int:
    """The number written near the alert's words ("cpu above 80%", "latency over 300ms")."""
    near = re.search(
        rf"(?:{alert.pattern})[^\d\n]{{0,40}}?(\d{{1,5}})\s*(?:%|percent|ms|days?)?",
        p.prompt,
        re.IGNORECASE,
    )
    if near and alert.unit:
        return int(near[1])
    if alert.unit:
        unit = alert.unit if alert.unit == "%" else f" {alert.unit}"
        p.assume(f"{alert.key} threshold {alert.default}{unit}")
    return alert.default


def _duration(p: Params) -> str:
    m = _FOR.search(p.prompt)
    if m:
        return f"{int(m[1])}{m[2][0].lower()}"
    p.assume("an alert fires after its condition holds for 5 minutes")
    return "5m"


def render(p: Params) -> Rendered:
    """A rule file with one group for p."""
    p.uses("name")
    chosen = [a for a in ALERTS if re.search(a.pattern, p.prompt, re.IGNORECASE)]
    if not chosen:
        chosen = [a for a in ALERTS if a.key in DEFAULT_ALERTS]
        p.assume("no signal named: instance down, CPU, memory and disk alerts")
    for_ = _duration(p)
    rules = [a.rule(_threshold(p, a), for_) for a in chosen]
    document = {"groups": [{"name": f"{p.name}-alerts", "rules": rules}]}
    names = ", ".join(r["alert"] for r in rules)
    notes = [
        f"Alerts: {names}. Critical ones page, warnings can wait for working hours "
        "(route on the severity label in Alertmanager).",
        f"Load it from prometheus.yml (rule_files: [{p.name}-alerts.yml]) and check it with "
        f"`promtool check rules {p.name}-alerts.yml`.",
    ]
    code = yamldoc.dump(document, f"{p.name} ({p.environment}): Prometheus alerting rules")
    return Rendered(code, "yaml", f"{p.name}-alerts.yml", notes)
