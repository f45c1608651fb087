"""emulator/state/waiters.py: long-polls indexed by what they wait for.

A toy family of records (account, tag, state; ``to`` with several values) over a dict, so
that every query (``find``) and every look at a record (``values``) can be counted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pytest

from emulator.state.changes import Change, Changes
from emulator.state.waiters import Family, Key, WaitIndex


@dataclass
class Rec:
    id: str
    account: str
    tag: str | None
    to: tuple[str, ...]
    state: str = "pending"


class Toy:
    """A store of records and an index over it, counting what the index does."""

    def __init__(self) -> None:
        self.changes = Changes()
        self.records: dict[str, Rec] = {}
        self.finds: list[Key] = []
        self.looked_at = 0
        self.idents = 0
        self.on_find: Any = None
        family = Family(
            fields=("account", "tag", "to", "state"),
            values=self.values,
            several=frozenset({2}),
            mutable=frozenset({3}),
            ident=self.ident,
            records=self.concerned,
            find=self.find,
            exists=lambda i: i in self.records,
        )
        self.index = WaitIndex(self.changes, {"recs": family})

    def values(self, r: Rec) -> tuple[object, ...]:
        self.looked_at += 1
        return (r.account, r.tag, r.to, r.state)

    def ident(self, r: Rec) -> str:
        self.idents += 1
        return r.id

    def concerned(self, change: Change) -> Iterable[Rec]:
        r = self.records.get(change.message_id or "")
        return () if r is None else (r,)

    def find(self, key: Key) -> list[Rec]:
        self.finds.append(key)
        found = [r for r in self.records.values() if matches(r, key)]
        if self.on_find is not None:
            hook, self.on_find = self.on_find, None
            hook()
        return found

    def put(self, r: Rec) -> None:
        self.records[r.id] = r
        self.changes.bump(Change("message", r.account, r.id))

    def set_state(self, record_id: str, state: str) -> None:
        r = self.records[record_id]
        r.state = state
        self.changes.bump(Change("message", r.account, r.id))

    def reset(self, account: str | None) -> None:
        self.records = {i: r for i, r in self.records.items() if account is not None and r.account != account}
        self.changes.bump(Change("reset", account))

    def wait(self, count: int = 1, timeout: float = 30, gone: asyncio.Future[None] | None = None,
             **where: str) -> asyncio.Task[tuple[list[Any], bool]]:
        key = (where.get("account"), where.get("tag"), where.get("to"), where.get("state"))
        return asyncio.create_task(self.index.wait("recs", key, count, timeout, gone))

    async def open(self, n: int) -> None:
        """Until ``n`` waits are registered (each registers before its first await)."""
        for _ in range(100):
            if self.index.open == n:
                return
            await asyncio.sleep(0)  # a turn of the loop for the tasks just created, not a delay
        raise AssertionError(f"{self.index.open} waits open, expected {n}")


async def turns() -> None:
    """Let every task woken so far run up to its next wait (loop turns, not a delay)."""
    for _ in range(5):
        await asyncio.sleep(0)


def matches(r: Rec, key: Key) -> bool:
    account, tag, to, state = key
    return ((account is None or r.account == account) and (tag is None or r.tag == tag)
            and (to is None or to in r.to) and (state is None or r.state == state))


def names(result: tuple[list[Any], bool]) -> tuple[list[str], bool]:
    return [r.id for r in result[0]], result[1]


async def test_a_change_wakes_only_the_waiters_it_matches() -> None:
    toy = Toy()
    tagged = toy.wait(tag="a")
    other_tag = toy.wait(tag="b")
    other_account = toy.wait(account="2", tag="a")
    to_someone = toy.wait(to="+2")
    await toy.open(4)
    assert len(toy.finds) == 4  # each checked once before waiting
    toy.put(Rec("r1", "1", "a", ("+1", "+2")))
    assert names(await asyncio.wait_for(tagged, 5)) == (["r1"], True)
    assert names(await asyncio.wait_for(to_someone, 5)) == (["r1"], True)
    assert len(toy.finds) == 6  # the two woken ones queried again before answering, nobody else
    assert not other_tag.done() and not other_account.done()
    assert toy.index.open == 2
    for task in (other_tag, other_account):
        task.cancel()
    await asyncio.gather(other_tag, other_account, return_exceptions=True)
    assert toy.index.open == 0 and toy.index.watches("recs") == 0


async def test_a_change_looks_at_its_record_once_whatever_the_number_of_waiters() -> None:
    toy = Toy()
    waits = [toy.wait(tag=f"never-{i}") for i in range(200)]
    waits += [toy.wait(account="1", tag=f"never-{i}", state="delivered") for i in range(200)]
    await toy.open(400)
    finds, looked_at = len(toy.finds), toy.looked_at
    for i in range(50):
        toy.put(Rec(f"r{i}", "1", "a", ("+1",)))
    await turns()
    assert toy.looked_at - looked_at == 50  # one look per changed record
    assert len(toy.finds) == finds  # and no query: nobody's filter matched
    assert toy.index.open == 400
    for task in waits:
        task.cancel()
    await asyncio.gather(*waits, return_exceptions=True)
    assert toy.index.open == 0


async def test_a_record_no_watch_can_count_costs_no_id() -> None:
    # Making a record's id can cost (a callback's is formatted): only when a watch may count it.
    toy = Toy()
    waits = [toy.wait(tag=f"never-{i}") for i in range(20)] + [toy.wait(account="1", to="+9")]
    await toy.open(21)
    idents = toy.idents
    for i in range(10):
        toy.put(Rec(f"r{i}", "1", "a", ("+1", "+2")))
    assert toy.idents == idents
    toy.put(Rec("hit", "1", "never-3", ("+1",)))
    assert names(await asyncio.wait_for(waits[3], 5)) == (["hit"], True)
    for task in waits:
        task.cancel()
    await asyncio.gather(*waits, return_exceptions=True)


async def test_filters_on_one_of_several_values_alone_with_others_and_after_they_went() -> None:
    toy = Toy()
    alone = toy.wait(to="+2")
    with_account = toy.wait(account="1", to="+3")
    other_account = toy.wait(account="2", to="+3")
    tagged = toy.wait(tag="a")
    await toy.open(4)
    toy.put(Rec("r1", "1", "a", ("+1", "+2", "+3")))
    for task in (alone, with_account, tagged):
        assert names(await asyncio.wait_for(task, 5)) == (["r1"], True)
    assert not other_account.done()
    other_account.cancel()
    await asyncio.gather(other_account, return_exceptions=True)
    assert toy.index.watches("recs") == 0
    # Every shape of filter went; one that comes back is looked up again.
    again = toy.wait(to="+4", count=2)
    await toy.open(1)
    toy.put(Rec("r2", "1", None, ("+4",)))
    toy.put(Rec("r3", "2", None, ("+5", "+4")))
    assert names(await asyncio.wait_for(again, 5)) == (["r2", "r3"], True)


async def test_count_is_reached_by_distinct_matching_records() -> None:
    toy = Toy()
    toy.put(Rec("r0", "1", "a", ("+1",)))
    three = toy.wait(count=3, tag="a")
    two = toy.wait(count=2, tag="a")
    await toy.open(2)
    finds = len(toy.finds)
    toy.put(Rec("x", "1", "b", ("+1",)))  # does not match
    toy.set_state("r0", "delivered")  # the same record again: still one
    await turns()
    assert len(toy.finds) == finds
    toy.put(Rec("r1", "1", "a", ("+1",)))
    assert names(await asyncio.wait_for(two, 5)) == (["r0", "r1"], True)
    assert not three.done()
    toy.put(Rec("r2", "1", "a", ("+1",)))
    assert names(await asyncio.wait_for(three, 5)) == (["r0", "r1", "r2"], True)


async def test_a_record_that_stops_matching_is_no_longer_counted() -> None:
    toy = Toy()
    pending_two = toy.wait(count=2, state="pending")
    await toy.open(1)
    finds = len(toy.finds)
    toy.put(Rec("r1", "1", "a", ("+1",)))
    toy.set_state("r1", "delivered")
    toy.put(Rec("r2", "1", "a", ("+1",)))
    await turns()
    assert len(toy.finds) == finds  # one pending record now: not woken
    assert not pending_two.done()
    toy.put(Rec("r3", "1", "a", ("+1",)))
    assert names(await asyncio.wait_for(pending_two, 5)) == (["r2", "r3"], True)


async def test_a_record_counted_by_several_tracked_filters_leaves_each_it_stops_matching() -> None:
    toy = Toy()
    anywhere = toy.wait(count=4, state="pending")
    in_one = toy.wait(count=4, account="1", state="pending")
    tagged = toy.wait(count=3, tag="a", state="pending")
    await toy.open(3)
    toy.put(Rec("r1", "1", "a", ("+1",)))  # counted by all three
    toy.put(Rec("r2", "2", "a", ("+1",)))  # by two
    toy.put(Rec("r3", "1", "b", ("+1",)))  # by two
    assert toy.index.tracked("recs") == 3
    tagged.cancel()
    await asyncio.gather(tagged, return_exceptions=True)
    assert toy.index.tracked("recs") == 3  # r1 and r2 still counted by the others
    toy.set_state("r1", "delivered")
    toy.set_state("r3", "delivered")
    assert toy.index.tracked("recs") == 1  # only r2 (account 2), by the unfiltered one
    await turns()
    toy.put(Rec("r4", "1", "c", ("+1",)))
    toy.put(Rec("r5", "1", "c", ("+1",)))
    toy.put(Rec("r6", "1", "c", ("+1",)))
    assert names(await asyncio.wait_for(anywhere, 5)) == (["r2", "r4", "r5", "r6"], True)
    await turns()
    assert not in_one.done()  # r1 and r3 left it: three pending records of account 1
    in_one.cancel()
    await asyncio.gather(in_one, return_exceptions=True)
    assert toy.index.tracked("recs") == 0 and toy.index.watches("recs") == 0


async def test_a_reset_forgets_what_it_removed_in_that_account_only() -> None:
    toy = Toy()
    toy.put(Rec("a1", "1", "t", ("+1",)))
    toy.put(Rec("b1", "2", "t", ("+1",)))
    in_one = toy.wait(count=2, account="1", tag="t")
    in_two = toy.wait(count=2, account="2", tag="t")
    anywhere = toy.wait(count=4, tag="t")
    await toy.open(3)
    toy.reset("1")
    finds = len(toy.finds)
    toy.put(Rec("a2", "1", "t", ("+1",)))  # one in account 1 since the reset: not two
    assert not in_one.done()
    toy.put(Rec("b2", "2", "t", ("+1",)))  # account 2 kept b1: two now
    assert names(await asyncio.wait_for(in_two, 5)) == (["b1", "b2"], True)
    assert not anywhere.done() and not in_one.done()  # b1, a2, b2: three, as a1 is not counted
    assert len(toy.finds) == finds + 1  # only the poll that answered queried again
    toy.put(Rec("a3", "1", "t", ("+1",)))
    assert names(await asyncio.wait_for(in_one, 5)) == (["a2", "a3"], True)
    assert names(await asyncio.wait_for(anywhere, 5))[1] is True


async def test_a_reset_of_everything_forgets_everything() -> None:
    toy = Toy()
    toy.put(Rec("a1", "1", "t", ("+1",)))
    two = toy.wait(count=2, account="1")
    await toy.open(1)
    toy.reset(None)
    toy.put(Rec("a2", "1", "t", ("+1",)))
    assert not two.done()
    toy.put(Rec("a3", "1", "t", ("+1",)))
    assert names(await asyncio.wait_for(two, 5)) == (["a2", "a3"], True)


async def test_nothing_is_missed_between_the_check_and_the_registration() -> None:
    toy = Toy()
    # The change lands right after the first query has read the store, before the wait
    # would have been registered had it registered after its query.
    toy.on_find = lambda: toy.put(Rec("r1", "1", "a", ("+1",)))
    poll = toy.wait(tag="a")
    assert names(await asyncio.wait_for(poll, 5)) == (["r1"], True)


async def test_what_was_counted_but_is_gone_is_checked_before_answering() -> None:
    toy = Toy()
    poll = toy.wait(count=2, tag="a")
    await toy.open(1)
    toy.put(Rec("r1", "1", "a", ("+1",)))
    del toy.records["r1"]  # removed without a change (as a failed write does)
    toy.put(Rec("r2", "1", "a", ("+1",)))  # the index counts two, the store holds one
    await turns()  # the woken poll queries, finds one, and waits again
    assert not poll.done()
    toy.put(Rec("r3", "1", "a", ("+1",)))
    assert names(await asyncio.wait_for(poll, 5)) == (["r2", "r3"], True)


async def test_a_timeout_answers_with_what_there_is() -> None:
    toy = Toy()
    toy.put(Rec("r1", "1", "a", ("+1",)))
    assert names(await toy.wait(count=2, tag="a", timeout=0.01)) == (["r1"], False)
    assert names(await toy.wait(count=1, tag="a", timeout=0)) == (["r1"], True)
    assert toy.index.open == 0 and toy.index.watches("recs") == 0


async def test_a_waiter_whose_client_left_is_dropped_at_once() -> None:
    toy = Toy()
    seen: list[int] = []
    toy.index.observe(seen.append)
    gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    poll = toy.wait(tag="a", gone=gone, timeout=60)
    await toy.open(1)
    gone.set_result(None)
    assert names(await asyncio.wait_for(poll, 5)) == ([], False)
    assert toy.index.open == 0 and toy.index.watches("recs") == 0
    assert seen == [1, 0]


async def test_closing_answers_every_open_wait_and_later_ones_at_once() -> None:
    toy = Toy()
    polls = [toy.wait(tag="a", timeout=60), toy.wait(tag="b", timeout=60)]
    await toy.open(2)
    toy.changes.close()
    assert [names(r) for r in await asyncio.wait_for(asyncio.gather(*polls), 5)] == [([], False), ([], False)]
    assert names(await asyncio.wait_for(toy.wait(tag="a", timeout=60), 5)) == ([], False)


@pytest.mark.parametrize("waiters", [1, 300])
async def test_many_waiters_on_one_filter_wake_together(waiters: int) -> None:
    toy = Toy()
    polls = [toy.wait(count=1 + i % 3, to="+5") for i in range(waiters)]
    await toy.open(waiters)
    assert toy.index.watches("recs") == 1
    for i in range(3):
        toy.put(Rec(f"r{i}", "1", None, ("+4", "+5")))
    results = await asyncio.wait_for(asyncio.gather(*polls), 5)
    assert all(met for _, met in results)
    assert toy.index.open == 0
