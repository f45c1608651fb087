"""One timer structure for every planned event.

A heap keyed by virtual due time drives all callbacks, retries and scheduled inbound
traffic, so 100k pending callbacks cost 100k small heap entries, not 100k sleeping tasks.
In realtime mode a single loop task sleeps until the earliest due time; in manual mode
nothing fires until :meth:`Scheduler.advance` walks the clock forward.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from typing import Protocol

from emulator.delivery.clock import Clock, ManualClock
from emulator.delivery.internal_errors import InternalErrors

log = logging.getLogger("emulator.delivery.scheduler")


class Job(Protocol):
    """Something that happens at a virtual time. ``cancelled`` jobs are dropped when popped.

    ``entry`` is the scheduler's: the heap entry the job is planned under, set by
    :meth:`Scheduler.schedule` and back to None once it fired or was cancelled through
    :meth:`Scheduler.cancel`. A job is planned once at a time: scheduling it again moves it.
    """

    entry: Entry | None

    @property
    def cancelled(self) -> bool: ...

    async def run(self, due: float) -> None: ...


# A heap entry: (due, sequence, job). A tuple, 16 bytes smaller than a list, as there is one
# per pending callback (bench/RESULTS.md, 'Memory per stored message'); an entry that is no
# longer its job's (cancelled through the scheduler, or the job moved) is skipped when
# popped: the heapq documentation's "mark as removed" recipe, with the mark on the job.
Entry = tuple[float, int, Job]


def _interleaved(batch: list[Job]) -> list[Job]:
    """The jobs round-robin by their ``lane`` (a receiver), each lane in its own order."""
    return _interleave(batch)[0]


def _interleave(batch: list[Job]) -> tuple[list[Job], int]:
    """:func:`_interleaved`, and how many lanes there are."""
    lanes: dict[object, list[Job]] = {}
    for job in batch:
        lanes.setdefault(getattr(job, "lane", None), []).append(job)
    if len(lanes) == 1:
        return batch, 1
    return [job for row in itertools.zip_longest(*lanes.values()) for job in row if job is not None], len(lanes)


class Scheduler:
    def __init__(self, clock: Clock, concurrency: int = 256) -> None:
        self.clock = clock
        self._heap: list[Entry] = []
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()
        self._concurrency = concurrency
        # How many jobs of one lane can make progress at once: the dispatcher's bound per
        # receiver (set by the service). None: no such bound.
        self.lane_limit: int | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._live = 0  # entries neither fired nor cancelled through cancel()
        self.internal_errors = InternalErrors()  # shared with the service's (/_emulator/health)
        # Set by halt(): nothing fires any more, whatever is due (the jobs stay in the heap,
        # and their records say when they were due, so --db resumes them at the next start).
        self.stopped = False

    # -- planning -------------------------------------------------------------------------

    def schedule(self, due: float, job: Job) -> Entry:
        """Plan ``job`` at virtual time ``due``; returns a handle for :meth:`cancel`."""
        earliest = not self._heap or due < self._heap[0][0]
        entry: Entry = (due, next(self._seq), job)
        if job.entry is not None:  # planned already: that entry is no longer its
            self._live -= 1
        job.entry = entry
        heapq.heappush(self._heap, entry)
        self._live += 1
        if earliest:
            self._wakeup.set()
        return entry

    def cancel(self, entry: Entry) -> None:
        """The entry's job will not fire for it; a no-op once it fired or was cancelled."""
        job = entry[2]
        if job.entry is entry:
            job.entry = None
            self._live -= 1
            # Compact once dead entries outnumber live ones, so cancelling stays O(1) amortised.
            if len(self._heap) > 64 and len(self._heap) > 2 * self._live:
                self.purge_cancelled()

    def pending(self) -> int:
        return self._live

    def _taken(self, entry: Entry) -> Job | None:
        """Pop-time check of an entry leaving the heap: its job if it is to fire, else None.
        Counts the entry out of :meth:`pending` unless :meth:`cancel` already did."""
        job = entry[2]
        if job.entry is not entry:
            return None  # cancelled through cancel(), or moved: counted out then
        job.entry = None
        self._live -= 1
        return None if job.cancelled else job

    def next_due(self) -> float | None:
        heap = self._heap
        while heap:
            head = heap[0]
            job = head[2]
            if job.entry is head and not job.cancelled:
                return head[0]
            self._taken(heapq.heappop(heap))
        return None

    def purge_cancelled(self) -> None:
        live = []
        for entry in self._heap:
            job = entry[2]
            if job.entry is entry and not job.cancelled:
                live.append(entry)
            else:
                self._taken(entry)
        self._heap = live
        heapq.heapify(self._heap)

    # -- firing ---------------------------------------------------------------------------

    async def _fire(self, job: Job, due: float) -> None:
        if job.cancelled or self.stopped:
            return
        try:
            await job.run(due)
        except Exception as exc:  # a failing job must never stop the timer
            log.exception("scheduled job failed")
            self.internal_errors.record("scheduled job", exc)

    def _pop_due(self, limit: float) -> tuple[float, list[Job]] | None:
        """Pop every live job sharing the earliest due time, if that time is <= limit."""
        due = self.next_due()
        if due is None or due > limit:
            return None
        heap = self._heap
        batch: list[Job] = []
        taken = self._taken
        while heap and heap[0][0] == due:
            # Fired: a late cancel() of this handle is a no-op.
            job = taken(heapq.heappop(heap))
            if job is not None:
                batch.append(job)
        return due, batch

    async def _run_batch(self, batch: list[Job], due: float) -> None:
        """Run jobs due at one instant with at most ``concurrency`` of them at a time, taken
        round-robin across receivers: a receiver with many callbacks due (and hanging) cannot
        keep the workers from another's (docs/callbacks.md, 'Time, scale and shutdown')."""
        if len(batch) == 1:
            await self._fire(batch[0], due)
            return
        ordered, lanes = _interleave(batch)
        jobs = iter(ordered)
        workers = min(self._concurrency, len(batch))
        if lanes == 1 and self.lane_limit:
            # One receiver: workers beyond its bound would only queue for its slots.
            workers = min(workers, self.lane_limit)

        async def worker() -> None:
            # Scheduler._fire inlined: a storm runs 100,000 jobs through here.
            for job in jobs:
                if job.cancelled or self.stopped:
                    continue
                try:
                    await job.run(due)
                except Exception as exc:  # a failing job must never stop the timer
                    log.exception("scheduled job failed")
                    self.internal_errors.record("scheduled job", exc)

        await asyncio.gather(*(worker() for _ in range(workers)))

    async def advance(self, seconds: float) -> float:
        """Manual clock: move time forward, firing everything that falls due, in time order.

        Jobs due at the same instant run concurrently (bounded); a job that schedules another
        one inside the window (a retry) sees it fired in this same call.
        """
        clock = self.clock
        if not isinstance(clock, ManualClock):
            raise RuntimeError("only a manual clock can be advanced")
        async with clock.lock:
            target = clock.now() + max(0.0, seconds)
            while not self.stopped and (popped := self._pop_due(target)) is not None:
                due, batch = popped
                clock.set(due)
                await self._run_batch(batch, due)
            clock.set(target)
            return clock.now()

    def start(self) -> None:
        if not self.clock.manual and self._loop_task is None:
            self._loop_task = asyncio.create_task(self._run_realtime(), name="scheduler")

    async def _run_realtime(self) -> None:
        # No bound here: a job waiting for its receiver's turn must not hold a slot that
        # another receiver's job needs. The dispatcher bounds the POSTs, per receiver and in all.
        fire = self._fire
        while not self.stopped:
            now = self.clock.now()
            while (popped := self._pop_due(now)) is not None:
                due, batch = popped
                for job in batch:
                    task = asyncio.create_task(fire(job, due))
                    self._inflight.add(task)
                    task.add_done_callback(self._inflight.discard)
            upcoming = self.next_due()
            timeout = None if upcoming is None else self.clock.real_delay(upcoming - now)
            self._wakeup.clear()
            # Not asyncio.wait_for: on Python 3.11 it can swallow a cancellation that arrives
            # as the wait ends (a retry being scheduled), and the loop then never stops.
            try:
                async with asyncio.timeout(timeout):
                    await self._wakeup.wait()
            except TimeoutError:
                pass

    def halt(self) -> list[asyncio.Task[None]]:
        """Stop firing at once: nothing due fires any more, and what is in flight is cancelled.

        Synchronous, so a signal handler can call it before anything else gets a turn.
        Returns the tasks still to wait for (see :meth:`stop`).
        """
        self.stopped = True
        self._wakeup.set()
        tasks = list(self._inflight)
        if self._loop_task is not None:
            tasks.append(self._loop_task)
        for task in tasks:
            task.cancel()  # a no-op for a task already cancelled or done
        return [task for task in tasks if not task.done()]

    async def stop(self, grace: float = 2.0) -> None:
        """:meth:`halt`, then wait at most ``grace`` seconds for the cancelled tasks.

        An attempt cut short is not journaled; its callback stays pending, due when it was,
        so a restart under --db makes that attempt again (at least once, as Bandwidth).
        """
        tasks = self.halt()
        self._loop_task = None
        if tasks:
            # Bounded: a job that ignores its cancellation must not hold up the exit.
            _, stuck = await asyncio.wait(tasks, timeout=grace)
            for task in stuck:
                log.warning("scheduled job still running at shutdown: %s", task.get_name())
