"""The status machine's rules, one observation at a time."""

from __future__ import annotations

import asyncio

from dragonopsd.monitoring.scheduler import Scheduler
from dragonopsd.monitoring.status import Machine


def run(machine: Machine, results: str) -> list[str]:
    """Feed 'u' (up), 'd' (down), 'm' (maintenance) and collect the statuses."""
    out = []
    for r in results:
        t = machine.observe(r == "u", maintenance=r == "m")
        out.append(t.status + ("!" if t.alert else "") + ("~" if t.retry else ""))
    return out


def test_plain_up_down_up_alerts_on_each_change() -> None:
    assert run(Machine(flap_window=0), "uddu") == ["up", "down!", "down", "up!"]


def test_first_up_after_start_is_not_an_alert() -> None:
    assert run(Machine(flap_window=0), "u") == ["up"]


def test_retries_keep_it_pending_and_ask_for_quick_rechecks() -> None:
    m = Machine(retries=2, flap_window=0, status="up")
    assert run(m, "ddd") == ["pending~", "pending~", "down!"]
    assert run(m, "u") == ["up!"]
    # a success during the retries resets the round without any alert
    assert run(Machine(retries=2, flap_window=0, status="up"), "ddu") == [
        "pending~",
        "pending~",
        "up",
    ]


def test_failure_threshold_counts_confirmed_failures_only() -> None:
    m = Machine(retries=1, failure_threshold=2, flap_window=0, status="up")
    assert run(m, "dddd") == ["pending~", "pending", "pending~", "down!"]


def test_down_stays_down_while_retrying() -> None:
    m = Machine(retries=1, flap_window=0, status="down")
    assert run(m, "dd") == ["down~", "down"]


def test_maintenance_suppresses_and_resets() -> None:
    m = Machine(failure_threshold=2, flap_window=0, status="up")
    assert run(m, "dmd") == ["pending", "maintenance", "pending"]
    assert run(m, "d") == ["down!"]


def test_flapping_silences_alerts_but_not_status() -> None:
    m = Machine(flap_window=6, flap_threshold=4)
    statuses = run(m, "udududud")
    assert [s.rstrip("!") for s in statuses] == ["up", "down"] * 4
    assert statuses[:3] == ["up", "down!", "up!"]
    assert all("!" not in s for s in statuses[4:])  # damped once 4 changes are in the window


async def test_scheduler_keeps_its_cadence_with_a_slow_check() -> None:
    starts: dict[int, list[float]] = {1: [], 2: []}
    loop = asyncio.get_running_loop()

    async def check(key: int, due: float) -> None:
        starts[key].append(loop.time())
        if key == 1:
            await asyncio.sleep(0.35)  # slower than its interval: runs get skipped, not piled

    sched = Scheduler(check, concurrency=10)
    sched.schedule(1, 0.1, first_in=0)
    sched.schedule(2, 0.1, first_in=0)
    task = asyncio.create_task(sched.run())
    await asyncio.sleep(1.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert 9 <= len(starts[2]) <= 12  # the fast monitor is not delayed by the slow one
    assert 2 <= len(starts[1]) <= 4 and sched.skipped >= 4
    gaps = [b - a for a, b in zip(starts[2], starts[2][1:], strict=False)]
    assert all(0.05 < g < 0.2 for g in gaps)


async def test_scheduler_retry_and_remove() -> None:
    seen: list[int] = []

    async def check(key: int, due: float) -> None:
        seen.append(key)

    sched = Scheduler(check, concurrency=1)
    sched.schedule(7, 60, first_in=0)
    task = asyncio.create_task(sched.run())
    await asyncio.sleep(0.05)
    sched.retry(7, 0.05)
    await asyncio.sleep(0.15)
    sched.remove(7)
    sched.retry(7, 0.01)  # no-op once removed
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert seen == [7, 7] and len(sched) == 0


async def test_scheduler_counts_first_runs_from_when_probing_starts() -> None:
    """Monitors loaded before the loop runs (the daemon's start) are due from its start:
    their first runs are not late by however long the rest of the start took."""
    dues: list[float] = []
    loop = asyncio.get_running_loop()

    async def check(key: int, due: float) -> None:
        dues.append(due)

    sched = Scheduler(check, concurrency=1)
    sched.schedule(1, 60, first_in=0, delay=0.05)
    await asyncio.sleep(0.3)  # the rest of the start
    started = loop.time()
    task = asyncio.create_task(sched.run())
    await asyncio.sleep(0.2)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert len(dues) == 1
    # Due 50 ms after probing began, not 50 ms after loading: not counted 0.3 s late.
    assert dues[0] >= started + 0.05


async def test_overloaded_scheduler_queues_keys_not_tasks() -> None:
    """With every slot busy, due checks wait as keys: no task per waiting check (25,000 of
    them were ~75 MB), and each starts, in due order, as a slot frees."""
    release = asyncio.Event()
    order: list[int] = []

    async def check(key: int, due: float) -> None:
        order.append(key)
        await release.wait()

    before = len(asyncio.all_tasks())
    sched = Scheduler(check, concurrency=2)
    for key in range(50):
        sched.schedule(key, 60, first_in=0, delay=key * 0.001)
    task = asyncio.create_task(sched.run())
    while sched.in_flight < 2:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # every key is due by now
    assert len(asyncio.all_tasks()) == before + 1 + 2  # the loop and two checks
    release.set()
    while sched.started < 50:
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert order == list(range(50)) and sched.in_flight == 0


def test_scheduler_does_not_spin_on_millisecond_timers() -> None:
    """uvloop (the daemon's loop) keeps time and fires timers in whole milliseconds, so a
    wake-up for a due time can come just before loop.time() reaches it: the loop must start
    that check then, not spin until its clock catches up (that was most of its CPU)."""
    import uvloop  # noqa: PLC0415  -- the bug is uvloop's clock; asyncio's does not show it

    async def main() -> tuple[int, int]:
        starts = 0

        async def check(key: int, due: float) -> None:
            nonlocal starts
            starts += 1

        sched = Scheduler(check, concurrency=10)
        for key in range(20):
            sched.schedule(key, 0.05)
        task = asyncio.create_task(sched.run())
        await asyncio.sleep(0.6)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return starts, sched.passes

    starts, passes = uvloop.run(main())
    assert starts >= 100
    # One pass per wake-up, and a wake-up starts at least one check (or was asked for by
    # schedule(), 20 times here); a spinning loop makes dozens per start.
    assert passes <= starts + 25, (starts, passes)
