"""What travels between the core and remote probe workers over Redis streams.

A job carries the whole monitor spec (workers hold no database) and when it stops being
worth running; a result carries the probe's outcome and the check's identity, so the core can
store it even when it no longer remembers the round it belonged to (after a restart).
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..model.monitor import MonitorSpec
from .probes import ProbeResult

JOB_FIELD = b"job"
RESULT_FIELD = b"result"


class ProbeJob(msgspec.Struct, kw_only=True, frozen=True):
    """One check of one monitor from one location."""

    monitor_id: str
    round: int  # the core's round id (the due time in ms): results find their round by it
    location: str
    issued: float  # Unix seconds
    expires: float  # not started by then: dropped (the next round has been issued)
    spec: MonitorSpec
    # The core whose round waits for the result (several cores: Keys.results_for); "" on one.
    reply_to: str = ""


class ProbeOutcome(msgspec.Struct, kw_only=True, frozen=True):
    """A worker's answer to one job."""

    monitor_id: str
    round: int
    location: str
    worker: str
    at: float  # Unix seconds, when the probe finished
    latency_ms: float | None = None
    error: str | None = None
    context: dict[str, Any] = {}
    cert_expires_at: float | None = None

    def probe_result(self) -> ProbeResult:
        """The outcome as the engine's probe result."""
        return ProbeResult(
            context=dict(self.context),
            latency_ms=self.latency_ms,
            error=self.error,
            cert_expires_at=self.cert_expires_at,
        )


def needs_body(spec: MonitorSpec) -> bool:
    """Whether the core will read [BODY]: only conditions do. "BODY" anywhere in one (case
    aside) counts, so a false alarm costs bandwidth, never a wrong verdict."""
    return any("BODY" in condition.upper() for condition in spec.conditions)


def outcome_of(job: ProbeJob, worker: str, at: float, result: ProbeResult) -> ProbeOutcome:
    """Wrap a probe result for the results stream. The body travels only when a condition
    reads it (most monitors check the status and the time, and every result of every location
    crosses Redis), and then whole, as the probe read it (at most 1 MiB, BODY_TRUNCATED
    beyond): a shorter cut would turn a JSON condition that passes locally into a failure."""
    context = {k: v for k, v in result.context.items() if k != "BODY"}
    body = result.context.get("BODY")
    if body is not None and needs_body(job.spec):
        # Text, as the conditions read it: bytes would be base64 in the JSON envelope.
        if isinstance(body, bytes | bytearray | memoryview):
            body = bytes(body).decode("utf-8", "replace")
        context["BODY"] = str(body)
    return ProbeOutcome(
        monitor_id=job.monitor_id,
        round=job.round,
        location=job.location,
        worker=worker,
        at=at,
        latency_ms=result.latency_ms,
        error=result.error,
        context=context,
        cert_expires_at=result.cert_expires_at,
    )
