"""Schedules a push monitor expects its job on: cron in an IANA time zone, and durations.

A push monitor with a ``cron`` schedule is late when no ping came by the next expected run
after its last one plus ``grace`` (Healthchecks' model). Cron takes 5 fields (minute hour
day-of-month month day-of-week), an @alias (``@daily``), or 6 with *seconds first*
(``*/10 * * * * *``) as Quartz, Spring and node-cron spell it; croniter's own 6-field form puts
seconds last, which nothing else a user knows does. Durations are seconds or text like ``90s``,
``15m``, ``1h30m``, ``2d``. The time zone check is shared with maintenance windows.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from datetime import UTC, datetime
from typing import Annotated

import msgspec
from croniter import CroniterError, croniter

MAX_DURATION = 30 * 86_400
DurationText = Annotated[str, msgspec.Meta(min_length=2, max_length=32)]
# Seconds as a number, or text such as "5m" or "1h30m" (the API answers in seconds).
Duration = Annotated[float, msgspec.Meta(ge=0, le=MAX_DURATION)] | DurationText
Cron = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
TimeZone = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]

_PART = re.compile(r"(\d{1,7})([smhd])")
_TEXT = re.compile(r"^(?:\d{1,7}[smhd])+$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
# croniter's R (random) and H (hashed) would make a schedule change on every parse.
_RANDOM = re.compile(r"(?<![A-Za-z@])[RH](?![A-Za-z])", re.IGNORECASE)


def seconds(value: float | str | None) -> float | None:
    """A Duration in seconds (None stays None); the text must already have passed check."""
    if value is None or isinstance(value, float | int):
        return value
    return float(sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(value)))


def check_duration(value: float | str, low: float = 0) -> str | None:
    """Why value is not a usable duration, or None when it is."""
    if isinstance(value, str) and not _TEXT.match(value):
        return f"expected seconds or a duration like 90s, 15m, 1h30m or 2d, got {value[:32]!r}"
    total = seconds(value) or 0.0
    if not low <= total <= MAX_DURATION:
        return f"must be between {low:g} s and 30 days"
    return None


@functools.cache
def _zone_names() -> frozenset[str]:
    # Scans the tz database once; ZoneInfo alone would also take "localtime" or raise
    # OSError for a directory name like "Europe".
    return frozenset(zoneinfo.available_timezones())


def check_timezone(name: str) -> str | None:
    """Why name is not an IANA time zone, or None when it is."""
    if name not in _zone_names():
        return f"unknown time zone '{name}' (an IANA name such as Europe/Berlin or UTC)"
    return None


def cron_iter(expr: str, start: datetime) -> croniter:
    """croniter over expr from start, reading a 6-field expression seconds first."""
    return croniter(expr, start, second_at_beginning=len(expr.split()) == 6)


def check_cron(expr: str) -> str | None:
    """Why expr is not a usable push schedule, or None when it is."""
    fields = expr.split()
    if not (len(fields) in (5, 6) or (len(fields) == 1 and expr.startswith("@"))):
        return (
            "expected 5 fields (minute hour day-of-month month day-of-week), 6 with seconds "
            "first, or an @alias such as @daily"
        )
    if _RANDOM.search(expr) or not croniter.is_valid(expr, second_at_beginning=len(fields) == 6):
        return f"invalid cron expression '{expr}'"
    try:  # valid syntax can still never fire (0 0 30 2 *)
        cron_iter(expr, datetime(2000, 1, 1, tzinfo=UTC)).get_next(float)
    except CroniterError:
        return f"cron expression '{expr}' never fires"
    return None


class CronPlan:
    """When a cron schedule next fires, as Unix seconds, in its time zone."""

    def __init__(self, expr: str, timezone: str | None) -> None:
        self.expr = expr
        self._tz = zoneinfo.ZoneInfo(timezone or "UTC")
        # Parsed here, once: a fixed-hour schedule must skip the repeated hour of a DST
        # fall-back, when the wall time it names already passed once (the job ran then).
        self._fixed_hours = cron_iter(expr, datetime(2000, 1, 1, tzinfo=UTC)).expanded[1] != ["*"]

    def after(self, t: float) -> float | None:
        """The first run strictly after t, or None when none follows (past year 9999)."""
        try:
            it = cron_iter(self.expr, datetime.fromtimestamp(t, self._tz))
            while True:
                run = float(it.get_next(float))
                if not (self._fixed_hours and datetime.fromtimestamp(run, self._tz).fold):
                    return run
        except (CroniterError, OverflowError, ValueError):
            return None


def schedule_problem(
    interval: float | None,
    cron: str | None,
    timezone: str | None,
    grace: float | str | None,
    max_runtime: float | str | None,
) -> tuple[str, str] | None:
    """(field, why) for the first thing wrong with a push monitor's schedule, else None:
    interval or cron (not both), a time zone only with cron, durations that parse."""
    for name, value, low in (("grace", grace, 0), ("maxRuntime", max_runtime, 1)):
        if value is not None and (problem := check_duration(value, low)):
            return name, problem
    if cron is None:
        return ("timezone", "only with cron (the schedule's time zone)") if timezone else None
    if interval is not None:
        return "interval", "a push monitor has an interval or a cron schedule, not both"
    if problem := check_cron(cron):
        return "cron", problem
    if timezone is not None and (problem := check_timezone(timezone)):
        return "timezone", problem
    return None


# What the OpenAPI document says of each schedule field (before the kinds that take it).
FIELD_NOTES: dict[str, str] = {
    "interval": "Seconds between checks, default 60; for a push monitor, between expected "
    "pings. Not with cron.",
    "cron": "A push monitor's schedule: 5 fields (minute hour day-of-month month "
    "day-of-week), 6 with seconds first, or an @alias such as @daily. Late is grace after "
    "each expected run. Not with interval.",
    "timezone": "The IANA time zone cron is read in (default UTC). Only with cron.",
    "grace": "How long after an expected ping the monitor is down without one: seconds, or "
    "text such as 90s, 15m, 1h30m, 2d (answered in seconds). Default 0.",
    "maxRuntime": "How long a run announced by /api/push/{token}/start may take before the "
    "monitor is down: seconds, or text such as 15m (answered in seconds).",
}
