"""One monitor's live state, and the registry that finds it by seq, id or push token.

The engine adds and removes runtimes; the verdict path, the rounds and the read-only view
look them up. Nothing here does I/O.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass, field

from ..model.monitor import Monitor
from ..store.monitors import Incident, MonitorRow
from .conditions import Condition
from .report import CheckReport
from .status import Machine


@dataclass
class PushState:
    """A push monitor's clock (monitoring/push.py): where its schedule counts from, the run in
    progress, and the timer armed at its next deadline. Wall-clock Unix seconds throughout."""

    ref: float  # the next expected ping is the schedule's first run after this (last ping)
    started: float | None = None  # the /start of the run in progress
    overran: bool = False  # that run was already reported past maxRuntime
    again: tuple[float, str] | None = None  # a down to observe again (retries): when, why
    timer: asyncio.TimerHandle | None = None


@dataclass(slots=True)  # one per monitor: no per-instance dict
class Runtime:
    """One monitor's live state."""

    row: MonitorRow
    conditions: list[Condition]
    machine: Machine
    since: str
    last: CheckReport | None = None
    incident: Incident | None = None
    push: PushState | None = None  # push monitors only
    cert_warned: float | None = None
    locations: dict[str, str] = field(default_factory=dict)  # last round, several locations
    cert_expires_at: float | None = None  # Unix time, from the last check that saw one
    successes: int = 0  # checks since this runtime was made (counters for the metrics)
    failures: int = 0
    down_notified: bool = False  # a DOWN went out that no UP has answered yet
    last_at: float | None = None  # newest heartbeat time: history is keyed by millisecond

    @property
    def monitor(self) -> Monitor:
        """The monitor's public shape."""
        return self.row.monitor

    @property
    def visible_status(self) -> str:
        """The status a reader sees: the machine's, or paused while the monitor is disabled."""
        return self.machine.status if self.row.monitor.enabled else "paused"


class Runtimes:
    """Every loaded monitor's runtime, by seq, with its id and push token as second keys."""

    def __init__(self) -> None:
        self._by_seq: dict[int, Runtime] = {}
        self._by_id: dict[str, int] = {}
        self._by_token: dict[str, int] = {}

    def add(self, rt: Runtime) -> None:
        """Register (or replace) a runtime."""
        self._by_seq[rt.row.seq] = rt
        self._by_id[rt.monitor.id] = rt.row.seq
        if rt.monitor.push_token:
            self._by_token[rt.monitor.push_token] = rt.row.seq

    def pop(self, seq: int) -> Runtime | None:
        """Forget a runtime; the one forgotten, if any."""
        rt = self._by_seq.pop(seq, None)
        if rt is not None:
            self._by_id.pop(rt.monitor.id, None)
            if rt.monitor.push_token:
                self._by_token.pop(rt.monitor.push_token, None)
        return rt

    def get(self, seq: int) -> Runtime | None:
        """The runtime of a seq."""
        return self._by_seq.get(seq)

    def seq_of(self, monitor_id: str) -> int | None:
        """The integer key of a monitor id."""
        return self._by_id.get(monitor_id)

    def of_id(self, monitor_id: str) -> Runtime | None:
        """The runtime of a monitor id."""
        seq = self._by_id.get(monitor_id)
        return None if seq is None else self._by_seq[seq]

    def of_token(self, token: str) -> Runtime | None:
        """The runtime of a push monitor's token."""
        seq = self._by_token.get(token)
        return None if seq is None else self._by_seq[seq]

    def all(self) -> Collection[Runtime]:
        """Every runtime (a live view, no copy)."""
        return self._by_seq.values()

    def ids(self) -> Collection[str]:
        """Every monitor id (a live view, no copy)."""
        return self._by_id.keys()

    def __len__(self) -> int:
        return len(self._by_seq)
