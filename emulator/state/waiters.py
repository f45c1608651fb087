"""Long-polls, indexed by what they wait for (docs/control-api.md, 'Long-polling: waiting
without sleeping').

A long-poll waits until at least ``count`` records of one family (messages or callbacks)
match a filter. A filter is a key: a tuple with one value per field of the family, None
for a field it leaves open. Waiters with the same key share a :class:`Watch`, which keeps
the ids of the records that match the key now, counted as changes come in, so that no
change ever rescans the journal.

On a :class:`~emulator.state.changes.Change`, the index takes the records it concerns and
finds the watches each may match by hashing, not by trying every watch: for every set of
fields some watch constrains (a "shape"; a family of five fields has at most 32), the key
made of the record's own values for those fields. A change therefore costs the same whether
nobody, one client or thousands wait, and whatever the size of the journal; and only the
waiters whose count is now reached wake. A woken waiter checks with the real query before
it answers, so that what the index counted too generously (a record deleted without a
change, say) only costs that check, never a wrong answer.

A waiter whose client has gone is dropped at once: whoever waits passes a future that is
resolved when the client goes.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Literal

from emulator.state.changes import Change, Changes

Key = tuple[Any, ...]
Why = Literal["woken", "timeout", "gone", "closed"]


@dataclass(frozen=True, slots=True)
class Family:
    """One kind of record long-polls wait for, and how to read it.

    ``values(record)``: the record's value of each field, None when it has none; for the
    fields in ``several`` (a message's recipients), a tuple of values, any of which a filter
    may ask for. ``mutable``: the fields that may change once the record exists (a
    callback's state), so that a record that changed leaves the watches it no longer
    matches. ``records(change)``: the records of this family that a change concerns.
    ``find(key)``: the real query, every matching record in order. ``exists(id)``: whether
    the record is still stored. Field 0 is the account.
    """

    fields: tuple[str, ...]
    values: Callable[[Any], tuple[Any, ...]]
    several: frozenset[int]
    mutable: frozenset[int]
    ident: Callable[[Any], str]
    records: Callable[[Change], Iterable[Any]]
    find: Callable[[Key], list[Any]]
    exists: Callable[[str], bool]


class Waiter:
    __slots__ = ("active", "count", "future")

    def __init__(self, count: int, future: asyncio.Future[Why]) -> None:
        self.count = count
        self.future = future
        self.active = True

    def wake(self, why: Why) -> None:
        if not self.future.done():
            self.future.set_result(why)


class Watch:
    """The waiters for one key, and the ids of the records that match it now."""

    __slots__ = ("_heap", "_seq", "ids", "key", "live", "tracked")

    def __init__(self, key: Key, tracked: bool) -> None:
        self.key = key
        self.ids: set[str] = set()
        self.live = 0
        # The key constrains a mutable field: its records are tracked so as to leave it.
        self.tracked = tracked
        # The waiters not yet woken, fewest records wanted first; leavers stay until popped
        # or until the heap is rebuilt.
        self._heap: list[tuple[int, int, Waiter]] = []
        self._seq = 0

    def arm(self, waiter: Waiter) -> None:
        if len(self.ids) >= waiter.count:
            waiter.wake("woken")
            return
        self._seq += 1
        heapq.heappush(self._heap, (waiter.count, self._seq, waiter))

    def add(self, record_id: str) -> bool:
        """Count a record that matches; False when it was counted already."""
        ids = self.ids
        if record_id in ids:
            return False
        ids.add(record_id)
        heap = self._heap
        while heap and heap[0][0] <= len(ids):
            waiter = heapq.heappop(heap)[2]
            if waiter.active:
                waiter.wake("woken")
        return True

    def leave(self) -> None:
        self.live -= 1
        heap = self._heap
        if len(heap) > 2 * self.live + 16:
            self._heap = [entry for entry in heap if entry[2].active]
            heapq.heapify(self._heap)


class Table:
    """The watches of one family: by shape (the fields a key constrains) and the values of
    those fields, and, for keys on a mutable field, by record (so that a record that changed
    leaves them)."""

    __slots__ = ("_plan", "family", "members", "shapes", "watches")

    def __init__(self, family: Family) -> None:
        self.family = family
        # (shape, the key's values of the shape's fields) -> its watch.
        self.watches: dict[tuple[Any, ...], Watch] = {}
        # Shape -> [how many watches have it, the getter of its fields' values, whether it
        # has exactly one field (the getter then answers the value, not a tuple)].
        self.shapes: dict[tuple[int, ...], list[Any]] = {}
        # Record id -> the tracked watch that counts it, or the list of them when several do
        # (rare): no list for each record of a filter that counts many (state=delivered, say).
        self.members: dict[str, Watch | list[Watch]] = {}
        # What :meth:`changed` walks: per shape in use, (shape, getter, whether it has one
        # field, whether it constrains a field with several values); rebuilt when a shape
        # comes or goes, which is rare, so that a change reads a flat list.
        self._plan: list[tuple[tuple[int, ...], Any, bool, bool]] = []

    def _where(self, key: Key) -> tuple[tuple[int, ...], Any]:
        """Where the watch of ``key`` is kept: its shape, and its values of the shape's fields
        as the shape's getter answers them for a record."""
        shape = tuple(i for i, value in enumerate(key) if value is not None)
        if not shape:
            return shape, ()
        getter: Callable[[Key], Any] = itemgetter(*shape)
        return shape, getter(key)

    def join(self, key: Key) -> Watch:
        where = self._where(key)
        watch = self.watches.get(where)
        if watch is None:
            shape = where[0]
            watch = self.watches[where] = Watch(key, any(i in self.family.mutable for i in shape))
            entry = self.shapes.get(shape)
            if entry is None:
                self.shapes[shape] = [1, itemgetter(*shape) if shape else None, len(shape) == 1]
                self._replan()
            else:
                entry[0] += 1
        watch.live += 1
        return watch

    def leave(self, watch: Watch) -> None:
        watch.leave()
        if watch.live:
            return
        where = self._where(watch.key)
        del self.watches[where]
        entry = self.shapes[where[0]]
        entry[0] -= 1
        if not entry[0]:
            del self.shapes[where[0]]
            self._replan()
        self.replace(watch, set())

    def _replan(self) -> None:
        several = self.family.several
        self._plan = [
            (shape, getter, single, any(i in several for i in shape))
            for shape, (_, getter, single) in self.shapes.items()
        ]

    def add(self, watch: Watch, record_id: str) -> None:
        if watch.add(record_id) and watch.tracked:
            members = self.members
            held = members.get(record_id)
            if held is None:
                members[record_id] = watch
            elif isinstance(held, Watch):
                members[record_id] = [held, watch]
            else:
                held.append(watch)

    def replace(self, watch: Watch, ids: set[str]) -> None:
        """What the watch counts is now ``ids`` (a query's answer, or what a reset left)."""
        if watch.tracked:
            for record_id in watch.ids - ids:
                self._forget(record_id, watch)
            watch.ids = set()
            for record_id in ids:
                self.add(watch, record_id)
        else:
            watch.ids = ids

    def _forget(self, record_id: str, watch: Watch) -> None:
        held = self.members.get(record_id)
        if held is watch:
            del self.members[record_id]
        elif isinstance(held, list) and watch in held:
            held.remove(watch)
            if not held:
                del self.members[record_id]

    def changed(self, record: Any) -> None:
        """A record was stored or changed: counted by every watch it matches now, and by no
        tracked watch it no longer matches. One dictionary look-up per shape in use (per
        value of a field with several, for the shapes that constrain it); the record's id is
        only made when a watch has it or may now count it."""
        family = self.family
        values = family.values(record)
        record_id: str | None = None
        members = self.members
        if members:
            record_id = family.ident(record)
            held = members.get(record_id)
            if held is not None:
                for watch in (held,) if isinstance(held, Watch) else list(held):
                    key = watch.key
                    if any(key[i] is not None and key[i] != values[i] for i in family.mutable):
                        watch.ids.discard(record_id)
                        self._forget(record_id, watch)
        watches = self.watches
        variants: list[tuple[Any, ...]] | None = None
        for shape, getter, single, spread in self._plan:
            if getter is None:
                match = watches.get((shape, ()))
                if match is not None:
                    if record_id is None:
                        record_id = family.ident(record)
                    self.add(match, record_id)
                continue
            if not spread:
                chosen = getter(values)
                if chosen is None if single else None in chosen:
                    continue  # the record has no value for a field of this shape
                match = watches.get((shape, chosen))
                if match is not None:
                    if record_id is None:
                        record_id = family.ident(record)
                    self.add(match, record_id)
                continue
            # A field with several values (a message's recipients): one look-up per value.
            if single:  # the shape is that field alone: its values are the keys
                for chosen in values[shape[0]] or ():
                    match = watches.get((shape, chosen))
                    if match is not None:
                        if record_id is None:
                            record_id = family.ident(record)
                        self.add(match, record_id)
                continue
            # Else one variant of the record per value, built only when such a shape is in use.
            if variants is None:
                variants = [values]
                for i in family.several:
                    variants = [(*v[:i], one, *v[i + 1:]) for v in variants for one in (v[i] or (None,))]
            for variant in variants:
                chosen = getter(variant)
                if chosen is None if single else None in chosen:
                    continue
                match = watches.get((shape, chosen))
                if match is not None:
                    if record_id is None:
                        record_id = family.ident(record)
                    self.add(match, record_id)


class WaitIndex:
    """Every open long-poll, by family and key; fed by :meth:`Changes.listen`."""

    def __init__(self, changes: Changes, families: dict[str, Family]) -> None:
        self._tables = {name: Table(family) for name, family in families.items()}
        self._waiters: set[Waiter] = set()
        self._joined = 0  # waiters registered in a watch, including those still querying
        self._observers: list[Callable[[int], None]] = []
        self.closed = changes.closed
        changes.listen(self._changed)
        changes.when_closed(self.close)

    # -- what tests and the health endpoint read -------------------------------------------

    @property
    def open(self) -> int:
        """How many long-polls wait now."""
        return len(self._waiters)

    def watches(self, family: str) -> int:
        """How many distinct filters of ``family`` are waited for now."""
        return len(self._tables[family].watches)

    def tracked(self, family: str) -> int:
        """How many records the watches on a mutable field follow now."""
        return len(self._tables[family].members)

    def observe(self, observer: Callable[[int], None]) -> Callable[[], None]:
        """Call ``observer`` with the number of open long-polls whenever it changes; returns
        the function that stops it."""
        self._observers.append(observer)

        def stop() -> None:
            if observer in self._observers:
                self._observers.remove(observer)

        return stop

    def _counted(self) -> None:
        for observer in list(self._observers):
            observer(len(self._waiters))

    # -- waiting ---------------------------------------------------------------------------

    async def wait(
        self, family_name: str, key: Key, count: int, timeout: float, gone: asyncio.Future[None] | None = None
    ) -> tuple[list[Any], bool]:
        """Wait until at least ``count`` records match ``key``, at most ``timeout`` real
        seconds, or until ``gone`` is resolved (the client left: nothing to answer). Returns
        the matching records and whether there were enough."""
        table = self._tables[family_name]
        family = table.family
        # Registered before the first query, so that a change that comes while (or right
        # after) it runs is counted too: the query's records are added, never replace.
        watch = self._join(table, key)
        try:
            found = family.find(key)
        except BaseException:
            self._leave(table, watch)
            raise
        if len(found) >= count or timeout <= 0 or self.closed or (gone is not None and gone.done()):
            self._leave(table, watch)
            return found, len(found) >= count
        for record in found:
            table.add(watch, family.ident(record))
        loop = asyncio.get_running_loop()
        waiter = Waiter(count, loop.create_future())
        self._waiters.add(waiter)
        timer = loop.call_later(timeout, lambda: waiter.wake("timeout"))

        def client_gone(_: asyncio.Future[None]) -> None:
            waiter.wake("gone")

        if gone is not None:
            gone.add_done_callback(client_gone)
        self._counted()
        try:
            while True:
                watch.arm(waiter)
                why = await waiter.future
                if why != "woken":
                    break
                found = family.find(key)
                if len(found) >= count:
                    return found, True
                # Counted too generously (records deleted without a change): count afresh.
                table.replace(watch, {family.ident(r) for r in found})
                waiter.future = loop.create_future()
            if why == "gone":
                return [], False
            found = family.find(key)
            return found, len(found) >= count
        finally:
            timer.cancel()
            if gone is not None:
                gone.remove_done_callback(client_gone)
            waiter.active = False
            self._waiters.discard(waiter)
            self._leave(table, watch)
            self._counted()

    def close(self) -> None:
        """The server is stopping: every open long-poll answers now with what it has, and
        later ones do not wait."""
        self.closed = True
        for waiter in list(self._waiters):
            waiter.wake("closed")

    def _join(self, table: Table, key: Key) -> Watch:
        self._joined += 1
        return table.join(key)

    def _leave(self, table: Table, watch: Watch) -> None:
        self._joined -= 1
        table.leave(watch)

    # -- changes ---------------------------------------------------------------------------

    def _changed(self, change: Change) -> None:
        if not self._joined:  # nearly every change (each send) has nobody waiting
            return
        if change.kind == "reset":
            self._reset(change.account_id)
            return
        for table in self._tables.values():
            if table.shapes:
                for record in table.family.records(change):
                    table.changed(record)

    def _reset(self, account_id: str | None) -> None:
        """Records are gone: forget them in the watches that counted them. A reset only
        removes records, so it wakes nobody; what it must not do is leave them counted."""
        for table in self._tables.values():
            exists = table.family.exists
            for watch in list(table.watches.values()):
                if account_id is None or watch.key[0] is None or watch.key[0] == account_id:
                    table.replace(watch, {i for i in watch.ids if exists(i)})
