"""The monitor families as exposition text, written by hand for speed, in cached segments.

One f-string per monitor and family (the per-call overhead, not the bytes, is what costs), one
``Segment`` per family and SLICE monitors, so the exporter can give the loop back between
segments and hand each to the gzip thread as soon as it exists. The up and status families
(two thirds of the bytes) only change when a status does: their segments are kept, with
their compressed form, and reused while the slice's monitors and statuses are the same.
Label text comes pre-escaped from the snapshot; values are ints, or floats written with repr
(exact, and valid in the Prometheus text format and in OpenMetrics alike).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from .monitors import (
    CERT,
    CHECKS,
    INCIDENTS,
    RESPONSE,
    SLICE,
    STATES,
    STATUS,
    UP,
    Family,
    Labels,
    Snapshot,
)

_FLAGS = {s: tuple("1" if s == t else "0" for t in STATES) for s in STATES}
Lines = Callable[[Snapshot, int, int], list[str]]


class Packed(NamedTuple):
    """A kept segment once compressed: what a gzip member needs of its text, not the text."""

    deflated: bytes  # raw deflate ending on a byte boundary (Z_SYNC_FLUSH)
    size: int  # bytes of text
    crc: int  # CRC-32 of the text (the exporter's _follow combines it with what precedes)


@dataclass
class Segment:
    """A piece of the exposition; kept ones remember what they were rendered from."""

    # The text; a kept one's becomes Packed in the gzip thread (one assignment, so another
    # scrape's thread reading it sees the text or the packed form, never neither).
    body: bytes | Packed
    labels: list[Labels] | None = None
    status: list[str] | None = None


class Exposition:
    """Renders a snapshot's monitor families; keeps the segments that rarely change."""

    def __init__(self) -> None:
        self._kept: dict[tuple[str, int], Segment] = {}

    def render(self, snap: Snapshot, openmetrics: bool, gzip: bool) -> Iterator[Segment]:
        """The monitor families, segment by segment: the ones rendered afresh first, so the
        gzip thread compresses them while the loop checks which kept ones still hold (kept
        ones only for gzip: they let go of their text once compressed)."""
        fresh: tuple[tuple[Family, Lines], ...] = (
            (RESPONSE, _response),
            (CHECKS, _checks),
            (CERT, _cert),
        )
        for family, lines in fresh:
            yield Segment(family.header(openmetrics).encode())
            for start in range(0, len(snap), SLICE):
                yield Segment("".join(lines(snap, start, start + SLICE)).encode())
        kept: tuple[tuple[Family, Lines], ...] = ((UP, _up), (STATUS, _status))
        for family, lines in kept:
            yield Segment(family.header(openmetrics).encode())
            for start in range(0, len(snap), SLICE):
                if gzip:
                    yield self._kept_segment(family, lines, snap, start)
                else:
                    yield Segment("".join(lines(snap, start, start + SLICE)).encode())
        incidents = f"{INCIDENTS.header(openmetrics)}{INCIDENTS.name} {snap.incidents}\n"
        yield Segment(incidents.encode())
        for key in [k for k in self._kept if k[1] >= len(snap)]:
            del self._kept[key]  # fewer monitors than before

    def _kept_segment(self, family: Family, lines: Lines, snap: Snapshot, start: int) -> Segment:
        end = start + SLICE
        labels, status = snap.labels[start:end], snap.status[start:end]
        seg = self._kept.get((family.name, start))
        # Labels objects compare by identity: equal lists mean the same monitors and texts.
        if seg is None or seg.labels != labels or seg.status != status:
            text = "".join(lines(snap, start, end)).encode()
            seg = self._kept[(family.name, start)] = Segment(text, labels, status)
        return seg


def _texts(snap: Snapshot, a: int, b: int) -> list[str]:
    return [lb.text for lb in snap.labels[a:b]]


def _up(snap: Snapshot, a: int, b: int) -> list[str]:
    n = UP.name
    return [
        f"{n}{{{t}}} {'1' if s == 'up' else '0'}\n"
        for t, s in zip(_texts(snap, a, b), snap.status[a:b], strict=True)
    ]


def _status(snap: Snapshot, a: int, b: int) -> list[str]:
    n = STATUS.name + "{"
    out: list[str] = []
    for t, s in zip(_texts(snap, a, b), snap.status[a:b], strict=True):
        u, d, p, m, z = _FLAGS[s]
        out.append(
            f'{n}{t},state="up"}} {u}\n{n}{t},state="down"}} {d}\n'
            f'{n}{t},state="pending"}} {p}\n{n}{t},state="maintenance"}} {m}\n'
            f'{n}{t},state="paused"}} {z}\n'
        )
    return out


def _response(snap: Snapshot, a: int, b: int) -> list[str]:
    n = RESPONSE.name
    return [
        f"{n}{{{t}}} {v!r}\n"
        for t, v in zip(_texts(snap, a, b), snap.seconds[a:b], strict=True)
        if v is not None
    ]


def _checks(snap: Snapshot, a: int, b: int) -> list[str]:
    n = CHECKS.name + "{"
    return [
        f'{n}{t},result="success"}} {ok}\n{n}{t},result="failure"}} {failed}\n'
        for t, ok, failed in zip(
            _texts(snap, a, b), snap.successes[a:b], snap.failures[a:b], strict=True
        )
    ]


def _cert(snap: Snapshot, a: int, b: int) -> list[str]:
    n = CERT.name
    return [
        f"{n}{{{t}}} {v!r}\n"
        for t, v in zip(_texts(snap, a, b), snap.cert[a:b], strict=True)
        if v is not None
    ]
