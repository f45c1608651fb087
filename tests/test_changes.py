"""emulator/state/changes.py: what changed, told to listeners; the shutdown told once."""

from __future__ import annotations

from emulator.state.changes import Change, Changes

A_CHANGE = Change("message", "9900000", "m-1")


def test_listeners_are_told_every_change_in_order_until_they_stop() -> None:
    changes = Changes()
    seen: list[Change] = []
    stop = changes.listen(seen.append)
    second = Change("callback", "9900000", "m-1", "c-1")
    changes.bump(A_CHANGE)
    changes.bump(second)
    stop()
    stop()  # stopping twice is harmless
    changes.bump(A_CHANGE)
    assert seen == [A_CHANGE, second]
    assert changes.version == 3


def test_close_tells_those_who_asked_once_and_later_ones_at_once() -> None:
    changes = Changes()
    told: list[str] = []
    changes.when_closed(lambda: told.append("early"))
    assert told == []
    changes.close()
    changes.close()
    assert told == ["early"] and changes.closed
    changes.when_closed(lambda: told.append("late"))
    assert told == ["early", "late"]
