"""Multi-location checks: one round per due time, closed by a quorum decision.

A monitor with several locations is checked from each of them once per interval: the core
probes ``local`` itself and hands the other locations to their workers. Each location's
result is stored as it arrives; the round closes when every location has answered or at its
deadline, and only then does the status machine hear one verdict: DOWN when at least
``quorum`` locations (default: a majority) failed, UP when fewer failed and some succeeded,
and nothing at all when too few answered to tell (the status stays as it was).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from .probes import ProbeResult

NO_WORKER = "no-worker"  # no live worker in that location when the round was issued
NO_RESULT = "no-result"  # a worker took the job but did not answer before the deadline


@dataclass
class LocationResult:
    """What one location said in a round."""

    ok: bool
    result: ProbeResult
    message: str | None


@dataclass
class Round:
    """One check of one monitor from all its locations."""

    seq: int
    number: int
    locations: tuple[str, ...]
    quorum: int
    results: dict[str, LocationResult] = field(default_factory=dict)
    absent: dict[str, str] = field(default_factory=dict)  # location -> NO_WORKER / NO_RESULT
    closed: asyncio.Event = field(default_factory=asyncio.Event)  # set once the verdict is in
    timer: asyncio.TimerHandle | None = None  # the deadline, cancelled when the round ends

    @property
    def complete(self) -> bool:
        """Every location answered or is known not to."""
        return len(self.results) + len(self.absent) >= len(self.locations)

    def statuses(self) -> dict[str, str]:
        """location -> up | down | no-worker | no-result, for reports and the monitor state."""
        out = {loc: ("up" if r.ok else "down") for loc, r in self.results.items()}
        for loc in self.locations:
            if loc not in out:
                out[loc] = self.absent.get(loc, NO_RESULT)
        return out


@dataclass(frozen=True)
class Verdict:
    """A closed round's outcome. ``ok`` None: inconclusive, the status machine is not told."""

    ok: bool | None
    failed: list[str]
    message: str | None
    result: ProbeResult


def quorum_of(locations: int, quorum: int | None) -> int:
    """The configured quorum, or a majority of the locations."""
    return quorum if quorum is not None else locations // 2 + 1


def decide(rnd: Round) -> Verdict:
    """The quorum rule over a round's results (missing locations count as neither)."""
    failed = sorted(loc for loc, r in rnd.results.items() if not r.ok)
    passed = [r for r in rnd.results.values() if r.ok]
    n = len(rnd.locations)
    if len(failed) >= rnd.quorum:
        first = rnd.results[failed[0]]
        reason = first.message or first.result.error or "failed"
        message = (
            f"down from {', '.join(failed)} ({len(failed)} of {n} locations, "
            f"quorum {rnd.quorum}): {reason}"
        )
        return Verdict(False, failed, message, first.result)
    if passed:
        latencies = sorted(r.result.latency_ms for r in passed if r.result.latency_ms is not None)
        best = passed[0].result
        median = latencies[len(latencies) // 2] if latencies else best.latency_ms
        result = ProbeResult(
            context=best.context,
            latency_ms=median,
            error=None,
            cert_expires_at=best.cert_expires_at,
        )
        note = (
            f"failing from {', '.join(failed)} only ({len(failed)} of {n}, quorum {rnd.quorum})"
            if failed
            else None
        )
        return Verdict(True, failed, note, result)
    missing = sorted(loc for loc in rnd.locations if loc not in rnd.results)
    message = (
        f"inconclusive: {len(failed)} of {n} locations failed (quorum {rnd.quorum}); "
        f"no answer from {', '.join(missing)}"
    )
    return Verdict(None, failed, message, ProbeResult(context={}, error=message))
