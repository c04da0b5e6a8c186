"""The probe engine: monitors in memory, the scheduler, and when each one is checked.

The engine decides *when*: it keeps the runtimes, schedules checks, takes push calls and
round deadlines. *What happens to a result* is ``Verdict.record`` (verdict.py); monitors with
several locations go through ``Rounds`` (multi.py), which ends in the same path. The verdict
answers whether an early retry is wanted, and the engine asks its scheduler.

With several cores (cluster/), every core keeps every monitor's runtime (the API reads them)
but schedules only those its core owns. When ownership moves, a lost monitor stops at once and
a gained one is reloaded from the store (status, open incident, last check) and checked when
its previous owner would have checked it next. Writes made here are announced to the other
cores, and theirs are applied here (peers.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Sequence

from ..clock import iso_of, now_iso
from ..cluster.core import Core
from ..config import Config
from ..model.monitor import STATUS_CODES
from ..store.history import Heartbeat
from ..store.monitors import Incident, MonitorRow
from ..store.protocols import HistoryReader, MonitorRepo
from .conditions import DEFAULTS, Condition, parse_all
from .job import ProbeOutcome
from .multi import Rounds
from .peers import Peers
from .prober import Prober
from .push import PushCall, Pushes
from .report import CheckReport
from .runtime import PushState, Runtime, Runtimes
from .scheduler import Scheduler
from .status import Machine
from .verdict import Verdict

log = logging.getLogger("dragonopsd.engine")
_STATUS_NAMES = {code: name for name, code in STATUS_CODES.items()}
_PARSED_KEPT = 4096  # distinct condition sets kept parsed


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
        core: Core | None = None,
    ) -> None:
        self._cfg = cfg
        self.core = core  # None: no cluster, this process owns every monitor
        self.owned: set[int] = set()  # seqs this core owns (schedules, when enabled)
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
        # Parsed conditions by source text: most monitors share a few sets (the kind's
        # default), and the trees are immutable, so 25,000 monitors parse a handful, not
        # 25,000, at start and hold one copy of each.
        self._parsed: dict[tuple[str, ...], list[Condition]] = {}
        self.started = now_iso()  # reset when the engine starts (/api/cluster's "since")
        # The other cores' monitor writes, push calls and status changes (several cores).
        self.peers = Peers(self, core) if core is not None else None
        if core is not None:
            core.on_change(self.rebalance)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Load monitors, their last state, last check and open incidents; open the probe
        session. A paused monitor's incident left open by an older build is closed."""
        self.started = now_iso()
        self._prober.start()
        states = await self.store.states()
        incidents = await self.store.open_incidents()
        latest = await self._history_query.latest()
        now = now_iso()
        for row in await self.store.all():
            beat = latest.get(row.seq)
            known = states.get(row.seq)
            status, since = (
                known[:2] if known else (_STATUS_NAMES[beat.status] if beat else "pending", now)
            )
            incident = incidents.get(row.monitor.id)
            last = _report(row.monitor.id, beat) if beat else None
            rt = self._add(row, status, since, incident, last)
            rt.down_notified = incident is not None  # as far as anyone can tell now
            if beat is not None and self.core is not None:
                self._resume(rt, beat.at)  # another core may have checked it a moment ago
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
        rt = Runtime(
            row, self._conditions(spec.conditions or DEFAULTS.get(spec.kind, ())), machine, since
        )
        rt.last = last
        rt.incident = incident
        self._runtimes.add(rt)
        if self._owns(row):
            self.owned.add(row.seq)
            if spec.kind == "push":
                self._pushes.track(rt, push)  # judged by its own clock, not the scheduler
            elif spec.enabled:
                self.scheduler.schedule(row.seq, spec.period)
        return rt

    def _conditions(self, texts: Sequence[str]) -> list[Condition]:
        key = tuple(texts)
        parsed = self._parsed.get(key)
        if parsed is None:
            if len(self._parsed) >= _PARSED_KEPT:  # edits come and go: start over
                self._parsed.clear()
            parsed = self._parsed[key] = parse_all(key)
        return parsed

    def _owns(self, row: MonitorRow) -> bool:
        return self.core is None or self.core.owns(row.monitor.id)

    def _resume(self, rt: Runtime, last_check: float) -> None:
        """Schedule an owned monitor's next check one interval after its last one (whoever
        made it), or at once (within a second) when that time has passed."""
        spec = rt.row.spec
        if rt.row.seq not in self.owned or not spec.enabled or spec.kind == "push":
            return
        period = spec.period
        wait = min(period, max(0.0, last_check + period - time.time()))
        self.scheduler.schedule(rt.row.seq, period, first_in=min(1.0, period), delay=wait)

    async def upsert(self, row: MonitorRow, *, soon: bool = True, announce: bool = True) -> None:
        """A monitor was created or changed: (re)start it, keeping its visible status.

        Pausing closes its open incident; resuming starts it from pending, so a monitor still
        down when resumed opens a new incident (and alerts) like any other.
        ``soon``: first check within 2 s (a user just saved it); otherwise spread over the
        interval, so thousands of monitors from a config file do not all fire at once.
        ``announce``: tell the other cores (False when applying another core's write).
        """
        old = self._runtimes.get(row.seq)
        self.remove(row.seq, announce=False)
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
        if soon and row.seq in self.owned and row.spec.enabled and row.spec.kind != "push":
            self.scheduler.schedule(row.seq, row.spec.period, first_in=min(2.0, row.spec.period))
        if announce and self.core is not None:
            self.core.announce(row.monitor.id, "upsert")

    def remove(self, seq: int, *, announce: bool = True) -> None:
        """Forget a monitor (``announce``: tell the other cores)."""
        rt = self._runtimes.pop(seq)
        if rt is not None:
            self._pushes.forget(rt)
        self._stop(seq)
        if announce and rt is not None and self.core is not None:
            self.core.announce(rt.monitor.id, "delete")

    def runtime(self, monitor_id: str) -> Runtime | None:
        """A monitor's runtime by id."""
        return self._runtimes.of_id(monitor_id)

    def seqs(self) -> list[int]:
        """Every loaded monitor's seq (a copy)."""
        return [rt.row.seq for rt in self._runtimes.all()]

    def _stop(self, seq: int) -> None:
        self.owned.discard(seq)
        rt = self._runtimes.get(seq)
        if rt is not None:
            self._pushes.forget(rt)  # a push monitor owned elsewhere now: its owner judges it
        self.scheduler.remove(seq)
        self._rounds.drop(seq)

    # -- several cores -------------------------------------------------------------------

    async def rebalance(self) -> None:
        """The live cores changed: stop the monitors now owned elsewhere, at once, and take
        over the ones now owned here from their stored state."""
        gained = []
        for rt in list(self._runtimes.all()):
            seq = rt.row.seq
            wanted = self._owns(rt.row)
            if seq in self.owned and not wanted:
                self._stop(seq)
            elif wanted and seq not in self.owned:
                gained.append(rt)
        if gained:
            await self._take(gained)
        log.info(
            "cluster: %d of %d monitors owned here (%d taken over)",
            len(self.owned),
            len(self._runtimes),
            len(gained),
        )

    async def _take(self, gained: list[Runtime]) -> None:
        """Continue gained monitors from what their previous owner stored: status, open
        incident (so no second one opens, and no second DOWN is sent) and last check."""
        states = await self.store.states()
        incidents = await self.store.open_incidents()
        latest = await self._history_query.latest()
        for taken in gained:
            seq = taken.row.seq
            old = self._runtimes.get(seq)
            if old is None or seq in self.owned or not self._owns(old.row):
                continue  # deleted, rewritten or moved again while the store was read
            beat = latest.get(seq)
            status, since, _ = states.get(seq, (old.machine.status, old.since, None))
            incident = incidents.get(old.monitor.id)
            last = _report(old.monitor.id, beat) if beat else old.last
            self._runtimes.pop(seq)
            rt = self._add(old.row, status, since, incident, last)
            rt.down_notified = incident is not None
            rt.last_at = old.last_at
            self._resume(rt, beat.at if beat else 0.0)

    # -- checks ----------------------------------------------------------------------------

    async def _check(self, seq: int, due: float) -> None:
        rt = self._runtimes.get(seq)
        if rt is None or seq not in self.owned:
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
        if self.core is not None and rt.row.seq not in self.owned:
            # Another core owns it: its owner checks now; here, the last report it has.
            self.core.announce(monitor_id, "check")
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
        if self.core is not None and rt.row.seq not in self.owned:
            # Only the owner keeps the push clock and the status: hand the call over.
            self.core.announce(rt.monitor.id, "push", call=dataclasses.asdict(call))
            return rt.monitor.id
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
