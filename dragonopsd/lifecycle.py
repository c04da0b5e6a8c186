"""Background work tied to the app's lifetime: one ``cleanup_ctx`` factory per service.

Every entry is built the same way: ``name_ctx(service, ...)`` takes what it starts (never
looks it up in the app) and returns an async generator that starts it, yields while the app
runs, and stops it. app.py lists them in start order; aiohttp runs the teardowns in reverse,
so the engine stops before the history writer flushes, and the writer before the database closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from . import demo
from .actions.service import ActionService
from .assistant.service import AssistantService
from .auth.jwt import JwtVerifier
from .auth.tokens import TokenAuth, bootstrap_admin
from .bus import LocalBus, RedisBus
from .cluster.core import Core
from .config import Config
from .inventory.index import InventoryIndex
from .inventory.service import InventoryService
from .live.hub import Hub
from .live.redis_state import StateMirror
from .monitoring.alert_peers import AlertPeers
from .monitoring.alerts import AlertService
from .monitoring.config_sync import ConfigSync
from .monitoring.engine import Engine
from .monitoring.maintenance import MaintenanceService
from .monitoring.remote import RemoteProbes
from .monitoring.service import MonitorService
from .notify.dispatcher import Dispatcher
from .redislink.client import RedisLink
from .redislink.tasks import cancel_and_wait
from .sampling.sampler import Sampler
from .secrets.vault import VaultService
from .store.protocols import AuditLog, HistorySink
from .store.sql import Database

log = logging.getLogger("dragonopsd")

CleanupCtx = Callable[[web.Application], AsyncIterator[None]]


def task_ctx(
    factory: Callable[[], Coroutine[Any, Any, None]], *, recancel: bool = False
) -> CleanupCtx:
    """A cleanup_ctx entry that runs one background task for the app's lifetime.

    recancel: for loops around Redis calls, whose cancellation Python 3.11 can lose
    (redislink/tasks.py); not for tasks that finish work after being cancelled (the history
    writer drains then).
    """

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(factory())
        yield
        if recancel:
            await cancel_and_wait(task)
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return ctx


def redis_ctx(link: RedisLink, bus: LocalBus) -> CleanupCtx:
    """The Redis health watcher and the bus's publisher and reader. Starting never waits for
    Redis: the daemon comes up degraded and the watcher connects when Redis answers."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        await link.ping()  # one quick try, so a reachable Redis is in use from the start
        async for _ in task_ctx(link.watch, recancel=True)(app):
            if isinstance(bus, RedisBus):
                async for _ in task_ctx(bus.run_publisher, recancel=True)(app):
                    async for _ in task_ctx(bus.run_reader, recancel=True)(app):
                        yield
            else:
                yield
        await link.close()

    return ctx


def auth_ctx(cfg: Config, tokens: TokenAuth, jwt: JwtVerifier) -> CleanupCtx:
    """Load tokens (minting the first admin token if there is no way in), watch for changes."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        await tokens.reload()
        if not jwt.enabled and await tokens.store.count() == 0:
            await bootstrap_admin(tokens, cfg.resolve(cfg.auth.admin_token_file))
        async for _ in task_ctx(tokens.watch)(app):
            yield
        await jwt.close()

    return ctx


async def _prune_audit(audit: AuditLog, days: int) -> None:
    cutoff = (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    try:
        gone = await audit.prune(cutoff)
    except Exception:  # a busy store must not end retention for good
        log.exception("audit pruning failed")
    else:
        if gone:
            log.info("pruned %d audit entries older than %s", gone, cutoff)


def audit_retention_ctx(audit: AuditLog, days: int) -> CleanupCtx:
    """Prune the audit log at start (so a long-stopped daemon starts bounded), then hourly."""

    async def hourly() -> None:
        while True:
            await asyncio.sleep(3600)
            await _prune_audit(audit, days)

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        await _prune_audit(audit, days)
        async for _ in task_ctx(hourly)(app):
            yield

    return ctx


def database_ctx(db: Database, *, demo_inventory: InventoryService | None = None) -> CleanupCtx:
    """Open the database (migrations run here) and, with --demo, seed the demo inventory once."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        await db.open()
        log.info("store %s at schema version %d", db.where, db.schema_version)
        if demo_inventory is not None and await demo.seed(demo_inventory):
            log.info("seeded the demo inventory")
        yield
        await db.close()

    return ctx


def vault_ctx(vault: VaultService) -> CleanupCtx:
    """Open the secrets key ring: a key file that does not match the database refuses the start."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        await vault.start()
        yield

    return ctx


def maintenance_ctx(maintenance: MaintenanceService) -> CleanupCtx:
    """Load the maintenance windows once the database is open, before any probe asks."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        await maintenance.load()
        yield

    return ctx


def notifier_ctx(notifier: Dispatcher, bus: LocalBus) -> CleanupCtx:
    """Load the channels and start their workers, following the other cores' channel writes;
    on the way down, drain briefly and stop."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        await notifier.start()
        follower = asyncio.create_task(notifier.follow(bus), name="notify-follow")
        yield
        await cancel_and_wait(follower)
        await notifier.stop()

    return ctx


def actions_ctx(actions: ActionService, core: Core | None = None) -> CleanupCtx:
    """Settle the actions a previous run left behind and start the workers; on the way down,
    put whatever is running back in the queue for the next start. A core joining other live
    cores settles nothing: the actions running are theirs (the cluster has joined by now:
    the engine starts first)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        await actions.start(recover=core is None or core.alone())
        yield
        await actions.stop()

    return ctx


