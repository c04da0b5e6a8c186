"""Server actions (restart / stop / start): accepted, queued, executed, recovered.

``submit`` commits a queued row before the API answers 202, then puts its id on the queue. A
worker moves the action to running and the server to restarting / stopping / starting, runs the
executor, and settles both: the server ends running / stopped, or back at the status it had
when the action was accepted if the action failed. Server statuses change through the
inventory service, so caches, the dashboard and ``inventory`` events follow; every action state
change is published on the ``actions`` topic as ``action.updated``.

Stopping the daemon: workers are cancelled and an action cut short goes back to queued (its
server back to its earlier status), so it runs again after the restart; the webhook body
carries the action id, so an orchestrator can recognise the repeat. After a crash (kill -9,
power loss) nobody knows how far a running action got: the next start marks it failed,
"interrupted by a daemon restart", and restores the server's earlier status. Queued actions
are re-enqueued at start in the order they were asked for.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from typing import Protocol

from ..bus import Bus
from ..config import ActionsConfig
from ..model.inventory import AnyEntity, AnyPatch, Server, ServerPatch, ServerStatus, Wire
from ..problem import Problem
from ..store.actions import PENDING, Action, ActionKind, NewAction
from ..store.protocols import ActionRepo
from .executors import Executor, Job, Outcome, build_executor
from .queue import ActionQueue, LocalQueue

log = logging.getLogger("dragonopsd.actions")

TOPIC = "actions"
EVENT = "action.updated"
INTERRUPTED = "interrupted by a daemon restart"
SNAPSHOT_LIMIT = 1000
# Which server statuses each action may start from.
ALLOWED: dict[ActionKind, tuple[ServerStatus, ...]] = {
    "restart": ("running", "unreachable", "maintenance"),
    "stop": ("running", "unreachable", "maintenance"),
    "start": ("stopped",),
}
# The server's status while the action runs, and once it has succeeded.
MOVES: dict[ActionKind, tuple[ServerStatus, ServerStatus]] = {
    "restart": ("restarting", "running"),
    "stop": ("stopping", "stopped"),
    "start": ("starting", "running"),
}


class ActionUpdated(Wire, kw_only=True, omit_defaults=True):
    """Bus event ``action.updated`` on topic ``actions``: one state change of one action."""

    id: str
    server_id: str
    action: ActionKind
    state: str
    error: str | None = None
    at: str


class Servers(Protocol):
    """The part of the inventory service actions use (the service itself, in app.py)."""

    async def get(self, table: str, ident: str, depth: int = 0) -> AnyEntity:
        """One entity or a 404 Problem."""
        ...

    async def update(
        self,
        table: str,
        ident: str,
        patch: AnyPatch,
        precondition: Callable[[AnyEntity], None] | None = None,
    ) -> AnyEntity:
        """Apply a patch; precondition sees the current entity inside the transaction."""
        ...


class _Moved(Exception):
    """The server's status is no longer the one the action set: someone else changed it."""


def _event(action: Action) -> ActionUpdated:
    return ActionUpdated(
        id=action.id,
        server_id=action.server_id,
        action=action.action,
        state=action.state,
        error=action.error,
        at=action.updated_at,
    )


def request_hash(server_id: str, action: str) -> str:
    """What an Idempotency-Key is bound to: the server and the action asked for."""
    return hashlib.sha256(f"{server_id}\n{action}".encode()).hexdigest()


def _checker(kind: ActionKind, server_id: str) -> Callable[[str, Action | None], None]:
    def check(status: str, pending: Action | None) -> None:
        if pending is not None:
            raise Problem(
                409,
                f"server {server_id} already has a {pending.action} action ({pending.id}) "
                f"{pending.state}; wait for it to finish",
                kind="action-pending",
            )
        if status not in ALLOWED[kind]:
            raise Problem(
                409,
                f"server {server_id} is {status}; {kind} needs it {' or '.join(ALLOWED[kind])}",
                kind="impossible-transition",
            )

    return check


