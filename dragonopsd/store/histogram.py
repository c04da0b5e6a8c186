"""Mergeable latency histograms (log-spaced buckets, compact binary form, interpolated quantiles)
and the Bucket of heartbeats built on them.

Bucket i >= 1 holds [0.1 ms * 2**((i-1)/8), 0.1 ms * 2**(i/8)): each is 9.05 % wide, so a
quantile read back lies in the same bucket as the exact sample and is within 9.05 % of it
(bucket 0 holds everything under 0.1 ms). Merging two histograms adds their counts, which is what
lets rollups answer p50/p95/p99 for any window without keeping the samples.

The binary form is built for many small histograms (one per rollup bucket): runs of adjacent
buckets, one 4-bit count per bucket. An hour of one-minute checks usually takes 10-15 bytes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

SUB_BUCKETS = 8  # buckets per doubling
MIN_MS = 0.1  # bucket 0 is [0, MIN_MS)
OCTAVES = 23  # top edge MIN_MS * 2**23 ~ 839 s, above the longest probe timeout (300 s)
BUCKETS = 1 + SUB_BUCKETS * OCTAVES
GROWTH = 2.0 ** (1.0 / SUB_BUCKETS)
RELATIVE_ERROR = GROWTH - 1.0  # bound on |quantile - exact| / exact for samples >= MIN_MS
_RUN_SPLIT = 4  # this many empty buckets in a row cost more as nibbles than a new run header
_NIBBLE_MAX = 15  # a nibble of 15 means "15 or more"; the excess follows as a varint
DOWN, UP, PENDING = 0, 1, 2  # heartbeat status codes (monitor.STATUS_CODES); 3 is maintenance


def put_varint(out: bytearray, value: int) -> None:
    """Append an unsigned LEB128 varint."""
    if value < 0:
        raise ValueError(f"varint must be >= 0, got {value}")
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def get_varint(data: bytes, pos: int) -> tuple[int, int]:
    """Read an unsigned varint at pos; returns (value, next position)."""
    value = shift = 0
    while True:
        try:
            byte = data[pos]
        except IndexError:
            raise ValueError("truncated varint") from None
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def bucket_of(ms: float) -> int:
    """The bucket a latency in milliseconds falls in (values past the top share the last)."""
    if not ms >= MIN_MS:  # also catches NaN
        return 0
    return min(1 + int(SUB_BUCKETS * math.log2(ms / MIN_MS)), BUCKETS - 1)


def bucket_bounds(index: int) -> tuple[float, float]:
    """Lower and upper edge (ms) of a bucket."""
    if index <= 0:
        return 0.0, MIN_MS
    return MIN_MS * GROWTH ** (index - 1), MIN_MS * GROWTH**index


class Histogram:
    """Sparse counts per bucket; merge adds counts, quantile interpolates inside a bucket."""

    __slots__ = ("counts",)

    def __init__(self, counts: dict[int, int] | None = None) -> None:
        self.counts: dict[int, int] = counts if counts is not None else {}

    @classmethod
    def of(cls, samples: Iterable[float]) -> Histogram:
        """A histogram of some latencies in milliseconds."""
        hist = cls()
        for ms in samples:
            hist.add(ms)
        return hist

    def add(self, ms: float, count: int = 1) -> None:
        """Count a latency in milliseconds."""
        index = bucket_of(ms)
        self.counts[index] = self.counts.get(index, 0) + count

    def merge(self, other: Histogram) -> None:
        """Add other's counts to this histogram."""
        counts = self.counts
        for index, count in other.counts.items():
            counts[index] = counts.get(index, 0) + count

    @property
    def total(self) -> int:
        """How many samples were counted."""
        return sum(self.counts.values())

    def quantile(self, q: float) -> float | None:
        """The q-quantile (0..1) in ms, or None when empty; within RELATIVE_ERROR of the exact."""
        total = self.total
        if total == 0:
            return None
        target = min(max(q, 0.0), 1.0) * total
        seen = 0
        for index in sorted(self.counts):
            count = self.counts[index]
            if count <= 0:
                continue
            if seen + count >= target:
                fraction = max(target - seen, 0.0) / count
                lo, hi = bucket_bounds(index)
                if index == 0:
                    return hi * fraction
                return lo * math.pow(GROWTH, fraction)
            seen += count
        return bucket_bounds(max(self.counts))[1]  # unreachable unless counts are negative

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        return {k: v for k, v in self.counts.items() if v} == {
            k: v for k, v in other.counts.items() if v
        }

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Histogram({dict(sorted(self.counts.items()))})"

    def encode(self) -> bytes:
        """The compact binary form (self-delimiting)."""
        out = bytearray()
        self.encode_into(out)
        return bytes(out)

    def encode_into(self, out: bytearray) -> None:
        """Append the binary form: run count, (gap, length-1) per run, nibbles, excess varints."""
        indexes = sorted(i for i, c in self.counts.items() if c > 0)
        if not indexes:
            out.append(0)
            return
        runs: list[tuple[int, int]] = []
        start = end = indexes[0]
        for index in indexes[1:]:
            if index - end > _RUN_SPLIT:
                runs.append((start, end))
                start = index
            end = index
        runs.append((start, end))
        put_varint(out, len(runs))
        previous = 0
        nibbles: list[int] = []
        excess: list[int] = []
        counts = self.counts
        for start, end in runs:
            put_varint(out, start - previous)
            put_varint(out, end - start)
            previous = end + 1
            for index in range(start, end + 1):
                count = counts.get(index, 0)
                if count >= _NIBBLE_MAX:
                    nibbles.append(_NIBBLE_MAX)
                    excess.append(count - _NIBBLE_MAX)
                else:
                    nibbles.append(count)
        if len(nibbles) % 2:
            nibbles.append(0)
        out.extend(lo | (hi << 4) for lo, hi in zip(nibbles[::2], nibbles[1::2], strict=True))
        for value in excess:
            put_varint(out, value)

    @classmethod
    def decode(cls, data: bytes) -> Histogram:
        """Parse a whole buffer written by encode()."""
        hist, pos = cls.decode_from(data, 0)
        if pos != len(data):
            raise ValueError("trailing bytes after histogram")
        return hist

    @classmethod
    def decode_from(cls, data: bytes, pos: int) -> tuple[Histogram, int]:
        """Parse one histogram at pos; returns it and the position after it."""
        run_count, pos = get_varint(data, pos)
        runs: list[tuple[int, int]] = []
        index = 0
        width = 0
        for _ in range(run_count):
            gap, pos = get_varint(data, pos)
            length, pos = get_varint(data, pos)
            index += gap
            runs.append((index, length + 1))
            index += length + 1
            width += length + 1
        if index > BUCKETS:
            raise ValueError("histogram bucket out of range")
        packed = data[pos : pos + (width + 1) // 2]
        if len(packed) != (width + 1) // 2:
            raise ValueError("truncated histogram")
        pos += len(packed)
        counts: dict[int, int] = {}
        n = 0
        for start, length in runs:
            for index in range(start, start + length):
                byte = packed[n >> 1]
                count = (byte >> 4) if n & 1 else (byte & 0x0F)
                n += 1
                if count == _NIBBLE_MAX:
                    extra, pos = get_varint(data, pos)
                    count += extra
                if count:
                    counts[index] = count
        return cls(counts), pos


class Bucket:
    """Heartbeats of one interval: counts per status, latency sum and histogram (up checks)."""

    __slots__ = ("down", "hist", "latency_sum", "maintenance", "pending", "up")

    def __init__(self) -> None:
        self.up = self.down = self.pending = self.maintenance = 0
        self.latency_sum = 0.0  # ms, over the heartbeats counted in hist
        self.hist = Histogram()

    def add(self, status: int, latency_ms: float | None) -> None:
        """Count one heartbeat; latency statistics describe successful (up) checks only."""
        if status == UP:
            self.up += 1
            if latency_ms is not None:
                self.latency_sum += latency_ms
                self.hist.add(latency_ms)
        elif status == DOWN:
            self.down += 1
        elif status == PENDING:
            self.pending += 1
        else:
            self.maintenance += 1

    def merge(self, other: Bucket) -> None:
        """Add other's heartbeats to this bucket."""
        self.up += other.up
        self.down += other.down
        self.pending += other.pending
        self.maintenance += other.maintenance
        self.latency_sum += other.latency_sum
        self.hist.merge(other.hist)

    @property
    def checks(self) -> int:
        """Heartbeats counted, whatever their status."""
        return self.up + self.down + self.pending + self.maintenance

    @property
    def uptime(self) -> float | None:
        """up / (up + down + pending): maintenance is excluded, a pending retry is not up."""
        counted = self.up + self.down + self.pending
        return self.up / counted if counted else None

    @property
    def avg_ms(self) -> float | None:
        """Mean latency of the up checks that reported one."""
        n = self.hist.total
        return self.latency_sum / n if n else None

    def encode_into(self, out: bytearray) -> None:
        """Append: varint(up << 3 | flags), nonzero other counts, histogram, latency sum."""
        flags = (self.down > 0) | (self.pending > 0) << 1 | (self.maintenance > 0) << 2
        put_varint(out, self.up << 3 | flags)
        for count in (self.down, self.pending, self.maintenance):
            if count:
                put_varint(out, count)
        self.hist.encode_into(out)
        if self.hist.counts:
            put_varint(out, round(self.latency_sum * 10))  # 0.1 ms units

    @classmethod
    def decode_from(cls, data: bytes, pos: int) -> tuple[Bucket, int]:
        """Parse one bucket at pos; returns it and the position after it."""
        bucket = cls()
        head, pos = get_varint(data, pos)
        bucket.up = head >> 3
        if head & 1:
            bucket.down, pos = get_varint(data, pos)
        if head & 2:
            bucket.pending, pos = get_varint(data, pos)
        if head & 4:
            bucket.maintenance, pos = get_varint(data, pos)
        bucket.hist, pos = Histogram.decode_from(data, pos)
        if bucket.hist.counts:
            tenths, pos = get_varint(data, pos)
            bucket.latency_sum = tenths / 10
        return bucket, pos
