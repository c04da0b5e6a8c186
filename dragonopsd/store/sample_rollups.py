"""Sample rollups: minute and hourly buckets packed into blocks, retention, and cleanup.

Like the heartbeat rollups (store/rollups.py, whose helpers this reuses), one row holds a
block of buckets, ``id = server seq << 24 | block number``: a minute block is an hour (60
buckets), an hourly block a day (24). Each bucket keeps the count and, per metric, the mean and
the maximum (max is stored as its excess over the mean, usually a one-byte varint).

Both levels are derived from raw rows once an hour has closed (plus GRACE_S for samples in
flight), in the same transaction, so one mark (``samples_state.rolled``) says how far both are
complete; readers take rollups below it and raw rows above it. SQLite aggregates the raw rows
(GROUP BY in the connection's thread), so rolling 1,000 servers costs the loop little. Samples
that arrive for an hour already rolled (an agent's backlog) are re-rolled for that server.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ..config import SamplingConfig
from . import blocks
from .blocks import UPSERT_BLOCK, encode_block
from .histogram import get_varint, put_varint
from .rollups import KEY_BITS, Level, block_id, delete_before, set_kept, transact
from .sql import Connection, Database

MINUTE = Level("1m", "samples_1m", 60, 3600, 3600)
HOUR = Level("1h", "samples_1h", 3600, 86_400, 86_400)
GRACE_S = 120  # an hour is rolled this long after it closes, so samples in flight still land
CHUNK = 100  # servers per rollup or retention transaction, so API writes are never starved
NMETRICS = 6
_MIN_PRUNE = {"raw": 3600, "1m": 3600, "1h": 86_400}  # delete whole hours (days) at a time
_RAW_DELETE = "DELETE FROM samples_raw WHERE server = ? AND at < ?"

COLUMNS = ("cpu", "memory", "load", "disk", "net_in", "net_out")


def sums_sql(alias: str = "") -> str:
    """SUM and MAX of each metric column, in the order Agg.of_row reads them."""
    return ", ".join(f"SUM({alias}{c}), MAX({alias}{c})" for c in COLUMNS)


class Agg:
    """Samples of one interval: count, and per metric the sum and maximum (stored units)."""

    __slots__ = ("maxes", "n", "sums")

    def __init__(self) -> None:
        self.n = 0
        self.sums = [0.0] * NMETRICS
        self.maxes = [0] * NMETRICS

    @classmethod
    def of_row(cls, row: Sequence[int]) -> Agg:
        """From (count, sum, max, sum, max, ...) as the GROUP BY queries return it."""
        agg = cls()
        agg.n = int(row[0])
        agg.sums = [float(row[1 + 2 * i]) for i in range(NMETRICS)]
        agg.maxes = [int(row[2 + 2 * i]) for i in range(NMETRICS)]
        return agg

    def merge(self, other: Agg) -> None:
        """Add other's samples to this interval."""
        self.n += other.n
        for i in range(NMETRICS):
            self.sums[i] += other.sums[i]
            self.maxes[i] = max(self.maxes[i], other.maxes[i])

    def encode_into(self, out: bytearray) -> None:
        """Append: varint count, then per metric varint mean and varint (max - mean)."""
        put_varint(out, self.n)
        for total, top in zip(self.sums, self.maxes, strict=True):
            mean = round(total / self.n)
            put_varint(out, mean)
            put_varint(out, max(top - mean, 0))

    @classmethod
    def decode_from(cls, data: bytes, pos: int) -> tuple[Agg, int]:
        """Parse one bucket at pos; returns it and the position after it."""
        agg = cls()
        agg.n, pos = get_varint(data, pos)
        for i in range(NMETRICS):
            mean, pos = get_varint(data, pos)
            excess, pos = get_varint(data, pos)
            agg.sums[i] = float(mean * agg.n)
            agg.maxes[i] = mean + excess
        return agg, pos


def block_start(level: Level, row_id: int) -> int:
    """Start (Unix seconds) of the block a row id names."""
    return (row_id & ((1 << KEY_BITS) - 1)) * level.block


def decode_block(data: bytes) -> dict[int, Agg]:
    """Parse a block of sample buckets (the codec: store/blocks.py)."""
    return blocks.decode_block(data, Agg)


