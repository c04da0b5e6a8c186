"""A maintenance window's schedule: when a one-off or recurring window occurs (croniter in its
time zone, with the DST rules maintenance.py's docstring states), its views on the wire, and
the preview of a schedule not saved yet.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from croniter import CroniterError, croniter

from ..model.inventory import Wire
from ..store.maintenance import Window, WindowScope, iso

INF = math.inf
LAST = datetime.max.replace(tzinfo=UTC).timestamp()  # the last instant datetime can show
Interval = tuple[float, float]


class Occurrence(Wire, kw_only=True):
    """One occurrence of a window: ISO 8601 UTC, start inclusive, end exclusive."""

    start: str
    end: str


class WindowView(Window, kw_only=True):
    """A window as the API shows it: ``next`` is the occurrence in force now, else the next
    one (null when disabled or when no occurrence is left)."""

    active_now: bool
    next: Occurrence | None


class OccurrenceList(Wire, kw_only=True):
    """GET /api/maintenance/{id}/occurrences."""

    items: list[Occurrence]


def _ts(text: str | None) -> float | None:
    return None if text is None else datetime.fromisoformat(text).timestamp()


def occurrence(interval: Interval) -> Occurrence:
    return Occurrence(
        start=iso(datetime.fromtimestamp(interval[0], UTC)),
        end=iso(datetime.fromtimestamp(interval[1], UTC)),
    )


class Schedule:
    """When one window is in force, as Unix-time intervals ``[start, end)``."""

    def __init__(self, window: Window) -> None:
        self._once: Interval | None = None
        self._cron = window.cron or ""
        self._duration = float(window.duration or 0)
        self._low = _ts(window.active_from)
        self._high = _ts(window.active_until)
        self._tz = ZoneInfo(window.timezone or "UTC")
        if window.kind == "one-off":
            start, end = _ts(window.starts_at), _ts(window.ends_at)
            assert start is not None and end is not None  # the table's CHECK guarantees both
            self._once = (start, end)
            self._fixed_hours = False
        else:
            # Parsed here, once, so a bad stored expression fails at load rather than later.
            self._fixed_hours = croniter(self._cron).expanded[1] != ["*"]

    def current_or_next(self, t: float) -> Interval | None:
        """The first occurrence that ends after t: the one covering t, if any."""
        if self._once is not None:
            return self._once if self._once[1] > t else None
        # Every occurrence lasts the same, so the first to end after t is the first to start
        # after t - duration: one croniter step instead of a walk backwards.
        start = self._start_after(t - self._duration)
        return None if start is None else (start, start + self._duration)

    def upcoming(self, t: float, count: int) -> list[Interval]:
        """Up to count occurrences, the first being the one that covers or follows t."""
        first = self.current_or_next(t)
        found = [] if first is None else [first]
        while found and len(found) < count and self._once is None:
            start = self._start_after(found[-1][0])
            if start is None:
                break
            found.append((start, start + self._duration))
        return found

    def _start_after(self, t: float) -> float | None:
        """The first start strictly after t that lies within [activeFrom, activeUntil), or
        None when there is none (the schedule is over, or it would run past year 9999)."""
        if self._low is not None and t < self._low:
            t = self._low - 1.0  # croniter is strictly-after; starts are whole minutes
        try:
            it = croniter(self._cron, datetime.fromtimestamp(t, self._tz))
            while True:
                start = it.get_next(float)
                if self._low is not None and start < self._low:
                    continue
                if self._fixed_hours and datetime.fromtimestamp(start, self._tz).fold:
                    continue  # the repeated hour of a fall-back: this wall time already ran
                break
        # CroniterError: no date matches within its horizon; OverflowError and ValueError: the
        # next date lies outside what datetime can hold. Either way no occurrence follows.
        except (CroniterError, OverflowError, ValueError):
            return None
        if self._high is not None and start >= self._high:
            return None
        if start + self._duration > LAST:
            return None  # its end could not be written as a date
        return start


def preview(cron: str, timezone: str, duration: int, after: float, count: int) -> list[Occurrence]:
    """The next count occurrences of a schedule not saved yet, by the very Schedule the
    service runs, so a form's preview cannot disagree with what the window will do. The
    caller has checked cron and timezone (check_cron, check_timezone)."""
    window = Window(
        id="",
        name="preview",
        enabled=True,
        kind="recurring",
        cron=cron,
        timezone=timezone,
        duration=duration,
        scope=WindowScope(all=True),
        created_at="",
        updated_at="",
    )
    return [occurrence(i) for i in Schedule(window).upcoming(after, count)]
