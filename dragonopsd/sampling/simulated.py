"""Simulated samples: a pure function of (server id, time), the same in every process.

Each server gets a profile (base load, cores, traffic) from a hash of its id, then every
metric follows that base through a daily rhythm plus smooth value noise (three octaves of
cosine-interpolated lattice values, also hashed from the id), with rare CPU spikes. Being a
function of time rather than a stateful walk, a restart continues the same curves and tests
can ask for any instant. hashlib, not random.Random(hash(id)): str hashes are salted per process.
"""

from __future__ import annotations

import functools
import hashlib
import math
from typing import NamedTuple

from ..model.sample import Sample

DAY = 86_400.0
OCTAVES = ((900.0, 0.6), (180.0, 0.3), (30.0, 0.1))  # (period s, weight): smooth, then jitter
SPIKE_WINDOW = 600  # at most one spike per window of this many seconds
SPIKE_CHANCE = 0.08


class Profile(NamedTuple):
    """What makes one simulated server differ from another."""

    cpu: float  # baseline CPU %
    memory: float  # baseline memory %
    disk: float  # baseline disk %
    cores: int  # scales load
    net: float  # baseline traffic, bytes/s
    phase: float  # where in the day its peak falls (fraction of a day)
    rhythm: float  # how strongly the day shapes it (0..1)


def _digest(*parts: object) -> bytes:
    return hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=32).digest()


def _units(data: bytes) -> list[float]:
    """Eight numbers in [0, 1) from 32 bytes."""
    return [int.from_bytes(data[i : i + 4], "little") / 2**32 for i in range(0, 32, 4)]


@functools.lru_cache(maxsize=16_384)
def profile(server_id: str) -> Profile:
    """The server's fixed traits."""
    u = _units(_digest("profile", server_id))
    return Profile(
        cpu=8 + 40 * u[0],
        memory=25 + 45 * u[1],
        disk=15 + 65 * u[2],
        cores=1 << int(u[3] * 4),
        net=10 ** (3.5 + 3 * u[4]),
        phase=u[5],
        rhythm=0.2 + 0.5 * u[6],
    )


@functools.lru_cache(maxsize=65_536)  # 1,000 servers x 3 octaves x 2 cells stay cached
def _lattice(server_id: str, period: float, cell: int) -> tuple[float, ...]:
    """Eight lattice values in [-1, 1) for one cell of one octave."""
    return tuple(2 * v - 1 for v in _units(_digest(server_id, period, cell)))


def _noise(server_id: str, t: float, octaves: tuple[tuple[float, float], ...]) -> list[float]:
    """Eight smooth noise channels, each in [-1, 1]."""
    out = [0.0] * 8
    for period, weight in octaves:
        x = t / period
        cell = math.floor(x)
        w = (1 - math.cos(math.pi * (x - cell))) / 2
        a = _lattice(server_id, period, cell)
        b = _lattice(server_id, period, cell + 1)
        for c in range(8):
            out[c] += weight * (a[c] + (b[c] - a[c]) * w)
    return out


@functools.lru_cache(maxsize=4096)
def _spike_plan(server_id: str, window: int) -> tuple[float, float, float] | None:
    """(start, end, height) of the spike in a window, or None for a quiet window."""
    u = _units(_digest("spike", server_id, window))
    if u[0] >= SPIKE_CHANCE:
        return None
    start = window * SPIKE_WINDOW + u[1] * (SPIKE_WINDOW - 120)
    return start, start + 20 + 100 * u[2], 0.85 + 0.14 * u[3]


def _spike(server_id: str, t: float) -> float:
    """0 outside a spike, else how hard it hits (0.85..0.99 of a full CPU)."""
    plan = _spike_plan(server_id, int(t // SPIKE_WINDOW))
    return plan[2] if plan is not None and plan[0] <= t < plan[1] else 0.0


def _clamp(value: float, lo: float, hi: float) -> float:
    return lo if value < lo else hi if value > hi else value


def sample(server_id: str, t: float) -> Sample:
    """The simulated reading of server_id at Unix time t."""
    p = profile(server_id)
    day = math.sin(2 * math.pi * (t / DAY + p.phase)) * p.rhythm
    n = _noise(server_id, t, OCTAVES)
    slow = _noise(server_id, t, ((6 * 3600.0, 1.0),))
    cpu = p.cpu * (1 + day) + 14 * n[0]
    spike = _spike(server_id, t)
    if spike:
        cpu = max(cpu, 100 * spike + 2 * n[1])
    cpu = _clamp(cpu, 0.5, 100.0)
    memory = _clamp(p.memory * (1 + 0.3 * day) + 6 * n[2] + 3 * slow[0], 1.0, 99.0)
    disk = _clamp(p.disk + 6 * slow[1] + 0.2 * n[3], 1.0, 99.5)
    load = max(0.0, p.cores * cpu / 100 * (1 + 0.2 * n[4]))
    traffic = p.net * (1 + day) * (3.0 if spike else 1.0)
    return Sample(
        server_id=server_id,
        cpu=round(cpu, 2),
        memory=round(memory, 2),
        load=round(load, 2),
        disk=round(disk, 2),
        net_in=float(round(traffic * math.exp(0.6 * n[5]))),
        net_out=float(round(0.6 * traffic * math.exp(0.6 * n[6]))),
        at=t,
    )