class ActionService:
    """Accepts actions, runs them on a few workers, and recovers them across restarts."""

    def __init__(
        self,
        store: ActionRepo,
        servers: Servers,
        bus: Bus,
        cfg: ActionsConfig,
        *,
        queue: ActionQueue | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.store = store
        self._servers = servers
        self._bus = bus
        self._queue: ActionQueue = queue or LocalQueue()
        self._executor = executor or build_executor(cfg)
        self._worker_count = cfg.workers
        self._workers: list[asyncio.Task[None]] = []

    async def submit(self, new: NewAction) -> tuple[Action, bool]:
        """Accept an action (False: an Idempotency-Key replay of an earlier one), or raise the
        404/409/422 Problem. Acknowledged only after COMMIT, so a crash cannot lose it."""
        action, created = await self.store.create(new, _checker(new.action, new.server_id))
        if created:
            self._announce(action)
            await self._queue.put(action.id)
        return action, created

    async def start(self, *, recover: bool = True) -> None:
        """Settle what the last run left behind, then start the workers. ``recover=False``
        when other cores of the deployment are alive: the actions running are theirs."""
        await self._executor.start()
        if recover:
            await self._recover()
        else:
            log.info("actions: other cores are alive; the running actions are left to them")
        self._workers = [
            asyncio.create_task(self._work(), name=f"action-worker-{n}")
            for n in range(self._worker_count)
        ]

    async def _recover(self) -> None:
        failed, queued = await self.store.recover(INTERRUPTED)
        for action in failed:
            await self._set_status(action, action.previous_status)
            self._announce(action)
        for action in queued:
            await self._queue.put(action.id)
        if failed or queued:
            log.info(
                "actions: %d interrupted ones marked failed, %d queued ones resumed",
                len(failed),
                len(queued),
            )

    async def stop(self) -> None:
        """Stop the workers; whatever they were running goes back to queued."""
        for task in self._workers:
            task.cancel()
        # Workers log their own failures; cancellation is the only way out of their loop.
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        await self._queue.close()
        await self._executor.close()

    async def pending(self) -> list[ActionUpdated]:
        """Queued and running actions as events, oldest last: the websocket snapshot of the
        ``actions`` topic. One per server at most, so the cap is generous."""
        items, _ = await self.store.page(None, PENDING, SNAPSHOT_LIMIT, None)
        return [_event(a) for a in items]

    def _announce(self, action: Action) -> None:
        self._bus.publish(TOPIC, _event(action), EVENT)

    async def _work(self) -> None:
        while True:
            action_id = await self._queue.get()
            try:
                await self._run(action_id)
            except Exception:  # one bad action must not end the worker
                log.exception("action %s: unexpected error", action_id)
            finally:
                await self._queue.done(action_id)

    async def _run(self, action_id: str) -> None:
        """Run one queued action to its end (or put it back if the daemon stops meanwhile)."""
        try:
            action = await self.store.get(action_id)
            server = await self._servers.get("servers", action.server_id)
        except Problem:  # deleted (with its server) while it waited
            return
        assert isinstance(server, Server)
        running = await self.store.move(action_id, "queued", "running")
        if running is None:  # a duplicate delivery: another worker has it
            return
        self._announce(running)
        during, after = MOVES[running.action]
        try:
            await self._servers.update("servers", server.id, ServerPatch(status=during))
            outcome = await self._executor.run(Job(running, server))
        except asyncio.CancelledError:
            await self._put_back(running)
            raise
        except Problem as exc:  # the server was deleted as the action started
            outcome = Outcome(ok=False, error=exc.detail)
        except Exception as exc:
            log.exception("action %s: executor failed", action_id)
            outcome = Outcome(ok=False, error=f"executor error ({type(exc).__name__})")
        try:
            await self._settle(running, outcome, during, after)
        except asyncio.CancelledError:  # stopped while settling: finish the job next start
            await self._put_back(running)
            raise

    async def _settle(
        self, action: Action, outcome: Outcome, during: ServerStatus, after: ServerStatus
    ) -> None:
        if outcome.ok:
            await self._set_status(action, after)
            done = await self.store.move(action.id, "running", "succeeded", result=outcome.result)
        else:
            await self._set_status(action, action.previous_status)
            done = await self.store.move(
                action.id, "running", "failed", error=outcome.error, result=outcome.result
            )
        if done is not None:
            self._announce(done)

    async def _put_back(self, action: Action) -> None:
        """Undo the start of an action the daemon is abandoning, so it runs after the restart."""
        back = await self.store.move(action.id, "running", "queued")
        if back is not None:
            await self._set_status(action, action.previous_status)
            self._announce(back)

    async def _set_status(self, action: Action, status: ServerStatus) -> None:
        """Set the server's status, unless someone changed it since the action set its own."""
        during = MOVES[action.action][0]

        def unchanged(current: AnyEntity) -> None:
            if getattr(current, "status", None) != during:
                raise _Moved

        try:
            await self._servers.update(
                "servers", action.server_id, ServerPatch(status=status), unchanged
            )
        except (_Moved, Problem):  # changed by someone else, or the server is gone
            return
