"""The status machine of one monitor: retries, failure threshold, maintenance, flap damping.

Pure logic (no I/O, no clock) so every transition rule is unit-testable on its own.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Transition:
    """What one observation did to a monitor."""

    previous: str
    status: str
    retry: bool = False  # re-check after retryInterval instead of the normal interval
    alert: bool = False  # worth a notification (DOWN, or UP after DOWN), unless flapping
    flapping: bool = False

    @property
    def changed(self) -> bool:
        """True when the visible status changed."""
        return self.previous != self.status


@dataclass(slots=True)  # one per monitor: no per-instance dict
class Machine:
    """UP / DOWN / PENDING / MAINTENANCE for one monitor (PAUSED is decided by the engine).

    ``retries`` quick re-checks run before a failure counts; ``failure_threshold`` counted
    failures in a row turn the monitor DOWN. Flap damping keeps the last ``flap_window``
    observations' status changes; ``flap_threshold`` changes among them mark it flapping, which
    silences alerts (the status itself still follows the checks).
    """

    retries: int = 0
    failure_threshold: int = 1
    flap_window: int = 10
    flap_threshold: int = 6
    status: str = "pending"
    attempt_failures: int = 0
    counted_failures: int = 0
    # The last flap_window observations, newest in bit 0: 1 where the status changed. An int,
    # not a deque: a deque costs ~600 bytes, times every monitor.
    changes: int = 0

    @property
    def flapping(self) -> bool:
        """Enough status changes among the last flap_window observations to silence alerts."""
        return bool(self.flap_window) and self.changes.bit_count() >= self.flap_threshold

    def _move(self, status: str, *, retry: bool = False, alert: bool = False) -> Transition:
        previous, self.status = self.status, status
        if self.flap_window:
            window = (1 << self.flap_window) - 1
            self.changes = ((self.changes << 1) | (previous != status)) & window
        flapping = self.flapping
        return Transition(previous, status, retry, alert and not flapping, flapping)

    def observe(self, ok: bool, *, maintenance: bool = False) -> Transition:
        """Feed one check result and get the transition it causes."""
        if maintenance:
            self.attempt_failures = self.counted_failures = 0
            return self._move("maintenance")
        if ok:
            self.attempt_failures = self.counted_failures = 0
            return self._move("up", alert=self.status == "down")
        if self.attempt_failures < self.retries:
            self.attempt_failures += 1
            return self._move("down" if self.status == "down" else "pending", retry=True)
        self.attempt_failures = 0
        self.counted_failures += 1
        if self.counted_failures >= self.failure_threshold:
            return self._move("down", alert=self.status != "down")
        return self._move("down" if self.status == "down" else "pending")
