"""The dispatcher: routes events to channels and delivers them, never in the prober's way.

``publish`` is synchronous and only touches memory: it dedupes, picks the channels whose
events and scope match, and drops the event into each one's bounded queue (full: dropped and
counted). One worker per channel drains its queue in order, retrying with backoff, so a dead
receiver delays only its own channel. Logs name channels by id and name, never by URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import msgspec

from ..bus import Bus
from ..clock import now_iso
from ..config import ProbesConfig
from ..model.inventory import FieldError
from ..model.monitor import Scope
from ..netguard import AddressGuard, GuardedResolver, guarded_socket_factory
from ..problem import Problem
from ..store.protocols import ChannelRepo
from . import mail, webhook
from .apprise_sender import AppriseSender
from .channels import Channel
from .delivery import Attempt, ChannelStats, DeliveryPolicy, DeliveryResult
from .event import ROUTED_AS, NotificationEvent
from .refs import SecretLookup, SecretMissing

log = logging.getLogger("dragonopsd.notify")

Job = tuple[NotificationEvent, str]  # the event and its delivery id (kept across retries)
# Bus topic of channel writes: the core that took the API call reloads at once, and every
# other core of the deployment reloads when the event reaches it (else it would notify through
# the channels it loaded at start).
CHANNELS_TOPIC = "notify.channels"
# Past this many remembered (monitor, family) pairs, forget the ones older than the window.
_DEDUPE_SWEEP = 10_000
WARM_AFTER = 10.0  # seconds after the start that Apprise loads when no channel needs it yet


@dataclass
class _Lane:
    """One channel's queue and the worker draining it."""

    queue: asyncio.Queue[Job]
    task: asyncio.Task[None]


def _family(event: NotificationEvent) -> str:
    # Certificate warnings are deduped apart from up/down, so neither hides the other.
    return "certificate" if event.event == "certificate" else "state"


def test_event(channel: Channel) -> NotificationEvent:
    """The event POST /api/notifications/{id}/test sends."""
    return NotificationEvent(
        event="test",
        monitor_id="test",
        monitor_name=f"test of {channel.name}",
        kind="test",
        target="",
        status="test",
        previous=None,
        message=f"dragonopsd reaches notification channel '{channel.name}'",
        at=now_iso(),
        scope=Scope(monitor_id="test"),
    )


