"""The other cores, as the engine hears them: their monitor writes, and what they hand over.

Every core keeps every monitor's runtime, so each applies the monitor writes made on the
others (announced on the bus; the monitor is reread from the store), hands the owner a push
call or a "check now" it took for a monitor it does not own, and shows on its board the status
changes the owners publish. Bus events can be lost (Redis away, a slow subscriber), so the
runtimes are also compared with the store every ``RECONCILE_EVERY`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

import msgspec

from ..cluster.core import Core, MonitorChange
from ..problem import Problem
from ..store.monitors import MonitorRow
from ..store.protocols import MonitorRepo
from .push import PushCall
from .report import StatusEvent
from .runtime import Runtime
from .scheduler import Scheduler

log = logging.getLogger("dragonopsd.engine")
RECONCILE_EVERY = 30.0


class Engine(Protocol):
    """What the peers reach of the engine (engine.py builds them with itself)."""

    @property
    def store(self) -> MonitorRepo: ...
    @property
    def scheduler(self) -> Scheduler: ...
    @property
    def owned(self) -> set[int]: ...
    def runtime(self, monitor_id: str) -> Runtime | None: ...
    def seqs(self) -> list[int]: ...
    def remove(self, seq: int, *, announce: bool = True) -> None: ...
    async def upsert(
        self, row: MonitorRow, *, soon: bool = True, announce: bool = True
    ) -> None: ...
    async def push(self, token: str, call: PushCall) -> str | None: ...


class Peers:
    """Applies what the other cores of the deployment tell this core's engine."""

    def __init__(self, engine: Engine, core: Core) -> None:
        self._engine = engine
        self._core = core

    async def follow(self) -> None:
        """Apply the other cores' monitor writes until cancelled."""
        core = self._core
        sub = core.changes()
        try:
            while True:
                event = await sub.queue.get()
                if event.kind == "monitor.status":
                    self._status(event.data)
                    continue
                change = core.change_of(event.data)
                if change is not None:
                    try:
                        await self._apply(change)
                    except Exception:  # a store hiccup: the reconcile catches up
                        log.exception("applying core %s's change %s", change.node, change)
        finally:
            core.unsubscribe(sub)

    def _status(self, data: Any) -> None:
        """Another core's monitor changed status: the board here shows it too (its owner
        holds the status machine; this copy is only what readers of this core see)."""
        if not isinstance(data, msgspec.Raw):
            return  # published by this process: its runtime already has it
        try:
            event = msgspec.json.decode(data, type=StatusEvent)
        except msgspec.DecodeError:
            return
        engine = self._engine
        rt = engine.runtime(event.monitor_id)
        if rt is not None and rt.row.seq not in engine.owned:
            rt.machine.status = event.status
            rt.since = event.at

    async def _apply(self, change: MonitorChange) -> None:
        engine = self._engine
        rt = engine.runtime(change.monitor_id)
        if change.op in ("push", "check"):
            if rt is None or rt.row.seq not in engine.owned:
                return  # not ours: the owner acts on it
            if change.op == "check":
                engine.scheduler.retry(rt.row.seq, 0.0)
            elif rt.monitor.push_token and change.call is not None:
                await engine.push(rt.monitor.push_token, PushCall(**change.call))
            return
        if change.op == "delete":
            if rt is not None:
                engine.remove(rt.row.seq, announce=False)
            return
        try:
            row = await engine.store.get(change.monitor_id)
        except Problem:  # deleted since: its delete follows
            return
        await engine.upsert(row, announce=False)

    async def reconcile(self) -> int:
        """Make the runtimes match the store (writes whose events were lost); how many
        monitors were added, changed or dropped."""
        engine = self._engine
        # Versions first, whole rows only where they differ: every core holds every monitor,
        # and decoding all of them every RECONCILE_EVERY stalled the loop (probes started
        # late) for a time that grew with the deployment, not with this core's share.
        versions = await engine.store.versions()
        fixed = 0
        seen = set()
        for ident, (seq, updated_at) in versions.items():
            seen.add(seq)
            rt = engine.runtime(ident)
            if rt is not None and rt.monitor.updated_at == updated_at:
                continue
            try:
                row = await engine.store.get(ident)
            except Problem:  # deleted since: its delete (or the next reconcile) drops it
                continue
            await engine.upsert(row, soon=False, announce=False)
            fixed += 1
        for seq in [s for s in engine.seqs() if s not in seen]:
            engine.remove(seq, announce=False)
            fixed += 1
        if fixed:
            log.info("cluster: %d monitors reconciled with the store", fixed)
        return fixed

    async def reconcile_forever(self) -> None:
        """Reconcile every RECONCILE_EVERY seconds until cancelled."""
        while True:
            await asyncio.sleep(RECONCILE_EVERY)
            try:
                await self.reconcile()
            except Exception:  # a busy store: next time
                log.exception("reconciling monitors with the store failed")
