"""A remote probe worker: takes one location's jobs from Redis, probes, reports results.

Workers of one location share the ``workers`` consumer group of that location's jobs stream,
so each job runs once; a worker that dies with jobs in hand loses them to the others, which
claim entries idle longer than ``[redis] claim_idle`` (XAUTOCLAIM). A job is acknowledged only
after its result is on the results stream. Jobs past their expiry (the next round has been
issued) are acknowledged unrun. While Redis is away the worker waits and reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import msgspec

from ..config import Config
from ..redislink.client import BLOCK_MS, ERRORS, RedisLink, ensure_group
from ..redislink.keys import WORKER_GROUP
from ..redislink.tasks import cancel_and_wait
from .job import JOB_FIELD, RESULT_FIELD, ProbeJob, outcome_of
from .probes import ProbeEnv, ProbeResult, run_probe
from .probes.guard import AddressGuard, make_session

log = logging.getLogger("dragonopsd.worker")

DRAIN = 10.0  # seconds a stopping worker waits for the probes it has started
HEARTBEAT = 2.0  # seconds between "alive" marks (the core counts a worker gone after 10 s)


class Worker:
    """One worker process's loop; ``run`` until cancelled, then ``stop`` drains in-flight jobs."""

    def __init__(self, cfg: Config, link: RedisLink, location: str, concurrency: int) -> None:
        self._cfg = cfg
        self._link = link
        self.location = location
        self.name = link.name
        self._stream = link.keys.jobs(location)
        self._slots = asyncio.Semaphore(concurrency)
        self._concurrency = concurrency
        # Entries this worker is running: never started twice (a re-read or a self-claim), and
        # their idle time is reset every claim_idle/3 so peers do not take over a slow probe.
        self._inflight: set[bytes] = set()
        self.crashed = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._decode = msgspec.json.Decoder(ProbeJob).decode
        self._encode = msgspec.json.Encoder().encode
        self._env: ProbeEnv | None = None
        self.done = 0
        self.expired = 0
        self.malformed = 0
        # Set by stop(): the loops check it, because a cancellation alone can be lost inside
        # redis-py on Python 3.11 (redislink/tasks.py).
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Stop taking jobs; run() then finishes the ones in hand and returns."""
        self._stopping.set()

    async def run(self) -> None:
        """Heartbeat, read jobs and claim abandoned ones until cancelled."""
        guard = AddressGuard(self._cfg.probes)
        session = make_session(self._cfg.probes, guard)
        self._env = ProbeEnv(session, guard, self._cfg.probes.user_agent)
        beat = asyncio.create_task(self._heartbeat(), name="worker-heartbeat")
        renew = asyncio.create_task(self._renew(), name="worker-renew")
        consume = asyncio.create_task(self._consume(), name="worker-consume")
        stopping = asyncio.create_task(self._stopping.wait())
        try:  # until stop(), or until the consumer fails on something it cannot retry
            await asyncio.wait({stopping, consume}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if consume.done() and not consume.cancelled() and consume.exception() is not None:
                self.crashed = True
                log.error("job consumer failed", exc_info=consume.exception())
            await cancel_and_wait(consume)
            await self._drain()  # heartbeat still on: results in hand can still be sent
            await cancel_and_wait(renew)
            await cancel_and_wait(beat)
            await session.close()
            with contextlib.suppress(*ERRORS):
                await self._link.client.zrem(self._link.keys.workers(self.location), self.name)

    async def _heartbeat(self) -> None:
        key = self._link.keys.workers(self.location)
        locations = self._link.keys.locations
        while True:
            if await self._link.ping():
                now = self._link.now()  # the core compares it with its own view of Redis's clock
                try:
                    pipe = self._link.client.pipeline(transaction=False)
                    pipe.zadd(key, {self.name: now})
                    pipe.zremrangebyscore(key, "-inf", now - 60)  # long-gone workers
                    pipe.zadd(locations, {self.location: now})  # GET /api/locations lists it
                    pipe.zremrangebyscore(locations, "-inf", now - 60)
                    await pipe.execute()
                except ERRORS as exc:
                    self._link.failed(exc, "heartbeat")
            await asyncio.sleep(HEARTBEAT)

    async def _consume(self) -> None:
        backoff = 0.2
        claimed_at = 0.0
        idle = self._link.cfg.claim_idle
        while True:
            await self._link.wait_up()
            try:
                await ensure_group(self._link, self._stream, WORKER_GROUP, start="$")
                backoff = 0.2
                await self._claim_own_pending()
                while True:
                    now = time.monotonic()
                    if now - claimed_at > idle / 2:
                        claimed_at = now
                        await self._claim_abandoned()
                    await self._read()
            except ERRORS as exc:
                self._link.failed(exc, "jobs")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _renew(self) -> None:
        """Every claim_idle/3, reset the idle time of the jobs in hand (XCLAIM to ourselves,
        ids only). A task of its own: the reader can sit in a blocking read for a second."""
        while True:
            await asyncio.sleep(self._link.cfg.claim_idle / 3)
            if self._inflight and self._link.up:
                try:
                    await self._link.client.xclaim(
                        self._stream, WORKER_GROUP, self.name, 0, list(self._inflight), justid=True
                    )
                except ERRORS as exc:
                    self._link.failed(exc, "renew")

    async def _read(self) -> None:
        await self._slots.acquire()  # read only when a slot is free: unread jobs stay shareable
        self._slots.release()
        free = max(1, min(16, self._concurrency - len(self._inflight)))
        reply: Any = await self._link.client.xreadgroup(
            WORKER_GROUP, self.name, {self._stream: ">"}, count=free, block=BLOCK_MS
        )
        for entry_id, fields in reply[0][1] if reply else []:
            await self._start(entry_id, fields)

    async def _claim_own_pending(self) -> None:
        """Jobs this worker name took before a restart and never acknowledged."""
        reply: Any = await self._link.client.xreadgroup(
            WORKER_GROUP, self.name, {self._stream: "0"}, count=1000
        )
        for entry_id, fields in reply[0][1] if reply else []:
            await self._start(entry_id, fields)

    async def _claim_abandoned(self) -> None:
        """Take over jobs another worker of this location took and went silent on."""
        idle_ms = int(self._link.cfg.claim_idle * 1000)
        start = "0-0"
        for _ in range(10):  # at most 1,000 per pass; the rest wait for the next pass
            reply: Any = await self._link.client.xautoclaim(
                self._stream, WORKER_GROUP, self.name, idle_ms, start_id=start, count=100
            )
            start, entries = reply[0], reply[1]
            for entry_id, fields in entries:
                log.info("claimed job %s from a silent worker", entry_id)
                await self._start(entry_id, fields)
            if start in (b"0-0", "0-0"):
                return

    async def _start(self, entry_id: Any, fields: Any) -> None:
        if entry_id in self._inflight:
            return  # running already (re-read after a reconnect, or claimed from ourselves)
        raw = fields.get(JOB_FIELD) if fields else None
        try:
            job = self._decode(raw) if raw is not None else None
        except msgspec.DecodeError as exc:
            log.warning("dropping a malformed job %s: %s", entry_id, exc)
            job = None
        if job is None or job.location != self.location:
            self.malformed += 1
            await self._ack(entry_id)
            return
        await self._slots.acquire()
        self._inflight.add(entry_id)
        task = asyncio.create_task(self._run(entry_id, job), name=f"job-{job.monitor_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, entry_id: Any, job: ProbeJob) -> None:
        try:
            if self._link.now() > job.expires:  # the next round is out: running is moot
                self.expired += 1
                await self._ack(entry_id)
                return
            result = await self._probe(job)
            outcome = outcome_of(job, self.name, self._link.now(), result)
            while True:  # the result must land before the job is acknowledged
                try:
                    await self._link.client.xadd(
                        self._link.keys.results_for(job.reply_to),
                        {RESULT_FIELD: self._encode(outcome)},
                        maxlen=self._link.cfg.stream_maxlen,
                        approximate=True,
                    )
                    break
                except ERRORS as exc:
                    self._link.failed(exc, "result")
                    await self._link.wait_up()
            await self._ack(entry_id)
            self.done += 1
        except Exception:
            log.exception("job %s for monitor %s failed", entry_id, job.monitor_id)
        finally:
            self._inflight.discard(entry_id)
            self._slots.release()

    async def _probe(self, job: ProbeJob) -> ProbeResult:
        assert self._env is not None
        try:
            async with asyncio.timeout(job.spec.timeout + 5):
                return await run_probe(job.spec, self._env)
        except TimeoutError:
            return ProbeResult(context={}, error=f"timeout after {job.spec.timeout}s")

    async def _ack(self, entry_id: Any) -> None:
        """Acknowledge and delete the job: it carries the monitor's spec (request headers and
        body may hold credentials), which should not wait in Redis for the stream's trim."""
        try:
            await self._link.ack_and_delete(self._stream, WORKER_GROUP, entry_id)
        except ERRORS as exc:  # unacknowledged: it is re-run after claim_idle, harmlessly
            self._link.failed(exc, "ack")

    async def _drain(self) -> None:
        """Let jobs in flight finish (and report), up to DRAIN seconds."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=DRAIN)
