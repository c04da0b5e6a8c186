"""Delivery bookkeeping shared by the senders and the dispatcher: one attempt's outcome, the
retry policy, per-channel counters and the answer of a test send."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..model.inventory import Wire

# Statuses worth another try: the receiver is busy, throttling, or briefly broken.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


# What a caller is told when no receiver answered: the same words whether the address was
# refused by the guard, the port closed, the name unknown or the connect timed out, so the
# test endpoint cannot map which internal hosts and ports exist. Logs get the reason.
UNDELIVERED = "delivery failed"


@dataclass(frozen=True)
class Attempt:
    """What one try at a receiver came to. ``error`` is what callers see (a status or code a
    receiver answered, else ``UNDELIVERED``); ``detail`` is the reason for the operator's log.
    Neither ever holds a URL, a credential or the receiver's body."""

    ok: bool
    retry: bool = False
    status: int | None = None
    error: str | None = None
    retry_after: float | None = None
    detail: str | None = None

    @property
    def reason(self) -> str | None:
        """What the log says: the detail when there is one, else the error."""
        return self.detail if self.detail is not None else self.error

    @classmethod
    def failed(cls, error: str, *, retry: bool, status: int | None = None) -> Attempt:
        """A failed attempt: the receiver answered with error."""
        return cls(ok=False, retry=retry, status=status, error=error)

    @classmethod
    def unreached(cls, detail: str, *, retry: bool) -> Attempt:
        """No receiver answered (refused, closed, unknown, timed out): detail is logged only."""
        return cls(ok=False, retry=retry, error=UNDELIVERED, detail=detail)


def http_attempt(status: int, retry_after: str | None) -> Attempt:
    """Classify an HTTP answer: 2xx delivered; 408, 425, 429, 5xx retried; the rest final."""
    if 200 <= status < 300:
        return Attempt(ok=True, status=status)
    if 300 <= status < 400:
        return Attempt.failed(
            f"HTTP {status} (redirects are not followed)", retry=False, status=status
        )
    retry = status in RETRY_STATUSES or status >= 500
    wait = parse_retry_after(retry_after) if retry and retry_after else None
    return Attempt(ok=False, retry=retry, status=status, error=f"HTTP {status}", retry_after=wait)


def parse_retry_after(value: str, now: Callable[[], float] = time.time) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if unreadable."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())


@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard delivery tries. Defaults suit production; tests shrink the times."""

    attempt_timeout: float = 10.0
    max_attempts: int = 5
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    # A receiver's Retry-After is honoured up to this, so one channel cannot park its queue
    # for hours on a hostile or misconfigured header.
    retry_after_max: float = 300.0
    dedupe_window: float = 300.0
    queue_size: int = 1000
    # On shutdown, how long queued notifications may still go out (SIGTERM must stay quick).
    drain_timeout: float = 3.0

    def backoff(
        self, failures: int, retry_after: float | None, rand: Callable[[], float] = random.random
    ) -> float:
        """Delay before the next try: exponential, half-jittered so receivers that failed
        together do not get hit together, never shorter than a (capped) Retry-After."""
        delay = min(self.backoff_base * 2.0 ** (failures - 1), self.backoff_max)
        delay *= 0.5 + rand() / 2
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.retry_after_max))
        return delay


@dataclass
class ChannelStats:
    """Counters per channel, for metrics and for people wondering why nothing arrived."""

    name: str
    kind: str
    sent: int = 0
    failed: int = 0
    retried: int = 0
    dropped: int = 0
    last_error: str | None = None


class DeliveryResult(Wire, kw_only=True):
    """POST /api/notifications/{id}/test: whether one test event reached the receiver."""

    channel_id: str
    ok: bool
    attempts: int
    status: int | None = None
    error: str | None = None
    elapsed_ms: float
