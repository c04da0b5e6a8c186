"""Wall-clock timestamps as the API shows them, and event times that survive clock steps.

The wall clock can step (NTP, a VM resumed, an operator's ``date -s``). Times derived from it
are kept sane two ways: a series of heartbeats never stays ahead of the present for more than
``MAX_AHEAD`` seconds after the clock goes back, and an end never precedes its start.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime

# How far a series' times may run ahead of the clock to stay distinct (1 ms per event); past
# this, the clock went back and the series starts again from the present.
MAX_AHEAD = 5.0


def now_iso() -> str:
    """Current UTC time, e.g. ``2026-11-26T08:10:00.123Z``; text order equals time order."""
    return _text(datetime.now(UTC))


def iso_of(ts: float) -> str:
    """A Unix time in now_iso's form, rounded to the millisecond as history stores it."""
    ms = round(ts * 1000)
    return f"{_second(ms // 1000)}.{ms % 1000:03d}Z"


@functools.lru_cache(maxsize=64)
def _second(seconds: int) -> str:
    # Every check stamps its report: formatting the date once per second, not per check,
    # takes a few microseconds off each (thousands a second with many monitors).
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def next_stamp(at: float, last: float | None, now: float) -> float:
    """The time to store an event of a series at: at, or 1 ms after the series' last time so
    two events never share a millisecond; but never more than MAX_AHEAD seconds past now.

    After the clock steps back, ``last`` lies in the old future: the event is clamped to now
    instead of being pinned just after it (which would keep every later event in the future).
    """
    stamp = at if last is None else max(at, last + 0.001)
    return stamp if stamp <= now + MAX_AHEAD else now


def _text(dt: datetime) -> str:
    # isoformat, not strftime: the same text (milliseconds truncated) in under half the
    # time, which counts once per monitor when 25,000 are loaded.
    return dt.isoformat(timespec="milliseconds")[:23] + "Z"


def not_before(start: str, end: str) -> str:
    """end, or start when the clock went back in between (both in now_iso's form)."""
    return max(start, end)
