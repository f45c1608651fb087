"""emulator/state/changes.py: the change counter long-polls wait on."""

from __future__ import annotations

import asyncio

from emulator.state.changes import Change, Changes

A_CHANGE = Change("message", "9900000", "m-1")


class Watched(Changes):
    """Changes that tell the test each time someone starts waiting."""

    def __init__(self) -> None:
        super().__init__()
        self.entered: asyncio.Queue[float] = asyncio.Queue()

    async def wait(self, timeout: float) -> bool:
        self.entered.put_nowait(timeout)
        return await super().wait(timeout)


async def waiting(changes: Watched) -> None:
    """Until the next wait has started (and registered itself, which it does before awaiting)."""
    await asyncio.wait_for(changes.entered.get(), 5)


async def test_a_bump_wakes_every_waiter() -> None:
    changes = Watched()
    first = asyncio.create_task(changes.wait(30))
    second = asyncio.create_task(changes.wait(30))
    await waiting(changes)
    await waiting(changes)
    changes.bump(A_CHANGE)
    assert await asyncio.wait_for(asyncio.gather(first, second), 5) == [True, True]
    assert changes.version == 1


async def test_a_wait_without_a_change_times_out() -> None:
    changes = Watched()
    assert await changes.wait(0.01) is False
    assert changes._waiting == 0


async def test_a_bump_before_the_wait_is_not_seen_by_it() -> None:
    # The version moves, but the waiter re-checks its condition first: wait only for the next change.
    changes = Watched()
    changes.bump(A_CHANGE)
    changes.bump(A_CHANGE)
    assert changes.version == 2
    assert await changes.wait(0.01) is False


async def test_each_bump_wakes_the_next_waits_too() -> None:
    changes = Watched()
    for expected_version in (1, 2, 3):
        task = asyncio.create_task(changes.wait(30))
        await waiting(changes)
        changes.bump(A_CHANGE)
        assert await asyncio.wait_for(task, 5) is True
        assert changes.version == expected_version


async def test_wait_until_rechecks_its_condition_after_every_change() -> None:
    changes = Watched()
    items: list[int] = []
    checks = 0

    def three() -> bool:
        nonlocal checks
        checks += 1
        return len(items) >= 3

    task = asyncio.create_task(changes.wait_until(three, 30))
    for i in range(3):
        await waiting(changes)
        items.append(i)
        changes.bump(A_CHANGE)
    assert await asyncio.wait_for(task, 5) is True
    assert checks == 4  # once before waiting, then after each of the three changes


async def test_wait_until_holds_at_once_or_times_out() -> None:
    changes = Watched()
    assert await changes.wait_until(lambda: True, 0) is True
    assert await changes.wait_until(lambda: False, 0.01) is False


async def test_close_answers_open_waits_and_every_later_one_at_once() -> None:
    changes = Watched()
    task = asyncio.create_task(changes.wait_until(lambda: False, 60))
    await waiting(changes)
    changes.close()
    assert await asyncio.wait_for(task, 5) is False
    assert changes.closed
    assert await asyncio.wait_for(changes.wait(60), 5) is False
    assert await asyncio.wait_for(changes.wait_until(lambda: False, 60), 5) is False
    assert await changes.wait_until(lambda: True, 60) is True  # a condition that holds still holds


def test_listeners_are_told_every_change_in_order_until_they_stop() -> None:
    changes = Changes()
    seen: list[Change] = []
    stop = changes.listen(seen.append)
    second = Change("callback", "9900000", "m-1", "c-1")
    changes.bump(A_CHANGE)
    changes.bump(second)
    stop()
    changes.bump(A_CHANGE)
    assert seen == [A_CHANGE, second]
    assert changes.version == 3


def test_when_closed_is_called_on_close_or_at_once_when_already_closed() -> None:
    changes = Changes()
    called: list[str] = []
    changes.when_closed(lambda: called.append("before"))
    assert called == []
    changes.close()
    assert called == ["before"]
    changes.when_closed(lambda: called.append("after"))
    assert called == ["before", "after"]
    changes.close()  # a second close calls nobody again
    assert called == ["before", "after"]
