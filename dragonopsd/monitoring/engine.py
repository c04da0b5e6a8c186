"""The probe engine: monitors in memory, the scheduler, and what each result leads to.

One result flows through one function, ``_record``: status machine -> heartbeat to the
history writer -> latest state in memory -> events on the bus -> incident and notification on
transitions. Everything slow (SQLite, webhooks) happens off the scheduler's path.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from ..bus import Bus
from ..clock import now_iso
from ..config import Config
from ..maintenance import MaintenanceService
from ..monitor import STATUS_CODES, Monitor
from ..notify.dispatcher import Dispatcher
from ..notify.event import NotificationEvent
from ..store.history import Heartbeat, HistoryWriter
from ..store.monitors import Incident, MonitorRow, MonitorStore, topology
from .conditions import DEFAULTS, Condition, evaluate_all, parse_all
from .probes import ProbeEnv, ProbeResult, run_probe
from .probes.guard import AddressGuard, make_session
from .report import CheckReport, IncidentEvent, StatusEvent, target_of
from .scheduler import Scheduler
from .status import Machine, Transition
from .topology import Topology
from .views import EngineViews

log = logging.getLogger("dragonopsd.engine")
CERT_WARNING_SECONDS = 14 * 86_400


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

    @property
    def monitor(self) -> Monitor:
        """The monitor's public shape."""
        return self.row.monitor


