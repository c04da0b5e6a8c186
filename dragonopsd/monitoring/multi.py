"""Checks of monitors with several locations (rounds.py has the quorum rule).

``Rounds`` is the engine's collaborator for them: it issues a round (jobs to remote locations,
the local probe here), hands each location's answer to ``Verdict.location`` the moment it
arrives (so history holds every location's answer, and a remote result is committed before its
stream entry is acknowledged), and closes the round through ``Verdict.apply`` without a
heartbeat of its own. Whatever closes a round returns the verdict's retry decision to its
caller, the engine, which asks the scheduler.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from .job import ProbeJob, ProbeOutcome
from .prober import Prober
from .probes import ProbeResult
from .remote import RemoteProbes
from .report import CheckReport
from .rounds import NO_RESULT, NO_WORKER, LocationResult, Round, decide, quorum_of
from .runtime import Runtime, Runtimes
from .verdict import Verdict

LOCAL = "local"
DEADLINE_SLACK = 3.0  # seconds past the probe timeout before a silent location is given up
# Called when a round's deadline passes: (seq, round number).
Expire = Callable[[int, int], None]


class Rounds:
    """Rounds: issue jobs, collect each location's result, close with a quorum verdict."""

    def __init__(
        self, *, runtimes: Runtimes, verdict: Verdict, prober: Prober, remote: RemoteProbes
    ) -> None:
        self._runtimes = runtimes
        self._verdict = verdict
        self._prober = prober
        self.remote = remote
        self._open: dict[int, Round] = {}

    async def check(self, rt: Runtime, expire: Expire) -> tuple[Round, bool]:
        """Issue one round: jobs to remote locations, the local probe here. ``expire`` is
        called at the round's deadline. The round, and whether a retry is wanted (when it
        closed already)."""
        seq, spec = rt.row.seq, rt.row.spec
        previous = self._open.pop(seq, None)
        if previous is not None:  # still open at the next due time: close it as it stands
            await self.close(previous)  # no retry: it would cut the new round short
        issued = time.time()
        rnd = Round(
            seq,
            int(issued * 1000),
            tuple(spec.locations),
            quorum_of(len(spec.locations), spec.quorum),
        )
        self._open[seq] = rnd
        for location in spec.locations:
            if location == LOCAL:
                continue
            job = ProbeJob(
                monitor_id=rt.monitor.id,
                round=rnd.number,
                location=location,
                issued=self.remote.shared(issued),
                expires=self.remote.shared(issued + spec.period),
                spec=spec,
                reply_to=self.remote.reply_to,
            )
            if not await self.remote.dispatch(job):
                rnd.absent[location] = NO_WORKER
        # Before the next due time, so each round normally ends by its own deadline.
        delay = min(0.9 * spec.period, spec.timeout + DEADLINE_SLACK)
        rnd.timer = asyncio.get_running_loop().call_later(delay, expire, seq, rnd.number)
        retry = False
        if LOCAL in spec.locations:
            result = await self._prober.probe(spec)
            retry = await self._location_result(rt, LOCAL, result, time.time(), rnd.number)
        elif rnd.complete:
            retry = await self.close(rnd)
        return rnd, retry

    @staticmethod
    async def wait(rt: Runtime, rnd: Round) -> CheckReport | None:
        """Wait (up to its deadline) for the round's verdict; the monitor's last report."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(rt.row.spec.period, rt.row.spec.timeout) + 4):
                await rnd.closed.wait()
        return rt.last

    async def remote_result(self, outcome: ProbeOutcome) -> tuple[Runtime | None, bool]:
        """A worker's result from the results stream: store it, then count it in its round.
        Its monitor's runtime (None when deleted meanwhile) and whether a retry is wanted."""
        rt = self._runtimes.of_id(outcome.monitor_id)
        if rt is None:
            return None, False  # the monitor was deleted meanwhile: its history went with it
        at = self.remote.local(outcome.at)  # the worker stamped it in Redis's clock
        result = outcome.probe_result()
        return rt, await self._location_result(rt, outcome.location, result, at, outcome.round)

    async def _location_result(
        self, rt: Runtime, location: str, result: ProbeResult, at: float, number: int
    ) -> bool:
        ok, message = self._verdict.location(rt, location, result, at)
        rnd = self._open.get(rt.row.seq)
        if rnd is None or rnd.number != number or location not in rnd.locations:
            return False  # a late answer, or one from before a restart: stored, not counted
        rnd.results[location] = LocationResult(ok, result, message)
        rnd.absent.pop(location, None)
        return await self.close(rnd) if rnd.complete else False

    async def expire(self, seq: int, number: int) -> bool:
        """The round's deadline passed: locations that did not answer count as absent, and
        it closes. Whether a retry is wanted."""
        rnd = self._open.get(seq)
        if rnd is None or rnd.number != number:
            return False
        for location in rnd.locations:
            if location not in rnd.results:
                rnd.absent.setdefault(location, NO_RESULT)
        return await self.close(rnd)

    def drop(self, seq: int) -> None:
        """The monitor was edited, disabled or deleted: its open round decides nothing."""
        rnd = self._open.pop(seq, None)
        if rnd is not None:
            rnd.closed.set()
            if rnd.timer is not None:
                rnd.timer.cancel()

    def drop_all(self) -> None:
        """Stopping: no round closes after this (its results are stored when re-read)."""
        for seq in list(self._open):
            self.drop(seq)

    async def close(self, rnd: Round) -> bool:
        """The round's verdict through the one path; whether a retry is wanted."""
        if rnd.closed.is_set():
            return False
        rnd.closed.set()
        if rnd.timer is not None:
            rnd.timer.cancel()
        if self._open.get(rnd.seq) is rnd:
            del self._open[rnd.seq]
        rt = self._runtimes.get(rnd.seq)
        if rt is None:
            return False
        rt.locations = rnd.statuses()
        verdict = decide(rnd)
        if verdict.ok is None:  # too few answers to tell: keep the status, say why
            self._verdict.undecided(rt, verdict.message)
            return False
        return await self._verdict.apply(
            rt,
            verdict.result,
            verdict.ok,
            (),
            verdict.message,
            failed=verdict.failed,
            heartbeat=False,
        )
