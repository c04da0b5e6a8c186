"""The scheduler: one loop over a heap of due times, drift-corrected, bounded concurrency.

Each monitor's next run is computed from its previous *due* time, not from when the last probe
finished, so slow probes never push later runs (or other monitors) back. First runs are spread
over the interval so a restart with 10,000 monitors does not fire them all at once.

Monitors are scheduled while the daemon loads, before the loop runs: until then due times
count from zero and ``run`` moves them to the loop's clock when it starts, so the daemon gets
through its start (READY) without probing, and a first run spread over the interval still
comes within the interval of when probing began.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable

from ..buckets import Buckets

log = logging.getLogger("dragonopsd.scheduler")

Check = Callable[[int, float], Awaitable[None]]
# Seconds: the scheduler wakes at most this often, and starts what fell due meanwhile in one
# batch. Each wake-up and each lone start costs the loop a turn and the kernel a poll; with
# starts a few milliseconds apart, 5 ms left most checks alone in their turn. Driving the bare
# probe loop of tests/bench/checkcost.py with this scheduler: 0.535 ms of CPU a check at 5 ms,
# 0.380 at 20 ms (the loop's own 10 ms batches: 0.469). A start is up to TICK (+1 ms) late, well
# inside the 250 ms p99 drift the daemon keeps.
TICK = 0.02
CLOCK_RESOLUTION = 0.001  # seconds; uvloop's loop.time() and timers count milliseconds


class Scheduler:
    """Runs ``check(key, due)`` for every registered key at its interval."""

    def __init__(self, check: Check, concurrency: int, drift_samples: int = 10_000) -> None:
        self._check = check
        self._concurrency = concurrency
        self._waiting: deque[tuple[int, float]] = deque()  # (key, due) waiting for a slot
        self._heap: list[tuple[float, int, int]] = []
        self._interval: dict[int, float] = {}
        self._gen: dict[int, int] = {}
        self._running: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self.drift: deque[float] = deque(maxlen=drift_samples)  # seconds late, per start
        self.drift_buckets = Buckets()  # every start since boot, for the metrics histogram
        self.started = 0
        self.skipped = 0  # runs skipped because the previous one was still going
        self.in_flight = 0
        self.passes = 0  # wake-ups of the loop: about one per start when nothing spins
        self.drain_timeout = 5.0
        self._live = False  # run() has started: due times are on the loop's clock

    def _base(self) -> float:
        """What due times count from: the loop's clock once running, else zero."""
        return asyncio.get_running_loop().time() if self._live else 0.0

    def schedule(
        self, key: int, interval: float, first_in: float | None = None, delay: float = 0.0
    ) -> None:
        """Add or reschedule key; its first run comes ``delay`` seconds from now plus up to
        ``first_in`` (default: spread uniformly over one interval)."""
        spread = interval if first_in is None else first_in
        self._interval[key] = interval
        gen = self._gen.get(key, 0) + 1
        self._gen[key] = gen
        heapq.heappush(self._heap, (self._base() + delay + random.uniform(0, spread), gen, key))  # noqa: S311  -- jitter, not crypto
        self._wake.set()

    def retry(self, key: int, delay: float) -> None:
        """Run key again after delay, then resume its normal interval from there."""
        if key not in self._interval:
            return
        gen = self._gen[key] + 1
        self._gen[key] = gen
        heapq.heappush(self._heap, (self._base() + delay, gen, key))
        self._wake.set()

    def remove(self, key: int) -> None:
        """Stop scheduling key (a run in progress finishes)."""
        self._interval.pop(key, None)
        self._gen.pop(key, None)

    def __len__(self) -> int:
        return len(self._interval)

    async def run(self) -> None:
        """The loop; cancel it to stop (running checks are cancelled too)."""
        loop = asyncio.get_running_loop()
        if not self._live:
            # Adding one constant to every entry keeps the heap a heap.
            start = loop.time()
            self._heap = [(due + start, gen, key) for due, gen, key in self._heap]
            self._live = True
        try:
            while True:
                self.passes += 1
                # uvloop's clock and timers count whole milliseconds: a timer set for a due
                # time fires up to 1 ms before loop.time() reaches it, and waiting for the
                # clock to catch up spun the loop ~50 times per due time (most of the
                # scheduler's CPU). Anything due within that millisecond starts now.
                now = loop.time() + CLOCK_RESOLUTION
                while self._heap and self._heap[0][0] <= now:
                    due, gen, key = heapq.heappop(self._heap)
                    if self._gen.get(key) != gen:
                        continue  # rescheduled or removed since this entry was pushed
                    interval = self._interval[key]
                    # After a stall (suspend, overload) skip missed runs instead of bursting.
                    nxt = due + interval * max(1, int((now - due) // interval) + 1)
                    heapq.heappush(self._heap, (nxt, gen, key))
                    if key in self._running:
                        self.skipped += 1
                        continue
                    self._start(key, due)
                self._wake.clear()
                if self._heap:
                    # Not sooner than TICK from now: with thousands of monitors due times are
                    # a millisecond apart, and one wake-up per TICK starts them in batches. A
                    # timer that sets the event, not wait_for: wait_for wraps the wait in a task
                    # and cancels it at each timeout, which is nearly every pass here.
                    timer = loop.call_at(max(self._heap[0][0], now + TICK), self._wake.set)
                    try:
                        await self._wake.wait()
                    finally:
                        timer.cancel()
                else:
                    await self._wake.wait()
        finally:
            self._waiting.clear()  # never started: nothing to drain
            # Draining: no new starts, but checks already running get to finish (and record
            # their heartbeat) for up to drain_timeout; only stragglers are cancelled.
            if self._tasks:
                _, pending = await asyncio.wait(set(self._tasks), timeout=self.drain_timeout)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)

    def _start(self, key: int, due: float) -> None:
        """Start key's check, or queue it while every slot is taken: a task is only made for
        a check that runs, so an overloaded daemon holds a queue of ints, not of tasks."""
        self._running.add(key)
        if self.in_flight >= self._concurrency:
            self._waiting.append((key, due))
            return
        self._launch(key, due)

    def _launch(self, key: int, due: float) -> None:
        late = max(0.0, asyncio.get_running_loop().time() - due)
        self.drift.append(late)
        self.drift_buckets.observe(late)
        self.started += 1
        self.in_flight += 1
        task = asyncio.create_task(self._guarded(key, due))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _release(self, key: int) -> None:
        """key's check ended: its slot goes to the longest-waiting check still scheduled."""
        self._running.discard(key)
        self.in_flight -= 1
        while self._waiting and self.in_flight < self._concurrency:
            key, due = self._waiting.popleft()
            if key in self._interval:
                self._launch(key, due)
            else:
                self._running.discard(key)  # removed while it waited

    async def _guarded(self, key: int, due: float) -> None:
        try:
            await self._check(key, due)
        except asyncio.CancelledError:
            raise
        except Exception:  # one monitor's bug must not stop the others
            log.exception("check of monitor %s failed", key)
        finally:
            self._release(key)