class Engine(EngineViews):
    """Owns every monitor's runtime and the scheduler that drives them."""

    def __init__(
        self,
        cfg: Config,
        *,
        store: MonitorStore,
        history: HistoryWriter,
        notifier: Dispatcher,
        maintenance: MaintenanceService,
        bus: Bus,
    ) -> None:
        self._cfg = cfg
        self.store = store
        self._history = history
        self._notifier = notifier
        self._maintenance = maintenance
        self._bus = bus
        self.scheduler = Scheduler(self._check, cfg.probes.concurrency)
        self._runtimes: dict[int, Runtime] = {}
        self._by_id: dict[str, int] = {}
        self._by_token: dict[str, int] = {}
        self.topology = Topology()
        self._guard = AddressGuard(cfg.probes)
        self._session: aiohttp.ClientSession | None = None
        self._env: ProbeEnv | None = None
        self.checks = Counter[str]()
        # Called after every status transition (e.g. the dashboard drops its cached counts).
        self.on_change: list[Callable[[], Awaitable[None]]] = []

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Load monitors, their last state and open incidents; open the probe session."""
        self._session = make_session(self._cfg.probes, self._guard)
        # One env for every probe: it caches the CA store and nameservers it loads.
        self._env = ProbeEnv(self._session, self._guard, self._cfg.probes.user_agent)
        await self.refresh_topology()
        states = await self.store.states()
        incidents = await self.store.open_incidents()
        for row in await self.store.all():
            status, since, _ = states.get(row.seq, ("pending", now_iso(), None))
            self._add(row, status, since, incidents.get(row.monitor.id))

    async def stop(self) -> None:
        """Close the probe session (the scheduler task is cancelled by its owner)."""
        if self._session is not None:
            await self._session.close()

    async def refresh_topology(self) -> None:
        """Re-read server/environment/project links (after inventory writes)."""
        servers, envs, projects = await topology(self.store.db)
        self.topology = Topology(servers, envs, projects)

    # -- registry --------------------------------------------------------------------------

    def _add(self, row: MonitorRow, status: str, since: str, incident: Incident | None) -> None:
        spec = row.spec
        machine = Machine(
            spec.retries,
            spec.failure_threshold,
            self._cfg.probes.flap_window,
            self._cfg.probes.flap_threshold,
            status=status,
        )
        texts = spec.conditions or list(DEFAULTS.get(spec.kind, ()))
        rt = Runtime(row, parse_all(texts), machine, since, incident=incident)
        if spec.kind == "push":
            rt.last_push = asyncio.get_running_loop().time()  # a fresh grace period at start
        self._runtimes[row.seq] = rt
        self._by_id[row.monitor.id] = row.seq
        if row.monitor.push_token:
            self._by_token[row.monitor.push_token] = row.seq
        if spec.enabled:
            period = spec.interval + (spec.grace or 0) if spec.kind == "push" else spec.interval
            self.scheduler.schedule(row.seq, period)

    def upsert(self, row: MonitorRow, *, soon: bool = True) -> None:
        """A monitor was created or changed: (re)start it, keeping its visible status.

        ``soon``: first check within 2 s (a user just saved it); otherwise spread over the
        interval, so thousands of monitors from a config file do not all fire at once.
        """
        old = self._runtimes.get(row.seq)
        self.remove(row.seq)
        status = old.machine.status if old else "pending"
        self._add(row, status, old.since if old else now_iso(), old.incident if old else None)
        if soon and row.spec.enabled and row.spec.kind != "push":
            self.scheduler.schedule(
                row.seq, row.spec.interval, first_in=min(2.0, row.spec.interval)
            )

    def remove(self, seq: int) -> None:
        """Forget a monitor."""
        rt = self._runtimes.pop(seq, None)
        self.scheduler.remove(seq)
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
        await self._record(rt, await self._probe(rt))
        return rt.last

    async def push(self, token: str, up: bool, message: str | None, ping: float | None) -> bool:
        """A push monitor called in; False when the token is unknown."""
        seq = self._by_token.get(token)
        if seq is None:
            return False
        rt = self._runtimes[seq]
        rt.last_push = asyncio.get_running_loop().time()
        context: dict[str, Any] = {"CONNECTED": up}
        result = ProbeResult(
            context=context,
            latency_ms=ping,
            error=None if up else (message or "push reported down"),
        )
        await self._record(rt, result, forced_ok=up, note=message)
        return True

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
        spec, monitor = rt.row.spec, rt.monitor
        context = dict(result.context)
        if result.latency_ms is not None:
            context.setdefault("RESPONSE_TIME", result.latency_ms)
        outcomes = evaluate_all(rt.conditions, context) if forced_ok is None else []
        ok = forced_ok if forced_ok is not None else all(o.success for o in outcomes)
        failed = next((o for o in outcomes if not o.success), None)
        message = note or result.error or (failed.detail if failed else None)
        if ok and forced_ok is None:
            message = None
        scope = self.topology.scope(monitor)
        window = self._maintenance.active_for(scope, time.time())
        transition = rt.machine.observe(ok, maintenance=window is not None)
        now = now_iso()
        rt.last = CheckReport(
            monitor_id=monitor.id,
            status=transition.status,
            ok=ok,
            at=now,
            latency_ms=result.latency_ms,
            message=message,
            error=result.error,
            conditions=outcomes,
            context={k: v for k, v in context.items() if k != "BODY"},
        )
        self.checks["up" if ok else "down"] += 1
        self._history.submit(
            Heartbeat(
                rt.row.seq,
                time.time(),
                STATUS_CODES[transition.status],
                result.latency_ms,
                None if ok else message,
            )
        )
        self._bus.publish(f"monitors.{monitor.id}", rt.last, "monitor.heartbeat")
        if transition.retry:
            self.scheduler.retry(rt.row.seq, spec.retry_interval)
        if transition.changed:
            rt.since = now
            await self._transition(rt, transition, message, scope)
        if result.cert_expires_at is not None:
            self._maybe_warn_certificate(rt, result.cert_expires_at, scope)

    async def _transition(
        self, rt: Runtime, t: Transition, message: str | None, scope: Any
    ) -> None:
        monitor = rt.monitor
        root = self._root_cause(rt)
        opened = closed = None
        downtime = None
        if t.status == "down" and rt.incident is None:
            rt.incident = opened = Incident(
                id=str(uuid.uuid4()),
                monitor_id=monitor.id,
                monitor_name=monitor.name,
                opened_at=rt.since,
                cause=message or "down",
                root_cause=root,
                locations=list(monitor.locations),
            )
        elif t.status == "up" and rt.incident is not None:
            downtime = _seconds_between(rt.incident.opened_at, rt.since)
            closed = (rt.incident.id, rt.since, downtime)
            rt.incident = None
        for hook in self.on_change:
            await hook()
        try:
            await self.store.transition(rt.row.seq, t.status, message, opened, closed)
        except Exception:  # the in-memory state stays right; the next transition retries
            log.exception("could not persist the transition of monitor %s", monitor.id)
        status = StatusEvent(
            monitor_id=monitor.id,
            status=t.status,
            previous=t.previous,
            at=rt.since,
            message=message,
            locations=list(monitor.locations),
        )
        self._bus.publish("monitors", status, "monitor.status")
        self._bus.publish(f"monitors.{monitor.id}", status, "monitor.status")
        if opened is not None or closed is not None:
            self._bus.publish(
                "incidents",
                IncidentEvent(
                    type="incident.opened" if opened else "incident.closed",
                    incident_id=opened.id if opened else closed[0] if closed else "",
                    monitor_id=monitor.id,
                    monitor_name=monitor.name,
                    at=rt.since,
                    cause=message,
                    root_cause=root,
                    duration_seconds=downtime,
                ),
                "incident.opened" if opened else "incident.closed",
            )
        if t.alert and root is None:
            self._notifier.publish(
                NotificationEvent(
                    event="down" if t.status == "down" else "up",
                    monitor_id=monitor.id,
                    monitor_name=monitor.name,
                    kind=monitor.kind,
                    target=target_of(monitor),
                    status=t.status,
                    previous=t.previous,
                    message=message,
                    at=rt.since,
                    downtime_seconds=downtime,
                    locations=list(monitor.locations),
                    incident_id=(opened.id if opened else closed[0] if closed else None),
                    scope=scope,
                )
            )

    def _root_cause(self, rt: Runtime) -> str | None:
        """Why this monitor's alerts are suppressed: its server is down, or its host check is."""
        server = rt.monitor.server_id
        reason = self.topology.server_down(server)
        if reason or not server:
            return reason
        for other in self._runtimes.values():
            if (
                other is not rt
                and other.monitor.server_id == server
                and other.monitor.kind == "icmp"
                and other.machine.status == "down"
            ):
                return f"host check {other.monitor.name} ({other.monitor.id}) is down"
        return None

    def _maybe_warn_certificate(self, rt: Runtime, expires_at: float, scope: Any) -> None:
        left = expires_at - time.time()
        if left > CERT_WARNING_SECONDS or rt.cert_warned == expires_at:
            return
        rt.cert_warned = expires_at
        monitor = rt.monitor
        self._notifier.publish(
            NotificationEvent(
                event="certificate",
                monitor_id=monitor.id,
                monitor_name=monitor.name,
                kind=monitor.kind,
                target=target_of(monitor),
                status=rt.machine.status,
                previous=None,
                message=f"certificate expires in {left / 86400:.1f} days",
                at=now_iso(),
                cert_expires_at=datetime.fromtimestamp(expires_at, UTC).isoformat(),
                locations=list(monitor.locations),
                scope=scope,
            )
        )


def _seconds_between(start_iso: str, end_iso: str) -> float:
    start = datetime.fromisoformat(start_iso)
    end = datetime.fromisoformat(end_iso)
    return max(0.0, (end - start).total_seconds())
