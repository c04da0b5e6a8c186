"""Rendezvous (highest-random-weight) hashing: which live core owns a key.

Each (core, key) pair gets a pseudo-random weight and the key goes to the core with the
highest. Removing a core moves only the keys it owned (each to its runner-up); adding one
takes from every other core only the keys it now outweighs. Pure: no clock, no I/O.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence


def weight(node: str, key: str) -> int:
    """The pair's weight: 64 bits of BLAKE2b, the same on every host and Python run
    (``hash()`` is salted per process, so cores would disagree)."""
    digest = hashlib.blake2b(f"{node}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(key: str, nodes: Sequence[str]) -> str | None:
    """The core that owns key among nodes (None when there is none)."""
    best: str | None = None
    best_weight = -1
    for node in nodes:
        w = weight(node, key)
        # Ties (vanishingly rare) go to the smaller name, so every core picks the same one.
        if w > best_weight or (w == best_weight and best is not None and node < best):
            best, best_weight = node, w
    return best


def shares(keys: Iterable[str], nodes: Sequence[str]) -> Counter[str]:
    """How many of keys each node owns."""
    counts: Counter[str] = Counter()
    for key in keys:
        node = owner(key, nodes)
        if node is not None:
            counts[node] += 1
    return counts
