"""The exporter: the app's own CollectorRegistry, and a scrape that keeps the loop responsive.

A scrape collects the small families (daemon internals, servers, requests, process) through
their collectors, then snapshots and renders the monitors in steps of a few milliseconds,
giving the loop back between steps. Not in a thread: a CPU-bound Python thread holds the GIL,
and the loop then waits up to a switch interval (5 ms) to take it back after each syscall it
makes (the convoy effect), so probes would queue behind the rendering anyway. A gzip thread
compresses each segment while the next renders (deflate runs without the GIL), so a scrape
costs about the larger of the two, not their sum (on one core, their sum: hence ISA-L).
Segments are deflated independently and joined into one gzip member (as pigz does), so the
ones exposition.py keeps are compressed once and then kept in that form only.
Concurrent scrapes of one format share a rendering.
"""

from __future__ import annotations

import asyncio
import queue
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from isal import isal_zlib
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from ..store.protocols import HistorySink
from .daemon import DaemonCollector, RedisProbe
from .exposition import Exposition, Packed, Segment
from .labels import InventoryLabels
from .monitors import MonitorCollector, Snapshot
from .requests import RequestStats
from .servers import ServerCollector
from .views import (
    EngineFigures,
    HubFigures,
    LatestSamples,
    NotifierFigures,
    SchedulerFigures,
)

OPENMETRICS = "application/openmetrics-text"
# Seconds of rendering between two turns of the loop: short enough that no probe waits
# noticeably, long enough that a scrape of 25,000 monitors (~100 ms of work) takes ~20 turns,
# not ~150 (a turn under load is a few ms of other work, and each one lengthened the scrape).
STEP = 0.005
EOF_LINE = b"# EOF\n"
# ISA-L's deflate, not zlib's: at level 1 it packs 25,000 monitors' fresh text (~15 MB) about
# 7x faster than zlib at its level 1, and smaller. On one core the gzip thread shares the CPU
# with the loop, so its time was most of a scrape's (tests/bench/scale.py). Levels are 0-3.
GZIP_LEVEL = 1
# Bytes of text the loop may render ahead of the gzip thread, and how far the thread then
# catches up before the loop renders on. Unbounded, nearly the whole exposition (~30 MB for
# 25,000 monitors) waited in the queue whenever the thread fell behind (on one core it does),
# and that set the daemon's peak RSS. Resuming well below the bound keeps the waits few: each
# costs a turn of the loop, which is long when the loop is busy.
AHEAD = 4 << 20
RESUME = 1 << 20
# A gzip member's header (deflate, no name, no mtime, unknown OS) and the empty final block
# that ends the concatenated raw deflate segments.
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
FINAL_BLOCK = b"\x03\x00"


def _not_configured() -> bool | None:
    return None


@dataclass(frozen=True)
class Scrape:
    """One rendered exposition, in the parts it was made of (sent one by one: joining 17 MB
    for 10,000 monitors, or the compressed segments, would only cost another copy)."""

    parts: tuple[bytes, ...]
    content_type: str
    gzipped: bool

    @property
    def length(self) -> int:
        """Content-Length."""
        return sum(map(len, self.parts))

    @property
    def body(self) -> bytes:
        """The whole body at once (tests and tools)."""
        return b"".join(self.parts)


class _Frozen(Collector):
    """Families collected on the loop, handed to prometheus_client's encoder in a thread."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


class Exporter:
    """Owns the registry, the HTTP request counters and the ``redis_up`` hook."""

    def __init__(
        self,
        *,
        view: EngineFigures,
        scheduler: SchedulerFigures,
        history: HistorySink,
        sampler: LatestSamples,
        hub: HubFigures,
        notifier: NotifierFigures,
        labels: InventoryLabels,
        version: str,
        token: str = "",
        redis_up: RedisProbe | None = None,
        collectors: Sequence[Collector] = (),
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.labels = labels
        self.http = RequestStats()
        # [metrics] token: what a scrape must send as a bearer token ("" = none). Kept here,
        # not read from the config, so a reload (SIGHUP) can rotate it without a restart.
        self.token = token
        # () -> True/False from whoever owns the Redis connection; None when not configured.
        self.redis_up: RedisProbe = redis_up or _not_configured
        self.monitors = MonitorCollector(view, labels)
        self._exposition = Exposition()
        daemon = DaemonCollector(
            scheduler=scheduler,
            history=history,
            hub=hub,
            notifier=notifier,
            redis_up=self._redis_state,
            version=version,
        )
        # Small families, collected on the loop at the start of a scrape (well under 1 ms).
        # collectors: more small families (the assistant's, Redis's) from the app factory.
        self._state: tuple[Collector, ...] = (
            daemon,
            ServerCollector(sampler, labels),
            self.http,
            *collectors,
        )
        # prometheus_client's process (/proc/self), platform and GC collectors.
        self._system: tuple[Collector, ...] = (
            ProcessCollector(registry=self.registry),
            PlatformCollector(registry=self.registry),
            GCCollector(registry=self.registry),
        )
        for collector in (*self._state, self.monitors):
            self.registry.register(collector)
        self._running: dict[tuple[str, bool], asyncio.Future[Scrape]] = {}

    def rotate_token(self, token: str) -> None:
        """Take a new scrape token (SIGHUP): the next scrape must present it."""
        self.token = token

    def _redis_state(self) -> bool | None:
        return self.redis_up()  # looked up per scrape: the link can come and go

    async def scrape(self, accept: str, gzip: bool) -> Scrape:
        """Render for an Accept header (text or OpenMetrics), gzipped when asked."""
        encoder, content_type = choose_encoder(accept)
        key = (content_type, gzip)
        running = self._running.get(key)
        if running is None:
            running = asyncio.ensure_future(self._render(encoder, content_type, gzip))
            self._running[key] = running

            def forget(done: asyncio.Future[Scrape]) -> None:
                if self._running.get(key) is done:
                    del self._running[key]

            running.add_done_callback(forget)
        # Shielded: a scraper that hangs up does not cancel the rendering others wait for.
        return await asyncio.shield(running)

    async def _render(
        self, encoder: Callable[[Collector], bytes], content_type: str, gzip: bool
    ) -> Scrape:
        openmetrics = content_type.startswith(OPENMETRICS)
        families = [f for c in (*self._state, *self._system) for f in c.collect()]
        head = encoder(_Frozen(families))
        sink = _Gzip() if gzip else _Chunks()
        try:
            await sink.put(Segment(head.removesuffix(EOF_LINE) if openmetrics else head))
            snap = await self.monitors.snapshot_sliced(STEP)
            deadline = time.perf_counter() + STEP
            for segment in self._exposition.render(snap, openmetrics, gzip):
                if await sink.put(segment):  # waited: the loop ran meanwhile
                    deadline = time.perf_counter() + STEP
                elif time.perf_counter() >= deadline:
                    await asyncio.sleep(0)  # the loop runs what is due before the next step
                    deadline = time.perf_counter() + STEP
            if openmetrics:
                await sink.put(Segment(EOF_LINE))
            return Scrape(await sink.finish(), content_type, gzip)
        finally:
            sink.close()  # a failed or cancelled scrape must not leave the thread waiting

    def snapshot(self) -> Snapshot:
        """The monitor figures a scrape would render (benchmarks time this part alone)."""
        return self.monitors.snapshot()


class _Chunks:
    """Segments joined at the end: the body of an uncompressed scrape."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    async def put(self, segment: Segment) -> bool:
        # Plain scrapes get no kept (packed) segments: exposition.py renders them afresh.
        assert isinstance(segment.body, bytes)
        self._chunks.append(segment.body)
        return False

    async def finish(self) -> tuple[bytes, ...]:
        return tuple(self._chunks)

    def close(self) -> None:
        self._chunks.clear()