class Dispatcher:
    """Owns the channels in memory, the HTTP session and one delivery worker per channel."""

    def __init__(
        self,
        store: ChannelRepo,
        *,
        session_factory: Callable[[], aiohttp.ClientSession] | None = None,
        clock: Callable[[], float] = time.monotonic,
        policy: DeliveryPolicy | None = None,
        guard: AddressGuard | None = None,
        secrets: SecretLookup | None = None,
    ) -> None:
        self.store = store
        # Reads the ${secret:NAME} references of channels from the config file, per delivery.
        self._secrets = secrets
        self.policy = policy or DeliveryPolicy()
        self.stats: dict[str, ChannelStats] = {}
        self.deduped = 0
        self._session_factory = session_factory or self._default_session
        self._clock = clock
        # Default: [probes] defaults (link-local and metadata refused, no deny_cidrs).
        self.guard = guard if guard is not None else AddressGuard(ProbesConfig())
        self._apprise = AppriseSender(self.guard, timeout=self.policy.attempt_timeout)
        self._session: aiohttp.ClientSession | None = None
        self._channels: dict[str, Channel] = {}
        self._lanes: dict[str, _Lane] = {}
        self._retired: set[asyncio.Task[None]] = set()
        self._warming: asyncio.Task[None] | None = None  # Apprise's plugins loading
        self._recent: dict[tuple[str, str], tuple[str, str, float]] = {}
        self._reload_lock = asyncio.Lock()
        self._running = False

    def _default_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            # Names are checked once resolved, and every address again right at connect().
            resolver=GuardedResolver(None, self.guard),
            socket_factory=guarded_socket_factory(self.guard),
            limit=100,
        )
        return aiohttp.ClientSession(
            connector=connector,
            headers={"User-Agent": "dragonopsd"},
            # Attempts are bounded by policy.attempt_timeout instead.
            timeout=aiohttp.ClientTimeout(total=None),
        )

    async def start(self) -> None:
        """Open the session (inside the running loop) and load the channels."""
        self._session = self._session_factory()
        self._running = True
        sealed = await self.store.seal_pending()
        if sealed:
            log.info("sealed the credentials of %d notification channel(s)", sealed)
        await self.reload()  # warms Apprise first when a channel needs it
        if not self._apprise.warming:
            # No Apprise channel yet: load it a little after the start (its ~0.3 s of CPU
            # then stays out of the start to READY, issue 20), before anyone is likely to
            # POST one, whose body is read on the loop.
            self._warming = asyncio.create_task(self._warm_later(), name="apprise-warm")

    async def follow(self, bus: Bus) -> None:
        """Reload whenever another core writes a channel, until cancelled."""
        sub = bus.subscribe([CHANNELS_TOPIC])
        try:
            while True:
                event = await sub.queue.get()
                if not isinstance(event.data, msgspec.Raw):
                    continue  # published by this process, which reloaded already
                try:
                    await self.reload()
                except Exception:  # a store hiccup: the next write reloads again
                    log.exception("reloading notification channels after another core's write")
        finally:
            bus.unsubscribe(sub)

    async def _warm_later(self) -> None:
        await asyncio.sleep(WARM_AFTER)
        try:
            await self._apprise.warm()
        except Exception:  # the first Apprise channel tries again
            log.exception("loading Apprise's plugins failed")

    async def stop(self) -> None:
        """Let queued notifications go out for up to ``drain_timeout``, then stop the workers
        and close the session."""
        self._running = False
        if self._warming is not None and not self._warming.done():
            self._warming.cancel()
        lanes = list(self._lanes.values())
        if lanes and self.policy.drain_timeout > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.policy.drain_timeout):
                    await asyncio.gather(*(lane.queue.join() for lane in lanes))
        for ident in list(self._lanes):
            self._close_lane(ident)
        await asyncio.gather(*self._retired, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._apprise.close()

    async def reload(self) -> None:
        """Re-read the channels (after every API write): new ones get a worker, removed or
        disabled ones lose theirs, changed ones are used from their next attempt on."""
        async with self._reload_lock:
            fresh: dict[str, Channel] = {}
            rows = await self.store.list()
            if any(r.kind == "apprise" and r.enabled and not r.locked for r in rows):
                await self._apprise.warm()
            for row in rows:
                if not row.enabled or row.locked:
                    continue  # a locked row was logged by the store
                try:
                    fresh[row.id] = Channel.parse(row)
                except (msgspec.ValidationError, FieldError):
                    log.error(
                        "notification channel %s (%s) is not valid; skipped", row.id, row.name
                    )
            for ident in self._lanes.keys() - fresh.keys():
                self._close_lane(ident)
            self._channels = fresh
            for ident, channel in fresh.items():
                stats = self.stats.setdefault(ident, ChannelStats(channel.name, channel.kind))
                stats.name = channel.name
                if self._running and ident not in self._lanes:
                    self._open_lane(ident)
            for ident in self.stats.keys() - fresh.keys():
                del self.stats[ident]

    def _open_lane(self, ident: str) -> None:
        queue: asyncio.Queue[Job] = asyncio.Queue(self.policy.queue_size)
        task = asyncio.create_task(self._work(ident, queue), name=f"notify-{ident}")
        self._lanes[ident] = _Lane(queue, task)

    def _close_lane(self, ident: str) -> None:
        lane = self._lanes.pop(ident)
        lane.task.cancel()
        self._retired.add(lane.task)
        lane.task.add_done_callback(self._retired.discard)
        left = lane.queue.qsize()
        if left:
            if ident in self.stats:
                self.stats[ident].dropped += left
            log.warning("notification channel %s: %d queued notification(s) dropped", ident, left)

    def backlog(self) -> dict[str, int]:
        """Queued notifications per channel id."""
        return {ident: lane.queue.qsize() for ident, lane in self._lanes.items()}

    def publish(self, event: NotificationEvent) -> None:
        """Queue event for every matching channel; returns at once and never raises.

        Call it from the event loop's thread (the scheduler does): it touches asyncio queues.
        """
        try:
            # Repeats, acknowledgements and manual incidents' news are meant to come again:
            # only the probe's own transitions are deduped.
            routed = ROUTED_AS.get(event.event)
            if routed is None and self._duplicate(event):
                self.deduped += 1
                return
            route = routed or event.event
            scopes = (event.scope, *event.also)
            for channel in self._channels.values():
                if any(channel.wants(route, where) for where in scopes):
                    self._enqueue(channel, event)
        except Exception:  # the prober must never pay for a notification bug
            log.exception("notification for monitor %s was not published", event.monitor_id)

    def _duplicate(self, event: NotificationEvent) -> bool:
        """Same monitor, event and status as the last one sent within the window."""
        key = (event.monitor_id, _family(event))
        now = self._clock()
        last = self._recent.get(key)
        if (
            last is not None
            and last[:2] == (event.event, event.status)
            and now - last[2] < self.policy.dedupe_window
        ):
            return True
        self._recent[key] = (event.event, event.status, now)
        if len(self._recent) > _DEDUPE_SWEEP:
            cutoff = now - self.policy.dedupe_window
            self._recent = {k: v for k, v in self._recent.items() if v[2] >= cutoff}
        return False

    def _enqueue(self, channel: Channel, event: NotificationEvent) -> None:
        lane = self._lanes.get(channel.id)
        stats = self.stats[channel.id]
        try:
            if lane is None:
                raise asyncio.QueueFull
            lane.queue.put_nowait((event, str(uuid.uuid4())))
        except asyncio.QueueFull:
            stats.dropped += 1
            if stats.dropped == 1 or stats.dropped % 100 == 0:
                log.warning(
                    "notification channel %s (%s) is backed up: %d notification(s) dropped",
                    channel.id,
                    channel.name,
                    stats.dropped,
                )

    async def _work(self, ident: str, queue: asyncio.Queue[Job]) -> None:
        while True:
            event, delivery_id = await queue.get()
            try:
                await self._deliver(ident, event, delivery_id)
            except Exception as exc:  # keep the worker alive; the type is all that is safe
                if ident in self.stats:
                    self.stats[ident].failed += 1
                log.error(
                    "notification channel %s: delivery crashed (%s)", ident, type(exc).__name__
                )
            finally:
                queue.task_done()

    async def _deliver(self, ident: str, event: NotificationEvent, delivery_id: str) -> None:
        """Try until delivered, refused for good, or out of attempts."""
        for attempt in range(1, self.policy.max_attempts + 1):
            channel = self._channels.get(ident)
            stats = self.stats.get(ident)
            if channel is None or stats is None:
                return  # deleted or disabled meanwhile
            result = await self._attempt(channel, event, delivery_id)
            if result.ok:
                stats.sent += 1
                return
            stats.last_error = result.reason
            if not result.retry or attempt == self.policy.max_attempts:
                stats.failed += 1
                log.warning(
                    "notification channel %s (%s): %s for monitor %s not delivered after %d "
                    "attempt(s): %s",
                    ident,
                    channel.name,
                    event.event,
                    event.monitor_id,
                    attempt,
                    result.reason,
                )
                return
            stats.retried += 1
            delay = self.policy.backoff(attempt, result.retry_after)
            log.info(
                "notification channel %s (%s): attempt %d failed (%s), retrying in %.1fs",
                ident,
                channel.name,
                attempt,
                result.reason,
                delay,
            )
            await asyncio.sleep(delay)

    async def _attempt(
        self, channel: Channel, event: NotificationEvent, delivery_id: str
    ) -> Attempt:
        timeout = self.policy.attempt_timeout
        try:
            async with asyncio.timeout(timeout):
                try:
                    channel = await channel.resolved(self._secrets)
                except SecretMissing as exc:
                    return Attempt.failed(str(exc), retry=False)
                except (msgspec.ValidationError, FieldError):  # the value is not logged
                    return Attempt.failed("a referenced secret does not fit its field", retry=False)
                if channel.kind == "email":
                    return await mail.send(channel, event, delivery_id, guard=self.guard)
                if channel.kind == "apprise":
                    return await self._apprise.send(channel, event, delivery_id)
                if self._session is None:
                    return Attempt.failed("notifications are stopped", retry=False)
                return await webhook.post(
                    self._session, channel, event, delivery_id, guard=self.guard
                )
        except TimeoutError:
            return Attempt.unreached(f"timed out after {timeout:g}s", retry=True)

    async def test(self, channel_id: str) -> DeliveryResult:
        """Send one test event to a channel (enabled or not), now, without retries."""
        row = await self.store.get(channel_id)
        if row.locked:
            raise Problem(409, f"notification channel {channel_id}: its credentials do not open")
        try:
            channel = Channel.parse(row)
        except (msgspec.ValidationError, FieldError):
            raise Problem(
                409, f"notification channel {channel_id} is not valid; PATCH it"
            ) from None
        if self._session is None:
            raise Problem(503, "notifications are not running")
        loop = asyncio.get_running_loop()
        started = loop.time()
        result = await self._attempt(channel, test_event(channel), str(uuid.uuid4()))
        if not result.ok:
            log.info(
                "notification channel %s (%s): test failed: %s", row.id, row.name, result.reason
            )
        return DeliveryResult(
            channel_id=row.id,
            ok=result.ok,
            attempts=1,
            status=result.status,
            error=result.error,
            elapsed_ms=round((loop.time() - started) * 1000, 1),
        )
