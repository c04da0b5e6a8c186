"""Optional steps of a verdict: a fault in one is logged, and the result still lands.

Maintenance lookup, topology, root causes, notification routing and change hooks decorate a
verdict; none of them may keep its heartbeat out of history or its status off the board. A step
that fails is logged with its traceback the first time, then at most once a minute with a
count, so a fault that hits every check does not flood the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
REPEAT_SECONDS = 60.0


class OptionalSteps:
    """Runs steps with a fallback value and reports their faults, rate-limited per step."""

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self._last_report: dict[str, float] = {}
        self._unreported: dict[str, int] = {}

    def run(self, step: str, work: Callable[[], T], fallback: T) -> T:
        """work(), or fallback when it raises."""
        try:
            return work()
        except Exception:
            self._report(step)
            return fallback

    async def run_async(self, step: str, work: Callable[[], Awaitable[None]]) -> None:
        """await work(); a fault is reported, not raised."""
        try:
            await work()
        except Exception:
            self._report(step)

    def _report(self, step: str) -> None:
        now = time.monotonic()
        last = self._last_report.get(step)
        if last is None:
            self._last_report[step] = now
            self._log.exception("%s failed; the check is recorded without it", step)
            return
        count = self._unreported[step] = self._unreported.get(step, 0) + 1
        if now - last >= REPEAT_SECONDS:
            self._last_report[step] = now
            self._unreported[step] = 0
            self._log.warning(
                "%s still failing: %d more times in the last %.0f s", step, count, now - last
            )