class _Gzip:
    """One gzip member from segments deflated by a worker thread as they come."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        # Each segment with the bytes of text the loop counted of it (0: packed already).
        self._handoff: queue.SimpleQueue[tuple[Segment, int] | None] = queue.SimpleQueue()
        self._open = True
        # Text handed over, and of it compressed: each written by one thread only.
        self._given = 0
        self._taken = 0
        self._caught_up: asyncio.Future[None] | None = None  # the loop waits on the thread
        self._done = self._loop.run_in_executor(None, self._compress)

    async def put(self, segment: Segment) -> bool:
        """Hand a segment over. When the thread has more than AHEAD bytes of text still to
        compress, wait (the loop running other work) until it is down to RESUME; True then."""
        body = segment.body
        given = len(body) if isinstance(body, bytes) else 0
        self._handoff.put((segment, given))
        self._given += given
        if self._given - self._taken <= AHEAD:
            return False
        while self._given - self._taken > AHEAD:
            self._caught_up = self._loop.create_future()
            # Checked again with the future in place: the thread reads it after counting.
            if self._given - self._taken > AHEAD:
                # A thread that failed never catches up: its error ends the scrape here.
                await asyncio.wait(
                    (self._caught_up, self._done), return_when=asyncio.FIRST_COMPLETED
                )
                if self._done.done():
                    self._done.result()
        self._caught_up = None
        return True

    def _compress(self) -> tuple[bytes, ...]:
        out = [GZIP_HEADER]
        crc = size = 0
        while (handed := self._handoff.get()) is not None:
            segment, given = handed
            body = segment.body  # read once: another scrape's thread may pack it meanwhile
            if isinstance(body, Packed):
                out.append(body.deflated)
                crc = _follow(crc, body)
                size += body.size
            else:
                # Raw deflate (wbits -15), flushed to a byte boundary without ending the
                # stream: segments concatenate into one valid deflate stream.
                packer = isal_zlib.compressobj(GZIP_LEVEL, isal_zlib.DEFLATED, -15)
                deflated = packer.compress(body) + packer.flush(isal_zlib.Z_SYNC_FLUSH)
                out.append(deflated)
                if segment.labels is not None:  # a kept segment: compressed once, text let go
                    packed = Packed(deflated, len(body), isal_zlib.crc32(body))
                    segment.body = packed
                    crc = _follow(crc, packed)
                else:
                    crc = isal_zlib.crc32(body, crc)
                size += len(body)
            # What the loop counted, even when another scrape's thread packed the segment
            # between the loop's handing it over as text and this thread's reading it:
            # uncounted, the loop would wait for this thread forever.
            self._taken += given
            waiting = self._caught_up
            if waiting is not None and self._given - self._taken <= RESUME:
                self._loop.call_soon_threadsafe(_release, waiting)
        out.append(FINAL_BLOCK)
        out.append(struct.pack("<II", crc, size & 0xFFFFFFFF))
        return tuple(out)

    async def finish(self) -> tuple[bytes, ...]:
        self.close()
        return await self._done

    def close(self) -> None:
        if self._open:
            self._open = False
            self._handoff.put(None)  # the end: the thread adds the trailer and returns


def _follow(crc: int, packed: Packed) -> int:
    """The CRC-32 of (what crc covers + packed's text), without that text: zlib's crc32_combine
    (a few GF(2) matrix steps in the text's length), which ISA-L's binding exposes."""
    return isal_zlib.crc32_combine(crc, packed.crc, packed.size)


def _release(waiting: asyncio.Future[None]) -> None:
    if not waiting.done():  # the scrape may have been cancelled, or released already
        waiting.set_result(None)
