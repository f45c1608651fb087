"""What changed, for whoever is watching: long-polls and the live web page.

Every state change a client may be waiting for (a message stored, a callback attempted,
an account reset) is announced with :meth:`Changes.bump`, saying what changed. Listeners
(:meth:`Changes.listen`) are told synchronously, in order, with a :class:`Change`; the
counter ``version`` moves on with every change. Waking too often is harmless, missing a
change is not, so producers announce generously and waiters always re-check.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

ChangeKind = Literal["message", "callback", "reset"]


@dataclass(frozen=True, slots=True)
class Change:
    """One change. ``message_id`` is the message concerned (for a callback, its message's);
    ``callback_id`` is set for callbacks; ``account_id`` is None for a reset of every account."""

    kind: ChangeKind
    account_id: str | None
    message_id: str | None = None
    callback_id: str | None = None


Listener = Callable[[Change], None]


class Changes:
    def __init__(self) -> None:
        self.version = 0
        self._event = asyncio.Event()
        self._waiting = 0
        self._listeners: list[Listener] = []
        self._closing: list[Callable[[], None]] = []
        self.closed = False

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every change from now on; returns the function that stops it."""
        self._listeners.append(listener)

        def stop() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return stop

    def when_closed(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when :meth:`close` is (at once if it was already)."""
        if self.closed:
            callback()
        else:
            self._closing.append(callback)

    def bump(self, change: Change) -> None:
        self.version += 1
        for listener in self._listeners:
            listener(change)
        if self._waiting:  # nearly every bump (each send) has nobody to wake
            self._event.set()
            self._event = asyncio.Event()

    def close(self) -> None:
        """The server is stopping: wake every waiter, and make later waits return at once,
        so that open long-polls answer instead of holding up the shutdown."""
        self.closed = True
        self._event.set()
        closing, self._closing = self._closing, []
        for callback in closing:
            callback()

    async def wait(self, timeout: float) -> bool:
        """Wait for the next change, at most ``timeout`` real seconds; True when one came."""
        if self.closed:
            return False
        event = self._event
        self._waiting += 1
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return False
        finally:
            self._waiting -= 1
        return True

    async def wait_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``condition()`` holds, re-checking after every change; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not condition():
            remaining = deadline - loop.time()
            if remaining <= 0 or self.closed:
                return False
            await self.wait(remaining)
        return True
