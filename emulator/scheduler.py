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

from .clock import Clock, ManualClock

log = logging.getLogger("emulator.scheduler")


class Job(Protocol):
    """Something that happens at a virtual time. ``cancelled`` jobs are dropped when popped."""

    cancelled: bool

    async def run(self, due: float) -> None: ...


class Scheduler:
    def __init__(self, clock: Clock, concurrency: int = 256) -> None:
        self.clock = clock
        self._heap: list[tuple[float, int, Job]] = []
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()
        self._limit = asyncio.Semaphore(concurrency)
        self._inflight: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None

    # -- planning -------------------------------------------------------------------------

    def schedule(self, due: float, job: Job) -> None:
        earliest = not self._heap or due < self._heap[0][0]
        heapq.heappush(self._heap, (due, next(self._seq), job))
        if earliest:
            self._wakeup.set()

    def pending(self) -> int:
        return sum(1 for _, _, job in self._heap if not job.cancelled)

    def next_due(self) -> float | None:
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def purge_cancelled(self) -> None:
        self._heap = [entry for entry in self._heap if not entry[2].cancelled]
        heapq.heapify(self._heap)

    # -- firing ---------------------------------------------------------------------------

    async def _fire(self, job: Job, due: float) -> None:
        async with self._limit:
            if job.cancelled:
                return
            try:
                await job.run(due)
            except Exception:  # a failing job must never stop the timer
                log.exception("scheduled job failed")

    def _pop_due(self, limit: float) -> tuple[float, list[Job]] | None:
        """Pop every live job sharing the earliest due time, if that time is <= limit."""
        due = self.next_due()
        if due is None or due > limit:
            return None
        batch: list[Job] = []
        while self._heap and self._heap[0][0] == due:
            _, _, job = heapq.heappop(self._heap)
            if not job.cancelled:
                batch.append(job)
        return due, batch

    async def advance(self, seconds: float) -> float:
        """Manual clock: move time forward, firing everything that falls due, in time order.

        Jobs due at the same instant run concurrently; a job that schedules another one
        inside the window (a retry) sees it fired in this same call.
        """
        clock = self.clock
        if not isinstance(clock, ManualClock):
            raise RuntimeError("only a manual clock can be advanced")
        async with clock.lock:
            target = clock.now() + max(0.0, seconds)
            while (popped := self._pop_due(target)) is not None:
                due, batch = popped
                clock.set(due)
                await asyncio.gather(*(self._fire(job, due) for job in batch))
            clock.set(target)
            return clock.now()

    def start(self) -> None:
        if not self.clock.manual and self._loop_task is None:
            self._loop_task = asyncio.create_task(self._run_realtime(), name="scheduler")

    async def _run_realtime(self) -> None:
        while True:
            now = self.clock.now()
            while (popped := self._pop_due(now)) is not None:
                due, batch = popped
                for job in batch:
                    task = asyncio.create_task(self._fire(job, due))
                    self._inflight.add(task)
                    task.add_done_callback(self._inflight.discard)
            due = self.next_due()
            timeout = None if due is None else self.clock.real_delay(due - now)
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout)
            except TimeoutError:
                pass

    async def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            try:
                await self._loop_task
            except asyncio.CancelledError:
                pass
            self._loop_task = None
        for task in list(self._inflight):
            task.cancel()
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