def assistant_ctx(assistant: AssistantService) -> CleanupCtx:
    """With [ai] provider = "openai", the one model client opens at start and closes at the end."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        await assistant.start()
        yield
        await assistant.close()

    return ctx


Job = Callable[[], Coroutine[Any, Any, None]]


def _singleton(core: Core | None, name: str, job: Job) -> Job:
    """job as is on one host; with several cores, run only by the holder of its lease."""
    return job if core is None else core.singleton(name, job)


def history_ctx(writer: HistorySink, core: Core | None = None) -> CleanupCtx:
    """The batched heartbeat writer and the rollup/retention job (one core of a deployment
    runs that). Cancelling the writer flushes what is queued, and it stops after the engine,
    so the last results land."""
    maintain = _singleton(core, "history-maintenance", writer.maintain)

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async for _ in task_ctx(writer.run)(app):
            async for _ in task_ctx(maintain, recancel=core is not None)(app):
                yield

    return ctx


def inventory_index_ctx(index: InventoryIndex) -> CleanupCtx:
    """Load the inventory index once the database is open, before any of its readers starts,
    and keep it following inventory writes for the app's lifetime."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        await index.start()
        try:
            async for _ in task_ctx(index.run)(app):
                yield
        finally:
            index.stop()

    return ctx


def engine_ctx(cfg: Config, monitors: MonitorService, declared: ConfigSync) -> CleanupCtx:
    """Load monitors, sync the config file's ``[[monitors]]``, ``[[maintenance]]`` and
    ``[[notifications]]`` (scheduled, not yet probed: scheduler_ctx starts probing last). With
    several cores: join first (what this core owns decides what it schedules), sync under the
    config-sync lease (then every core re-reads the windows and channels a peer may have
    written), follow the other cores' monitor writes, and leave (its monitors move at once) on
    the way down."""
    engine = monitors.engine
    core = engine.core

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        if core is None:
            await engine.start()
            await declared.sync(cfg)
            log.info("probe engine: %d monitors", len(engine.scheduler))
            yield
            await engine.stop()
            return
        await core.start()
        await engine.start()
        await declared.sync(cfg)  # under the config-sync lease
        await declared.refresh()
        log.info("probe engine: %d monitors owned by core %s", len(engine.owned), core.node)
        peers = engine.peers
        if peers is None:  # the engine builds them with its core
            raise RuntimeError("an engine with a core has peers")
        async for _ in task_ctx(core.run, recancel=True)(app):
            async for _ in task_ctx(peers.follow)(app):
                async for _ in task_ctx(peers.reconcile_forever)(app):
                    yield
        await engine.stop()

    return ctx


def scheduler_ctx(engine: Engine) -> CleanupCtx:
    """Probing, started once everything else has: with thousands of monitors, probes running
    while the rest loads would slow the start (READY) down, and first runs are spread over the
    interval from here anyway. First down, so the checks it drains still find every service
    their results go to."""
    return task_ctx(engine.scheduler.run)


def remote_results_ctx(remote: RemoteProbes, engine: Engine) -> CleanupCtx:
    """Feed the results probe workers report through Redis into the engine's verdict path."""
    return task_ctx(lambda: remote.consume(engine.remote_result), recancel=True)


def hub_ctx(hub: Hub) -> CleanupCtx:
    """The websocket hub's fan-out and token re-check. Sockets are closed with GOING_AWAY by
    the app's on_shutdown (before aiohttp waits for handlers); any left are closed here."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async for _ in task_ctx(hub.run)(app):
            async for _ in task_ctx(hub.watch_credentials)(app):
                yield
        await hub.close_all()

    return ctx


def going_away(hub: Hub) -> Callable[[web.Application], Coroutine[Any, Any, None]]:
    """An on_shutdown hook: close the websockets with GOING_AWAY before aiohttp waits
    (shutdown_timeout) for open handlers, which a websocket handler would otherwise hold."""

    async def hook(app: web.Application) -> None:
        await hub.close_all()

    return hook


def mirror_ctx(mirror: StateMirror) -> CleanupCtx:
    """With Redis, write the latest state per monitor and server where other processes read it."""
    return task_ctx(mirror.run, recancel=True)


def sampling_ctx(sampler: Sampler, core: Core | None = None) -> CleanupCtx:
    """The sample writer, its rollup job and the tick (the servers come from the inventory
    index); with several cores one of them runs the rollups and one the tick. Teardown runs
    inside out: the tick stops first, then the writer flushes what is left."""
    maintain = _singleton(core, "sample-maintenance", sampler.writer.maintain)
    tick = _singleton(core, "sampling", sampler.run)
    recancel = core is not None

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async for _ in task_ctx(sampler.writer.run)(app):
            async for _ in task_ctx(maintain, recancel=recancel)(app):
                async for _ in task_ctx(tick, recancel=recancel)(app):
                    if core is None:
                        yield
                        continue
                    # Agents heard by the other cores are heard by whichever holds the tick.
                    async for _ in task_ctx(sampler.hear_peers)(app):
                        yield

    return ctx


def alerts_ctx(
    alerts: AlertService, tables: list[dict[str, Any]], peers: AlertPeers | None = None
) -> CleanupCtx:
    """Load the alert rules (stored and ``[[alert_rules]]``), resume open alert incidents, and
    tick for silences; on the way down, the incidents decided so far are written. With several
    cores, follow the others' samples of the servers owned here, and their rule writes."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        for problem in alerts.rules.configure(tables):  # first: open incidents name them
            log.error("[[alert_rules]] %s", problem)
        await alerts.start()
        async for _ in task_ctx(alerts.run)(app):
            if peers is None:
                yield
                continue
            async for _ in task_ctx(peers.run)(app):
                yield

    return ctx
