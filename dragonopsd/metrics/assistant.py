"""Series about the infrastructure assistant: answers by source, model fallbacks, tokens.

Read from the service's plain counters (assistant/usage.py) at scrape time. Token counts let an
operator see what the model costs before the bill does; fallbacks show a model that is slow,
failing or refusing while users still get the offline answer.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, Metric

from .families import counter
from .views import AssistantFigures

SOURCES = ("template", "llm")  # always exported, so rate() works from the first answer
REASONS = ("timeout", "error", "invalid", "refused", "no-key")


class AssistantCollector:
    """dragonops_assistant_* from the assistant's usage counters."""

    def __init__(self, usage: AssistantFigures) -> None:
        self._usage = usage

    def collect(self) -> Iterator[Metric]:
        """Every family, from the counters as they are now (on the loop)."""
        usage = self._usage
        answers = CounterMetricFamily(
            "dragonops_assistant_answers_total",
            "Assistant answers given, by source (offline templates or the model).",
            labels=("source",),
        )
        for source in sorted({*SOURCES, *usage.requests}):
            answers.add_metric([source], usage.requests[source])
        yield answers
        fallbacks = CounterMetricFamily(
            "dragonops_assistant_fallbacks_total",
            "Model answers not used (the offline answer was given instead), by reason.",
            labels=("reason",),
        )
        for reason in sorted({*REASONS, *usage.fallbacks}):
            fallbacks.add_metric([reason], usage.fallbacks[reason])
        yield fallbacks
        tokens = CounterMetricFamily(
            "dragonops_assistant_tokens_total",
            "Tokens the model server reported, by kind, including answers then rejected.",
            labels=("kind",),
        )
        tokens.add_metric(["prompt"], usage.prompt_tokens)
        tokens.add_metric(["completion"], usage.completion_tokens)
        yield tokens
        yield counter(
            "dragonops_assistant_rate_limited_total",
            "Assistant requests refused with 429 by the per-caller limit.",
            usage.rate_limited,
        )
        yield counter(
            "dragonops_assistant_unmatched_total",
            "Prompts no template matched (answered 422 with the targets listed).",
            usage.unmatched,
        )
