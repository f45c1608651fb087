"""The scheduler: one heap, fired in virtual-time order by a manual advance."""

from __future__ import annotations

import asyncio

import pytest

from emulator.delivery.clock import ManualClock, RealtimeClock
from emulator.delivery.scheduler import Scheduler

T0 = 1_700_000_000.0


class Recorder:
    def __init__(self, log: list, name: str, then=None) -> None:
        self.log = log
        self.name = name
        self.cancelled = False
        self.entry = None  # the scheduler's handle (emulator.delivery.scheduler.Job)
        self.then = then

    async def run(self, due: float) -> None:
        self.log.append((self.name, due))
        if self.then:
            self.then(due)


async def test_advance_fires_in_due_order_and_sets_the_clock():
    clock = ManualClock(start=T0)
    scheduler = Scheduler(clock)
    log: list = []
    seen_now: list = []
    for name, after in [("c", 30), ("a", 10), ("b", 20)]:
        job = Recorder(log, name, then=lambda due: seen_now.append(clock.now()))
        scheduler.schedule(T0 + after, job)
    assert scheduler.pending() == 3
    assert scheduler.next_due() == T0 + 10
    assert await scheduler.advance(25) == T0 + 25
    assert log == [("a", T0 + 10), ("b", T0 + 20)]
    assert seen_now == [T0 + 10, T0 + 20]
    assert scheduler.pending() == 1
    await scheduler.advance(100)
    assert [name for name, _ in log] == ["a", "b", "c"]
    assert clock.now() == T0 + 125 and scheduler.pending() == 0


async def test_a_job_scheduled_inside_the_window_fires_in_the_same_advance():
    clock = ManualClock(start=T0)
    scheduler = Scheduler(clock)
    log: list = []
    retry = Recorder(log, "retry")
    first = Recorder(log, "first", then=lambda due: scheduler.schedule(due + 60, retry))
    scheduler.schedule(T0 + 1, first)
    await scheduler.advance(3600)
    assert log == [("first", T0 + 1), ("retry", T0 + 61)]


async def test_jobs_due_at_the_same_instant_run_concurrently_but_bounded():
    clock = ManualClock(start=T0)
    scheduler = Scheduler(clock, concurrency=3)
    running = 0
    peak = 0

    class Slow:
        cancelled = False
        entry = None

        async def run(self, due: float) -> None:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0)
            running -= 1

    for _ in range(10):
        scheduler.schedule(T0 + 5, Slow())
    await scheduler.advance(5)
    assert peak == 3 and running == 0 and scheduler.pending() == 0


async def test_cancel_by_handle_and_by_flag():
    clock = ManualClock(start=T0)
    scheduler = Scheduler(clock)
    log: list = []
    entries = [scheduler.schedule(T0 + i, Recorder(log, str(i))) for i in range(1, 201)]
    for entry in entries[:150]:
        scheduler.cancel(entry)
    scheduler.cancel(entries[0])  # twice is harmless
    assert scheduler.pending() == 50
    flagged = Recorder(log, "flagged")
    scheduler.schedule(T0 + 1000, flagged)
    flagged.cancelled = True
    await scheduler.advance(2000)
    assert [name for name, _ in log] == [str(i) for i in range(151, 201)]
    assert scheduler.pending() == 0 and scheduler.next_due() is None


async def test_a_job_planned_again_moves_and_a_cancel_after_it_was_taken_changes_nothing():
    # Entries are tuples; the job holds its current one (emulator/delivery/scheduler.py).
    clock = ManualClock(start=T0)
    scheduler = Scheduler(clock, concurrency=1)
    log: list = []
    moved = Recorder(log, "moved")
    first = scheduler.schedule(T0 + 1, moved)
    scheduler.schedule(T0 + 5, moved)  # planned again: moved, not planned twice
    assert scheduler.pending() == 1 and scheduler.next_due() == T0 + 5
    scheduler.cancel(first)  # no longer its entry: nothing to cancel
    assert scheduler.pending() == 1
    await scheduler.advance(10)
    assert log == [("moved", T0 + 5)] and scheduler.pending() == 0
    scheduler.cancel(first)  # after it fired: a no-op as well
    assert scheduler.pending() == 0 and moved.entry is None
    # Two jobs due together: the first cancels the second's entry, already taken from the
    # heap with it; the second still runs, and nothing is counted out twice.
    scheduler.schedule(T0 + 20, Recorder(log, "canceller", then=lambda due: scheduler.cancel(late_entry)))
    late_entry = scheduler.schedule(T0 + 20, Recorder(log, "later"))
    scheduler.schedule(T0 + 30, Recorder(log, "last"))
    assert scheduler.pending() == 3
    await scheduler.advance(30)
    assert [name for name, _ in log[1:]] == ["canceller", "later", "last"]
    assert scheduler.pending() == 0 and scheduler.next_due() is None


async def test_a_failing_job_does_not_stop_the_others(caplog):
    clock = ManualClock(start=T0)
    scheduler = Scheduler(clock)
    log: list = []

    class Broken:
        cancelled = False
        entry = None

        async def run(self, due: float) -> None:
            raise RuntimeError("boom")

    scheduler.schedule(T0 + 1, Broken())
    scheduler.schedule(T0 + 2, Recorder(log, "after"))
    await scheduler.advance(10)
    assert log == [("after", T0 + 2)]
    assert "scheduled job failed" in caplog.text


async def test_only_a_manual_clock_can_be_advanced():
    scheduler = Scheduler(RealtimeClock())
    with pytest.raises(RuntimeError):
        await scheduler.advance(1)


async def test_realtime_loop_fires_due_jobs():
    clock = RealtimeClock(scale=1000.0)
    scheduler = Scheduler(clock)
    fired = asyncio.Event()

    class Job:
        cancelled = False
        entry = None

        async def run(self, due: float) -> None:
            fired.set()

    scheduler.start()
    try:
        scheduler.schedule(clock.now() + 5, Job())  # 5 virtual seconds = 5 ms
        await asyncio.wait_for(fired.wait(), 5)
    finally:
        await scheduler.stop()



class Later:
    cancelled = False
    entry = None

    async def run(self, due: float) -> None:
        raise AssertionError("must not fire")


@pytest.mark.parametrize("turns", range(6))
async def test_stop_ends_the_realtime_loop_even_when_woken_at_that_moment(turns: int):
    # Under a scaled clock, retries wake the loop's wait all the time. asyncio.wait_for
    # (Python 3.11) swallowed a cancellation arriving in the same turn as such a wake-up, and
    # stop() then waited forever while jobs kept firing. Every interleaving is tried.
    clock = RealtimeClock(scale=1.0)
    scheduler = Scheduler(clock)
    scheduler.schedule(clock.now() + 1000, Later())
    scheduler.start()
    for _ in range(3):
        await asyncio.sleep(0)  # the loop is waiting, with a timeout
    scheduler.schedule(clock.now() + 500, Later())  # an earlier job wakes it
    for _ in range(turns):
        await asyncio.sleep(0)
    stopping = asyncio.create_task(scheduler.stop())
    for _ in range(20):  # a few turns of the loop, no waiting on the wall clock
        await asyncio.sleep(0)
    done = stopping.done()
    if not done:  # the old failure: the loop went back to waiting (500 s here)
        stopping.cancel()
    assert done, "stop() did not end the realtime loop"