@dataclass
class State:
    """Rollups are complete below rolled; each level's rows before kept_* are deleted."""

    rolled: int
    kept_raw: int
    kept_1m: int
    kept_1h: int


async def read_state(conn: Connection) -> State:
    """The single samples_state row."""
    sql = "SELECT rolled, kept_raw, kept_1m, kept_1h FROM samples_state"
    rows = list(await conn.execute_fetchall(sql))
    return State(*rows[0])


async def _server_ranges(db: Database) -> list[tuple[int, int]]:
    """Inclusive seq ranges of at most CHUNK servers that together cover every seq."""
    async with db.read() as conn:
        rows = await conn.execute_fetchall("SELECT seq FROM sample_servers ORDER BY seq")
    seqs = [int(r[0]) for r in rows]
    edges = [seqs[i] for i in range(CHUNK, len(seqs), CHUNK)]
    return list(zip([-(2**62), *edges], [e - 1 for e in edges] + [2**62], strict=True))


async def roll_hour(conn: Connection, hour: int, seqs: tuple[int, int]) -> None:
    """Write the minute block and the hourly slot of one hour for the servers in seqs."""
    sql = (
        f"SELECT r.server, r.at / 60000, COUNT(*), {sums_sql('r.')} FROM sample_servers m "
        "JOIN samples_raw r ON r.server = m.seq AND r.at >= ? AND r.at < ? "
        "WHERE m.seq BETWEEN ? AND ? GROUP BY r.server, r.at / 60000"
    )
    rows = await conn.execute_fetchall(sql, (hour * 1000, (hour + 3600) * 1000, *seqs))
    minutes: dict[int, dict[int, Agg]] = {}
    for row in rows:
        minutes.setdefault(int(row[0]), {})[int(row[1]) % 60] = Agg.of_row(row[2:])
    if not minutes:
        return
    await conn.executemany(
        f"INSERT INTO samples_1m (id, data) VALUES (?, ?) {UPSERT_BLOCK}",
        [(block_id(s, hour // 3600), encode_block(slots)) for s, slots in minutes.items()],
    )
    day_ids = {s: block_id(s, hour // 86_400) for s in minutes}
    marks = ",".join("?" * len(day_ids))
    stored = {
        int(row_id): decode_block(data)
        for row_id, data in await conn.execute_fetchall(
            f"SELECT id, data FROM samples_1h WHERE id IN ({marks})", list(day_ids.values())
        )
    }
    blocks = []
    for server, slots in minutes.items():
        total = Agg()
        for agg in slots.values():
            total.merge(agg)
        day = stored.get(day_ids[server], {})
        day[(hour % 86_400) // 3600] = total
        blocks.append((day_ids[server], encode_block(day)))
    await conn.executemany(
        f"INSERT INTO samples_1h (id, data) VALUES (?, ?) {UPSERT_BLOCK}", blocks
    )


async def _first_raw_at(db: Database, since: int) -> int | None:
    """The earliest raw sample at or after since (seconds), one index seek per server."""
    sql = (
        "SELECT min((SELECT min(at) FROM samples_raw r WHERE r.server = m.seq AND r.at >= ?)) "
        "FROM sample_servers m"
    )
    async with db.read() as conn:
        rows = list(await conn.execute_fetchall(sql, (since * 1000,)))
    return None if not rows or rows[0][0] is None else int(rows[0][0]) // 1000


async def _set_rolled(db: Database, value: int) -> None:
    async def work(conn: Connection) -> None:
        await conn.execute("UPDATE samples_state SET rolled = ?", (value,))

    await transact(db, work)


async def roll_up(
    db: Database, now: float, advancing: Callable[[int], None], *, max_rounds: int = 10_000
) -> int:
    """Roll every closed hour as of now; returns the hours rolled.

    advancing(mark) is called before the rollups move up to mark, so the writer can flag
    samples below it that commit after the hour's rows were read (they are re-rolled).
    """
    limit = (int(now) - GRACE_S) // 3600 * 3600
    rounds = 0
    while rounds < max_rounds:
        async with db.read() as conn:
            lo = (await read_state(conn)).rolled
        if lo >= limit:
            return rounds
        first = await _first_raw_at(db, lo)
        start = limit if first is None else min(limit, first // 3600 * 3600)
        if start > lo:  # no samples in between: skip the empty time
            advancing(start)
            await _set_rolled(db, start)
            continue
        advancing(lo + 3600)
        ranges = await _server_ranges(db)
        for n, seqs in enumerate(ranges):

            async def work(
                conn: Connection,
                seqs: tuple[int, int] = seqs,
                last: bool = False,
                lo: int = lo,
            ) -> None:
                await roll_hour(conn, lo, seqs)
                if last:
                    await conn.execute("UPDATE samples_state SET rolled = ?", (lo + 3600,))

            await transact(db, functools.partial(work, last=n == len(ranges) - 1))
        rounds += 1
    return rounds


async def reroll(db: Database, late: Iterable[tuple[int, int]]) -> int:
    """Roll again the (server seq, hour) pairs that received samples after being rolled."""
    async with db.read() as conn:
        kept = (await read_state(conn)).kept_raw
    # An hour whose raw rows retention already took would be rebuilt from the late rows alone.
    pairs = sorted(p for p in set(late) if p[1] >= kept)
    for lo in range(0, len(pairs), CHUNK):

        async def work(conn: Connection, part: list[tuple[int, int]]) -> None:
            for seq, hour in part:
                await roll_hour(conn, hour, (seq, seq))

        await transact(db, functools.partial(work, part=pairs[lo : lo + CHUNK]))
    return len(pairs)


async def apply_retention(db: Database, cfg: SamplingConfig, now: float) -> int:
    """Delete raw rows and rollups past their retention (never raw rows not yet rolled up)."""
    async with db.read() as conn:
        state = await read_state(conn)
    t = int(now)
    cuts = {
        "raw": min(t - cfg.raw_hours * 3600, state.rolled) // 3600 * 3600,
        "1m": (t - cfg.minute_days * 86_400) // 3600 * 3600,
        "1h": (t - cfg.hourly_days * 86_400) // 86_400 * 86_400,
    }
    kept = {"raw": state.kept_raw, "1m": state.kept_1m, "1h": state.kept_1h}
    due = {name: cut for name, cut in cuts.items() if cut >= kept[name] + _MIN_PRUNE[name]}
    if not due:
        return 0

    async def work(conn: Connection, seqs: tuple[int, int], last: bool) -> int:
        servers = [
            int(r[0])
            for r in await conn.execute_fetchall(
                "SELECT seq FROM sample_servers WHERE seq BETWEEN ? AND ?", seqs
            )
        ]
        deleted = await delete_before(conn, servers, due, _RAW_DELETE, (MINUTE, HOUR))
        if last:
            await set_kept(conn, "samples_state", due)
        return deleted

    ranges = await _server_ranges(db)
    total = 0
    for n, seqs in enumerate(ranges):
        last = n == len(ranges) - 1
        total += await transact(db, functools.partial(work, seqs=seqs, last=last))
    return total


async def drop_deleted(db: Database) -> list[str]:
    """Delete the history of servers no longer in the inventory; returns their ids.

    A cascading delete of an environment removes its servers without one event each, so
    this sweep (not an event hook) is what keeps their history from lingering until retention.
    """

    async def work(conn: Connection) -> list[str]:
        gone = list(
            await conn.execute_fetchall(
                "SELECT seq, server_id FROM sample_servers "
                "WHERE server_id NOT IN (SELECT id FROM servers) LIMIT ?",
                (CHUNK,),
            )
        )
        for seq, _ in gone:
            lo, hi = block_id(seq, 0), block_id(seq + 1, 0)
            await conn.execute("DELETE FROM samples_raw WHERE server = ?", (seq,))
            await conn.execute("DELETE FROM samples_1m WHERE id >= ? AND id < ?", (lo, hi))
            await conn.execute("DELETE FROM samples_1h WHERE id >= ? AND id < ?", (lo, hi))
            await conn.execute("DELETE FROM sample_servers WHERE seq = ?", (seq,))
        return [str(ident) for _, ident in gone]

    return await transact(db, work)
