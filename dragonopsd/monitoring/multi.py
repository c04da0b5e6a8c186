"""Mixed into Engine: checks of monitors with several locations (rounds.py has the rule).

Each location's result is stored as a heartbeat the moment it arrives (so history holds every
location's answer, and a remote result is committed before its stream entry is acknowledged);
the round's verdict then goes through the engine's one path, ``_apply``, without a heartbeat
of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

import msgspec

from ..clock import next_stamp, now_iso
from ..monitor import STATUS_CODES
from ..store.history import Heartbeat
from .job import ProbeJob, ProbeOutcome
from .rounds import NO_RESULT, NO_WORKER, LocationResult, Round, decide, quorum_of

if TYPE_CHECKING:
    from ..bus import Bus
    from ..maintenance import MaintenanceService
    from ..monitor import Monitor, Scope
    from ..store.protocols import HistorySink
    from .conditions import ConditionResult
    from .engine import Runtime
    from .optional import OptionalSteps
    from .probes import ProbeResult
    from .remote import RemoteProbes
    from .report import CheckReport
    from .topology import Topology

LOCAL = "local"
DEADLINE_SLACK = 3.0  # seconds past the probe timeout before a silent location is given up


class MultiLocation:
    """Rounds: issue jobs, collect each location's result, close with a quorum verdict."""

    _runtimes: dict[int, Runtime]
    _by_id: dict[str, int]
    _history: HistorySink
    _maintenance: MaintenanceService
    _rounds: dict[int, Round]
    _round_tasks: set[asyncio.Task[None]]
    remote: RemoteProbes
    topology: Topology
    _bus: Bus
    _last_at: dict[int, float]
    _steps: OptionalSteps

    def _scope(self, monitor: Monitor) -> Scope:
        raise NotImplementedError

    async def _probe(self, rt: Runtime) -> ProbeResult:
        raise NotImplementedError

    def _evaluate(
        self, rt: Runtime, result: ProbeResult, forced_ok: bool | None, note: str | None
    ) -> tuple[bool, list[ConditionResult], str | None]:
        raise NotImplementedError

    async def _apply(
        self,
        rt: Runtime,
        result: ProbeResult,
        ok: bool,
        outcomes: list[ConditionResult],
        message: str | None,
        *,
        failed: list[str] | None = None,
        heartbeat: bool = True,
        retry: bool = True,
    ) -> None:
        raise NotImplementedError

    async def _check_round(self, rt: Runtime) -> Round:
        """Issue one round: jobs to remote locations, the local probe here."""
        seq, spec = rt.row.seq, rt.row.spec
        previous = self._rounds.pop(seq, None)
        if previous is not None:  # still open at the next due time: close it as it stands
            await self._close(previous, retry=False)  # a retry would cut the new round short
        issued = time.time()
        rnd = Round(
            seq,
            int(issued * 1000),
            tuple(spec.locations),
            quorum_of(len(spec.locations), spec.quorum),
        )
        self._rounds[seq] = rnd
        for location in spec.locations:
            if location == LOCAL:
                continue
            job = ProbeJob(
                monitor_id=rt.monitor.id,
                round=rnd.number,
                location=location,
                issued=self.remote.shared(issued),
                expires=self.remote.shared(issued + spec.interval),
                spec=spec,
            )
            if not await self.remote.dispatch(job):
                rnd.absent[location] = NO_WORKER
        # Before the next due time, so each round normally ends by its own deadline.
        delay = min(0.9 * spec.interval, spec.timeout + DEADLINE_SLACK)
        rnd.timer = asyncio.get_running_loop().call_later(delay, self._deadline, seq, rnd.number)
        if LOCAL in spec.locations:
            result = await self._probe(rt)
            await self._location_result(rt, LOCAL, result, time.time(), rnd.number)
        elif rnd.complete:
            await self._close(rnd)
        return rnd

    async def _check_round_now(self, rt: Runtime) -> CheckReport | None:
        """Run now: issue a round and wait (up to its deadline) for its verdict."""
        rnd = await self._check_round(rt)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(rt.row.spec.interval, rt.row.spec.timeout) + 4):
                await rnd.closed.wait()
        return rt.last

    async def remote_result(self, outcome: ProbeOutcome) -> None:
        """A worker's result from the results stream: store it, then count it in its round."""
        seq = self._by_id.get(outcome.monitor_id)
        if seq is None:
            return  # the monitor was deleted meanwhile: its history went with it
        rt = self._runtimes[seq]
        at = self.remote.local(outcome.at)  # the worker stamped it in Redis's clock
        await self._location_result(rt, outcome.location, outcome.probe_result(), at, outcome.round)

    async def _location_result(
        self, rt: Runtime, location: str, result: ProbeResult, at: float, number: int
    ) -> None:
        ok, _, message = self._evaluate(rt, result, None, None)
        # History is keyed by (monitor, millisecond): two locations answering in the same
        # millisecond must not overwrite each other.
        # A late answer lands just after the newest; none lands far ahead of the clock.
        last = self._last_at.get(rt.row.seq)
        at = self._last_at[rt.row.seq] = next_stamp(at, last, time.time())
        scope = self._scope(rt.monitor)
        window = self._steps.run(
            "maintenance lookup", lambda: self._maintenance.active_for(scope, at), None
        )
        paused = window is not None
        status = "maintenance" if paused else "up" if ok else "down"
        self._history.submit(
            Heartbeat(
                rt.row.seq,
                at,
                STATUS_CODES[status],
                result.latency_ms,
                None if ok else f"[{location}] {message or 'failed'}",
            )
        )
        rnd = self._rounds.get(rt.row.seq)
        if rnd is None or rnd.number != number or location not in rnd.locations:
            return  # a late answer, or one from before a restart: stored, not counted
        rnd.results[location] = LocationResult(ok, result, message)
        rnd.absent.pop(location, None)
        if rnd.complete:
            await self._close(rnd)

    def _deadline(self, seq: int, number: int) -> None:
        rnd = self._rounds.get(seq)
        if rnd is None or rnd.number != number:
            return
        for location in rnd.locations:
            if location not in rnd.results:
                rnd.absent.setdefault(location, NO_RESULT)
        task = asyncio.create_task(self._close(rnd), name=f"round-{seq}")
        self._round_tasks.add(task)
        task.add_done_callback(self._round_tasks.discard)

    def _drop_round(self, seq: int) -> None:
        """The monitor was edited, disabled or deleted: its open round decides nothing."""
        rnd = self._rounds.pop(seq, None)
        if rnd is not None:
            rnd.closed.set()
            if rnd.timer is not None:
                rnd.timer.cancel()

    def _drop_rounds(self) -> None:
        """Stopping: no round closes after this (its results are stored when re-read)."""
        for seq in list(self._rounds):
            self._drop_round(seq)
        for task in self._round_tasks:
            task.cancel()

    async def _close(self, rnd: Round, *, retry: bool = True) -> None:
        if rnd.closed.is_set():
            return
        rnd.closed.set()
        if rnd.timer is not None:
            rnd.timer.cancel()
        if self._rounds.get(rnd.seq) is rnd:
            del self._rounds[rnd.seq]
        rt = self._runtimes.get(rnd.seq)
        if rt is None:
            return
        rt.locations = rnd.statuses()
        verdict = decide(rnd)
        if verdict.ok is None:  # too few answers to tell: keep the status, say why
            if rt.last is not None:
                rt.last = msgspec.structs.replace(
                    rt.last, message=verdict.message, locations=rt.locations, at=now_iso()
                )
                self._bus.publish(f"monitors.{rt.monitor.id}", rt.last, "monitor.heartbeat")
            return
        await self._apply(
            rt,
            verdict.result,
            verdict.ok,
            [],
            verdict.message,
            failed=verdict.failed,
            heartbeat=False,
            retry=retry,
        )
