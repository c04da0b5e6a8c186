"""The block codec of the rollup tables: one row holds every bucket of a block.

A block is a varint bitmask of the slots present, then their buckets in slot order, each in its
own binary form (heartbeat Buckets, sample Aggs).
"""

from __future__ import annotations

from typing import Protocol, Self, TypeVar

from .histogram import get_varint, put_varint


class Slot(Protocol):
    """A bucket that a block can hold: it writes and reads its own binary form."""

    def encode_into(self, out: bytearray) -> None:
        """Append the binary form."""

    @classmethod
    def decode_from(cls, data: bytes, pos: int) -> tuple[Self, int]:
        """Parse one at pos; returns it and the position after it."""


S = TypeVar("S", bound=Slot)

# Writing a block replaces it; an upsert both engines speak (a retried flush rewrites the same row).
UPSERT_BLOCK = "ON CONFLICT (id) DO UPDATE SET data = excluded.data"


def encode_block(slots: dict[int, S]) -> bytes:
    """A block of the buckets in slots (slot number -> bucket)."""
    out = bytearray()
    put_varint(out, sum(1 << slot for slot in slots))
    for slot in sorted(slots):
        slots[slot].encode_into(out)
    return bytes(out)


def decode_block(data: bytes, kind: type[S]) -> dict[int, S]:
    """Parse a block written by encode_block whose buckets are of kind."""
    mask, pos = get_varint(data, 0)
    slots: dict[int, S] = {}
    slot = 0
    while mask:
        if mask & 1:
            slots[slot], pos = kind.decode_from(data, pos)
        mask >>= 1
        slot += 1
    if pos != len(data):
        raise ValueError(f"trailing bytes after a block of {kind.__name__}")
    return slots
