"""The probe engine: monitors in memory, the scheduler, and when each one is checked.

The engine decides *when*: it keeps the runtimes, schedules checks, takes push calls and
round deadlines. *What happens to a result* is ``Verdict.record`` (verdict.py); monitors with
several locations go through ``Rounds`` (multi.py), which ends in the same path. The verdict
answers whether an early retry is wanted, and the engine asks its scheduler.
"""

from __future__ import annotations

import asyncio
import logging

from ..clock import iso_of, now_iso
from ..config import Config
from ..model.monitor import STATUS_CODES
from ..store.history import Heartbeat
from ..store.monitors import Incident, MonitorRow
from ..store.protocols import HistoryReader, MonitorRepo
from .conditions import DEFAULTS, parse_all
from .job import ProbeOutcome
from .multi import Rounds
from .prober import Prober
from .push import PushCall, Pushes
from .report import CheckReport
from .runtime import PushState, Runtime, Runtimes
from .scheduler import Scheduler
from .status import Machine
from .verdict import Verdict

log = logging.getLogger("dragonopsd.engine")
_STATUS_NAMES = {code: name for name, code in STATUS_CODES.items()}


class Engine:
    """Owns every monitor's runtime and the scheduler that drives them."""

    def __init__(
        self,
        cfg: Config,
        *,
        store: MonitorRepo,
        history_query: HistoryReader,
        runtimes: Runtimes,
        verdict: Verdict,
        rounds: Rounds,
        prober: Prober,
        pushes: Pushes,
    ) -> None:
        self._cfg = cfg
        self.store = store
        self._history_query = history_query
        self._runtimes = runtimes
        self._verdict = verdict
        self._rounds = rounds
        self.remote = rounds.remote  # its counters are read by the metrics (and tests)
        self._prober = prober
        self._pushes = pushes
        self.scheduler = Scheduler(self._check, cfg.probes.concurrency)
        self._expiring: set[asyncio.Task[None]] = set()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Load monitors, their last state, last check and open incidents; open the probe
        session. A paused monitor's incident left open by an older build is closed."""
        self._prober.start()
        states = await self.store.states()
        incidents = await self.store.open_incidents()
        latest = await self._history_query.latest()
        for row in await self.store.all():
            beat = latest.get(row.seq)
            status, since, _ = states.get(
                row.seq, (_STATUS_NAMES[beat.status] if beat else "pending", now_iso(), None)
            )
            incident = incidents.get(row.monitor.id)
            last = _report(row.monitor.id, beat) if beat else None
            rt = self._add(row, status, since, incident, last)
            rt.down_notified = incident is not None  # as far as anyone can tell now
            if incident is not None and not row.spec.enabled:
                await self._verdict.close_paused(rt)

    async def stop(self) -> None:
        """Close the probe session (the scheduler task is cancelled by its owner)."""
        self._rounds.drop_all()
        for rt in self._runtimes.all():
            self._pushes.forget(rt)
        self._pushes.stop()
        for task in self._expiring:
            task.cancel()
        await self._prober.stop()

    # -- registry --------------------------------------------------------------------------

    def _add(
        self,
        row: MonitorRow,
        status: str,
        since: str,
        incident: Incident | None,
        last: CheckReport | None = None,
        *,
        push: PushState | None = None,
    ) -> Runtime:
        spec = row.spec
        machine = Machine(
            spec.retries,
            spec.failure_threshold,
            self._cfg.probes.flap_window,
            self._cfg.probes.flap_threshold,
            status=status,
        )
        texts = spec.conditions or list(DEFAULTS.get(spec.kind, ()))
        rt = Runtime(row, parse_all(texts), machine, since, last=last, incident=incident)
        self._runtimes.add(rt)
        if spec.kind == "push":
            self._pushes.track(rt, push)  # judged by its own clock, not the scheduler
        elif spec.enabled:
            self.scheduler.schedule(row.seq, spec.period)
        return rt

    async def upsert(self, row: MonitorRow, *, soon: bool = True) -> None:
        """A monitor was created or changed: (re)start it, keeping its visible status.

        Pausing closes its open incident; resuming starts it from pending, so a monitor still
        down when resumed opens a new incident (and alerts) like any other.
        ``soon``: first check within 2 s (a user just saved it); otherwise spread over the
        interval, so thousands of monitors from a config file do not all fire at once.
        """
        old = self._runtimes.get(row.seq)
        self.remove(row.seq)
        # A push monitor's clock carries over an edit (a run in progress stays in progress),
        # but not a resume: a paused monitor starts a fresh period like a new one.
        clock = old.push if old is not None and old.monitor.enabled else None
        if old is None:
            rt = self._add(row, "pending", now_iso(), None)
        elif row.spec.enabled and not old.monitor.enabled:
            rt = self._add(row, "pending", now_iso(), old.incident, old.last)
        else:
            rt = self._add(row, old.machine.status, old.since, old.incident, old.last, push=clock)
        if old is not None:
            rt.down_notified = old.down_notified
            rt.last_at = old.last_at
        if not row.spec.enabled:
            await self._verdict.close_paused(rt)
        if soon and row.spec.enabled and row.spec.kind != "push":
            self.scheduler.schedule(row.seq, row.spec.period, first_in=min(2.0, row.spec.period))

    def remove(self, seq: int) -> None:
        """Forget a monitor."""
        rt = self._runtimes.pop(seq)
        if rt is not None:
            self._pushes.forget(rt)
        self.scheduler.remove(seq)
        self._rounds.drop(seq)

    # -- checks ----------------------------------------------------------------------------

    async def _check(self, seq: int, due: float) -> None:
        rt = self._runtimes.get(seq)
        if rt is None:
            return
        if rt.row.spec.locations != ["local"]:
            _, retry = await self._rounds.check(rt, self._expire)
        else:
            retry = await self._verdict.record(rt, await self._prober.probe(rt.row.spec))
        self._retry(rt, retry)

    def _retry(self, rt: Runtime, wanted: bool) -> None:
        """The status machine wants an early look (retries before DOWN)."""
        if wanted:
            self.scheduler.retry(rt.row.seq, rt.row.spec.retry_interval)

    async def check_now(self, monitor_id: str) -> CheckReport | None:
        """POST /api/monitors/{id}/check: probe immediately and record the result."""
        rt = self._runtimes.of_id(monitor_id)
        if rt is None:
            return None
        if rt.row.spec.kind == "push":
            return rt.last
        if rt.row.spec.locations != ["local"]:
            rnd, retry = await self._rounds.check(rt, self._expire)
            self._retry(rt, retry)
            return await self._rounds.wait(rt, rnd)
        self._retry(rt, await self._verdict.record(rt, await self._prober.probe(rt.row.spec)))
        return rt.last

    async def push(self, token: str, call: PushCall) -> str | None:
        """A push monitor called in: its id, or None when the token is unknown."""
        rt = self._runtimes.of_token(token)
        if rt is None:
            return None
        await self._pushes.call(rt, call)
        return rt.row.monitor.id

    # -- rounds: results and deadlines that arrive outside a check ---------------------------

    async def remote_result(self, outcome: ProbeOutcome) -> None:
        """A worker's result from the results stream (RemoteProbes.consume calls this)."""
        rt, retry = await self._rounds.remote_result(outcome)
        if rt is not None:
            self._retry(rt, retry)

    def _expire(self, seq: int, number: int) -> None:
        task = asyncio.create_task(self._expired(seq, number), name=f"round-{seq}")
        self._expiring.add(task)
        task.add_done_callback(self._expiring.discard)

    async def _expired(self, seq: int, number: int) -> None:
        retry = await self._rounds.expire(seq, number)
        rt = self._runtimes.get(seq)
        if rt is not None:
            self._retry(rt, retry)


def _report(monitor_id: str, beat: Heartbeat) -> CheckReport:
    """The last check as history kept it: enough for the board after a restart."""
    status = _STATUS_NAMES.get(beat.status, "pending")
    return CheckReport(
        monitor_id=monitor_id,
        status=status,
        ok=status == "up",
        at=iso_of(beat.at),
        latency_ms=beat.latency_ms,
        message=beat.message,
    )
