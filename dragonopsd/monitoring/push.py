"""Push monitors: the calls their jobs make, and the clock that says when one is late.

Healthchecks' model. The next ping is expected at the first run of the monitor's schedule
(its cron expression in its time zone, or its interval) after the last ping, and the monitor is
down ``grace`` after that expected time: lateness is judged from the schedule, so a job that
runs at 03:00 is late at 03:00 + grace whenever its last ping came. A ``/start`` begins a run:
the run's closing ping (success or failure) measures its duration, which becomes the
heartbeat's latency, and a run still going ``maxRuntime`` after its start is down.

Each monitor has one timer on the loop, armed at its earliest deadline and re-judged on the
wall clock when it fires (cron lives in wall time, and the wall clock can step). Every call is
kept in the ping log (store/pings.py) with its body; a heartbeat goes through ``Verdict.record``
like any check's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from ..clock import iso_of
from ..model.inventory import Wire
from ..model.schedule import CronPlan
from ..store.pings import Ping, PingKind
from ..store.protocols import PingRepo
from .probes import ProbeResult
from .runtime import PushState, Runtime, Runtimes
from .verdict import Verdict

log = logging.getLogger("dragonopsd.push")
# A timer never sleeps longer than this: a wall-clock step is noticed within it.
MAX_SLEEP = 300.0


@dataclass(frozen=True)
class PushCall:
    """One call of a push URL, as the API read it."""

    kind: PingKind
    method: str
    exit_code: int | None = None
    message: str | None = None
    ping_ms: float | None = None  # the job's own measure of its run (?ping=)
    body: str | None = None
    truncated: bool = False
    source: str | None = None
    user_agent: str | None = None


class Outlook(Wire, kw_only=True):
    """What a push monitor waits for: its next expected ping and the run in progress."""

    next_expected_at: str | None  # the schedule's next run (late grace seconds after it)
    late_at: str | None
    running_since: str | None  # the /start of a run that has not pinged yet
    max_runtime_at: str | None  # when that run is down for running too long


def _plan(rt: Runtime) -> CronPlan | None:
    spec = rt.row.spec
    return CronPlan(spec.cron, spec.timezone) if spec.cron else None


class Pushes:
    """Takes push calls, keeps their log, and judges push monitors against their schedules."""

    def __init__(self, *, verdict: Verdict, pings: PingRepo, runtimes: Runtimes) -> None:
        self._verdict = verdict
        self.pings = pings
        self._runtimes = runtimes
        self._plans: dict[int, CronPlan | None] = {}  # parsed once per spec
        self._tasks: set[asyncio.Task[None]] = set()

    # -- the monitors ----------------------------------------------------------------------

    def track(self, rt: Runtime, previous: PushState | None) -> None:
        """Start a push monitor's clock: from previous (the same monitor, changed) or from
        now, so a new monitor and a restarted daemon begin with a full period."""
        rt.push = previous or PushState(ref=time.time())
        rt.push.timer = None
        self._plans[rt.row.seq] = _plan(rt)
        self._arm(rt)

    def forget(self, rt: Runtime) -> PushState | None:
        """Stop a monitor's clock; its state, for the same monitor re-added."""
        state = rt.push
        if state is not None and state.timer is not None:
            state.timer.cancel()
            state.timer = None
        self._plans.pop(rt.row.seq, None)
        return state

    def stop(self) -> None:
        """Cancel pending judgements (the runtimes' timers go with forget)."""
        for task in self._tasks:
            task.cancel()

    def outlook(self, monitor_id: str) -> Outlook | None:
        """A push monitor's next expected ping and the run in progress, as ISO times; None
        for a monitor that is not loaded (or not a push monitor)."""
        rt = self._runtimes.of_id(monitor_id)
        if rt is None or rt.push is None:
            return None
        state, spec = rt.push, rt.row.spec
        paused = not spec.enabled
        expected = None if paused else self._expected(rt, state.ref)
        limit = spec.max_runtime_seconds
        started = state.started
        return Outlook(
            next_expected_at=_iso(expected),
            late_at=_iso(None if expected is None else expected + spec.grace_seconds),
            running_since=_iso(started),
            max_runtime_at=_iso(None if started is None or limit is None else started + limit),
        )

    # -- calls -----------------------------------------------------------------------------

    async def call(self, rt: Runtime, call: PushCall) -> None:
        """One call of the monitor's push URL: logged, then judged."""
        state = rt.push
        if state is None:  # not a push monitor (its token was just changed away)
            return
        now = time.time()
        duration = None
        if call.kind == "start":
            state.started, state.overran = now, False
        else:
            if state.started is not None:
                duration = round(now - state.started, 3)
            state.started, state.overran = None, False
        state.ref, state.again = now, None
        self._arm(rt)
        if call.kind != "start":
            up = call.kind == "success"
            latency = call.ping_ms if call.ping_ms is not None else _ms(duration)
            message = call.message
            if not up and message is None:
                code = call.exit_code
                message = "push reported down" if code is None else f"exit code {code}"
            result = ProbeResult(
                context=_context(up, call.exit_code, duration),
                latency_ms=latency,
                error=None if up else message,
            )
            retry = await self._verdict.record(rt, result, forced_ok=up, note=message)
            if retry and not up and rt.push is state:
                state.again = (time.time() + rt.row.spec.retry_interval, message or "")
                self._arm(rt)
        ping = Ping(
            at=iso_of(now),
            kind=call.kind,
            exit_code=call.exit_code,
            duration_seconds=duration,
            message=call.message,
            body=call.body,
            truncated=call.truncated,
            method=call.method,
            source=call.source,
            user_agent=call.user_agent,
        )
        try:
            await self.pings.add(rt.row.seq, now, ping)
        except Exception:  # the ping counted; only its log entry is lost
            log.warning("push monitor %s: could not keep the ping in its log", rt.monitor.id)

    # -- the clock -------------------------------------------------------------------------

    def _expected(self, rt: Runtime, ref: float) -> float | None:
        plan = self._plans.get(rt.row.seq)
        return ref + rt.row.spec.period if plan is None else plan.after(ref)

    def _deadline(self, rt: Runtime, state: PushState) -> float | None:
        """The earliest moment something is due: a retry, an overrun, a late ping."""
        spec = rt.row.spec
        due: list[float] = []
        if state.again is not None:
            due.append(state.again[0])
        limit = spec.max_runtime_seconds
        if state.started is not None and limit is not None and not state.overran:
            due.append(state.started + limit)
        expected = self._expected(rt, state.ref)
        if expected is not None:
            due.append(expected + spec.grace_seconds)
        return min(due) if due else None

    def _arm(self, rt: Runtime) -> None:
        state = rt.push
        if state is None:
            return
        if state.timer is not None:
            state.timer.cancel()
            state.timer = None
        if not rt.row.spec.enabled:
            return  # a paused monitor is judged by nobody
        deadline = self._deadline(rt, state)
        if deadline is None:
            return  # the schedule never fires again
        delay = min(MAX_SLEEP, max(0.0, deadline - time.time()))
        state.timer = asyncio.get_running_loop().call_later(delay, self._wake, rt, state)

    def _wake(self, rt: Runtime, state: PushState) -> None:
        state.timer = None
        if rt.push is not state:
            return
        deadline = self._deadline(rt, state)
        if deadline is not None and deadline > time.time():
            self._arm(rt)  # a capped sleep, or the wall clock went back: not due yet
            return
        task = asyncio.create_task(self._judge(rt, state), name=f"push-{rt.row.seq}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _judge(self, rt: Runtime, state: PushState) -> None:
        """Something is due: record the down it stands for, then arm for the next."""
        try:
            message = self._due(rt, state, time.time())
            if message is not None:
                ref = state.ref
                result = ProbeResult(context={"CONNECTED": False}, error=message)
                retry = await self._verdict.record(rt, result, forced_ok=False)
                if rt.push is state and state.ref == ref:  # no ping came meanwhile
                    wait = rt.row.spec.retry_interval
                    state.again = (time.time() + wait, message) if retry else None
        except Exception:  # one monitor's trouble must not stop its clock
            log.exception("push monitor %s: judging its schedule failed", rt.monitor.id)
        finally:
            if rt.push is state:
                self._arm(rt)

    def _due(self, rt: Runtime, state: PushState, now: float) -> str | None:
        """Why the monitor is down now, moving its clock past what was due; None if nothing."""
        spec = rt.row.spec
        if state.again is not None and state.again[0] <= now:
            message = state.again[1]
            state.again = None
            return message
        limit = spec.max_runtime_seconds
        started = state.started
        if (
            started is not None
            and limit is not None
            and not state.overran
            and started + limit <= now
        ):
            state.overran = True
            return (
                f"the run started at {iso_of(started)} is still going after "
                f"{now - started:.0f} s, longer than maxRuntime ({limit:g} s)"
            )
        expected = self._expected(rt, state.ref)
        if expected is None or expected + spec.grace_seconds > now:
            return None
        state.ref = expected  # the next miss is the run after this one
        if spec.cron is None:
            return f"no push received within {spec.period + spec.grace_seconds:g}s"
        zone = spec.timezone or "UTC"
        return (
            f"no ping for the run expected at {iso_of(expected)} (cron '{spec.cron}', {zone}) "
            f"within its grace of {spec.grace_seconds:g} s"
        )


def _context(up: bool, exit_code: int | None, duration: float | None) -> dict[str, Any]:
    context: dict[str, Any] = {"CONNECTED": up}
    if exit_code is not None:
        context["EXIT_CODE"] = exit_code
    if duration is not None:
        context["DURATION"] = duration
    return context


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def _iso(t: float | None) -> str | None:
    return None if t is None else iso_of(t)
