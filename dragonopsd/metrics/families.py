"""Small builders that turn plain counters into prometheus_client metric families."""

from __future__ import annotations

import math

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from ..buckets import Buckets


def bucket_pairs(buckets: Buckets) -> list[tuple[str, float]]:
    """(``le`` label, cumulative count) pairs, the way HistogramMetricFamily takes them."""
    return [
        ("+Inf" if math.isinf(le) else repr(float(le)), count) for le, count in buckets.cumulative()
    ]


def histogram(name: str, help_text: str, buckets: Buckets) -> HistogramMetricFamily:
    """A label-less histogram family from bucket counts."""
    family = HistogramMetricFamily(name, help_text)
    family.add_metric([], bucket_pairs(buckets), sum_value=buckets.sum)
    return family


def gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    """A label-less gauge."""
    return GaugeMetricFamily(name, help_text, value=value)


def counter(name: str, help_text: str, value: float) -> CounterMetricFamily:
    """A label-less counter."""
    return CounterMetricFamily(name, help_text, value=value)
