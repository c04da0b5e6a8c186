"""The probe engine: monitors in memory, the scheduler, and what each result leads to.

One result flows through one function, ``_record``: status machine -> heartbeat to the
history writer -> latest state in memory -> events on the bus -> incident and notification on
transitions. Everything slow (SQLite, webhooks) happens off the scheduler's path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from ..bus import Bus
from ..clock import iso_of, next_stamp, now_iso
from ..config import Config
from ..inventory.index import InventoryIndex
from ..maintenance import MaintenanceService
from ..monitor import STATUS_CODES, Monitor, Scope
from ..notify.dispatcher import Dispatcher
from ..store.history import Heartbeat, HistoryWriter
from ..store.history_query import HistoryQuery
from ..store.monitors import Incident, MonitorRow, MonitorStore
from .conditions import DEFAULTS, Condition, ConditionResult, evaluate_all, parse_all
from .multi import MultiLocation
from .optional import OptionalSteps
from .probes import ProbeEnv, ProbeResult, run_probe
from .probes.guard import AddressGuard, make_session
from .probes.result import SecretLookup
from .remote import RemoteProbes
from .report import CheckReport
from .scheduler import Scheduler
from .status import Machine
from .topology import Topology
from .transitions import Transitions
from .views import EngineViews

log = logging.getLogger("dragonopsd.engine")
_STATUS_NAMES = {code: name for name, code in STATUS_CODES.items()}


@dataclass
class Runtime:
    """One monitor's live state."""

    row: MonitorRow
    conditions: list[Condition]
    machine: Machine
    since: str
    last: CheckReport | None = None
    incident: Incident | None = None
    last_push: float | None = None
    cert_warned: float | None = None
    locations: dict[str, str] = field(default_factory=dict)  # last round, several locations
    cert_expires_at: float | None = None  # Unix time, from the last check that saw one
    successes: int = 0  # checks since this runtime was made (counters for the metrics)
    failures: int = 0
    down_notified: bool = False  # a DOWN went out that no UP has answered yet

    @property
    def monitor(self) -> Monitor:
        """The monitor's public shape."""
        return self.row.monitor


class Engine(EngineViews, MultiLocation, Transitions):
    """Owns every monitor's runtime and the scheduler that drives them."""

    def __init__(
        self,
        cfg: Config,
        *,
        store: MonitorStore,
        history: HistoryWriter,
        history_query: HistoryQuery,
        notifier: Dispatcher,
        maintenance: MaintenanceService,
        bus: Bus,
        guard: AddressGuard,
        inventory: InventoryIndex,
        secrets: SecretLookup | None = None,
    ) -> None:
        self._cfg = cfg
        self._secrets = secrets
        self.store = store
        self._history = history
        self._history_query = history_query
        self._notifier = notifier
        self._maintenance = maintenance
        self._bus = bus
        self.scheduler = Scheduler(self._check, cfg.probes.concurrency)
        self._runtimes: dict[int, Runtime] = {}
        self._by_id: dict[str, int] = {}
        self._by_token: dict[str, int] = {}
        self.topology = Topology(inventory)  # the index keeps it current
        self._guard = guard  # shared with notifications; a reload swaps its rules in place
        self._session: aiohttp.ClientSession | None = None
        self._env: ProbeEnv | None = None
        self.checks = Counter[str]()
        self._steps = OptionalSteps(log)
        self.remote = RemoteProbes(None, history)  # app.py swaps in the Redis one
        self._rounds = {}
        self._round_tasks = set()
        self._last_at = {}
        # Called after every status transition (e.g. the dashboard drops its cached counts).
        self.on_change: list[Callable[[], Awaitable[None]]] = []

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Load monitors, their last state, last check and open incidents; open the probe
        session. A paused monitor's incident left open by an older build is closed."""
        self._session = make_session(self._cfg.probes, self._guard)
        # One env for every probe: it caches the CA store and nameservers it loads.
        self._env = ProbeEnv(
            self._session, self._guard, self._cfg.probes.user_agent, secrets=self._secrets
        )
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
                await self.close_paused(rt)

    async def stop(self) -> None:
        """Close the probe session (the scheduler task is cancelled by its owner)."""
        self._drop_rounds()
        if self._session is not None:
            await self._session.close()

    # -- registry --------------------------------------------------------------------------

    def _add(
        self,
        row: MonitorRow,
        status: str,
        since: str,
        incident: Incident | None,
        last: CheckReport | None = None,
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
        if spec.kind == "push":
            rt.last_push = asyncio.get_running_loop().time()  # a fresh grace period at start
        self._runtimes[row.seq] = rt
        self._by_id[row.monitor.id] = row.seq
        if row.monitor.push_token:
            self._by_token[row.monitor.push_token] = row.seq
        if spec.enabled:
            period = spec.interval + (spec.grace or 0) if spec.kind == "push" else spec.interval
            self.scheduler.schedule(row.seq, period)
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
        if old is None:
            rt = self._add(row, "pending", now_iso(), None)
        elif row.spec.enabled and not old.monitor.enabled:
            rt = self._add(row, "pending", now_iso(), old.incident, old.last)
        else:
            rt = self._add(row, old.machine.status, old.since, old.incident, old.last)
        if old is not None:
            rt.down_notified = old.down_notified
        if not row.spec.enabled:
            await self.close_paused(rt)
        if soon and row.spec.enabled and row.spec.kind != "push":
            self.scheduler.schedule(
                row.seq, row.spec.interval, first_in=min(2.0, row.spec.interval)
            )

    def remove(self, seq: int) -> None:
        """Forget a monitor."""
        rt = self._runtimes.pop(seq, None)
        self.scheduler.remove(seq)
        self._drop_round(seq)
        if rt:
            self._by_id.pop(rt.monitor.id, None)
            if rt.monitor.push_token:
                self._by_token.pop(rt.monitor.push_token, None)

    def seq_of(self, monitor_id: str) -> int | None:
        """The integer key of a monitor id."""
        return self._by_id.get(monitor_id)

    # -- checks ----------------------------------------------------------------------------

    async def _check(self, seq: int, due: float) -> None:
        rt = self._runtimes.get(seq)
        if rt is None:
            return
        if rt.row.spec.kind == "push":
            await self._push_deadline(rt)
            return
        if rt.row.spec.locations != ["local"]:
            await self._check_round(rt)
            return
        await self._record(rt, await self._probe(rt))

    async def _probe(self, rt: Runtime) -> ProbeResult:
        assert self._env is not None, "engine not started"
        try:  # the probe has its own budget; this only guards against a probe bug hanging
            async with asyncio.timeout(rt.row.spec.timeout + 5):
                return await run_probe(rt.row.spec, self._env)
        except TimeoutError:
            return ProbeResult(context={}, error=f"timeout after {rt.row.spec.timeout}s")

    async def check_now(self, monitor_id: str) -> CheckReport | None:
        """POST /api/monitors/{id}/check: probe immediately and record the result."""
        seq = self._by_id.get(monitor_id)
        if seq is None:
            return None
        rt = self._runtimes[seq]
        if rt.row.spec.kind == "push":
            return rt.last
        if rt.row.spec.locations != ["local"]:
            return await self._check_round_now(rt)
        await self._record(rt, await self._probe(rt))
        return rt.last

    async def push(
        self, token: str, up: bool, message: str | None, ping: float | None
    ) -> str | None:
        """A push monitor called in: its id, or None when the token is unknown."""
        seq = self._by_token.get(token)
        if seq is None:
            return None
        rt = self._runtimes[seq]
        rt.last_push = asyncio.get_running_loop().time()
        context: dict[str, Any] = {"CONNECTED": up}
        result = ProbeResult(
            context=context,
            latency_ms=ping,
            error=None if up else (message or "push reported down"),
        )
        await self._record(rt, result, forced_ok=up, note=message)
        return rt.row.monitor.id

    async def _push_deadline(self, rt: Runtime) -> None:
        spec = rt.row.spec
        window = spec.interval + (spec.grace or 0)
        silent = asyncio.get_running_loop().time() - (rt.last_push or 0)
        if silent >= window:
            error = f"no push received within {window:g}s"
            await self._record(rt, ProbeResult(context={}, error=error), forced_ok=False)

    # -- one result, one path --------------------------------------------------------------

    async def _record(
        self,
        rt: Runtime,
        result: ProbeResult,
        *,
        forced_ok: bool | None = None,
        note: str | None = None,
    ) -> None:
        ok, outcomes, message = self._evaluate(rt, result, forced_ok, note)
        await self._apply(rt, result, ok, outcomes, message)

    def _evaluate(
        self, rt: Runtime, result: ProbeResult, forced_ok: bool | None, note: str | None
    ) -> tuple[bool, list[ConditionResult], str | None]:
        """Conditions over one probe result: up or not, each outcome, and what to say."""
        context = result.context
        if result.latency_ms is not None:
            context.setdefault("RESPONSE_TIME", result.latency_ms)
        outcomes = evaluate_all(rt.conditions, context) if forced_ok is None else []
        ok = forced_ok if forced_ok is not None else all(o.success for o in outcomes)
        failed = next((o for o in outcomes if not o.success), None)
        message = note or result.error or (failed.detail if failed else None)
        return ok, outcomes, None if ok and forced_ok is None else message

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
        """One verdict: status machine, heartbeat, latest state, events, transitions."""
        spec, monitor = rt.row.spec, rt.monitor
        scope = self._scope(monitor)
        wall = time.time()
        window = self._steps.run(
            "maintenance lookup", lambda: self._maintenance.active_for(scope, wall), None
        )
        transition = rt.machine.observe(ok, maintenance=window is not None)
        at = wall
        if heartbeat:  # several locations: each location's result was stored as it came
            # History is keyed by (monitor, millisecond): keep each monitor's times distinct.
            at = self._last_at[rt.row.seq] = next_stamp(wall, self._last_at.get(rt.row.seq), wall)
            self._history.submit(
                Heartbeat(
                    rt.row.seq,
                    at,
                    STATUS_CODES[transition.status],
                    result.latency_ms,
                    None if ok else message,
                )
            )
        now = iso_of(at)  # the report's time is the heartbeat's, as history will show it
        rt.last = CheckReport(
            monitor_id=monitor.id,
            status=transition.status,
            ok=ok,
            at=now,
            latency_ms=result.latency_ms,
            message=message,
            error=result.error,
            conditions=outcomes,
            context={k: v for k, v in result.context.items() if k != "BODY"},
            locations=rt.locations,
            failed_locations=failed or [],
        )
        self.checks["up" if ok else "down"] += 1
        if ok:
            rt.successes += 1
        else:
            rt.failures += 1
        self._bus.publish(f"monitors.{monitor.id}", rt.last, "monitor.heartbeat")
        if transition.retry and retry:
            self.scheduler.retry(rt.row.seq, spec.retry_interval)
        if transition.changed:
            rt.since = now
        await self._transition(rt, transition, message, scope, failed)
        if result.cert_expires_at is not None:
            expires = rt.cert_expires_at = result.cert_expires_at
            self._steps.run(
                "certificate warning",
                lambda: self._maybe_warn_certificate(rt, expires, scope),
                None,
            )

    def _scope(self, monitor: Monitor) -> Scope:
        """Where the monitor sits; without the inventory links if they cannot be read."""
        return self._steps.run(
            "topology", lambda: self.topology.scope(monitor), Scope(monitor.id, tuple(monitor.tags))
        )


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
