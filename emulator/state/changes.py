"""What changed, for whoever is watching: long-polls and the live web page.

Every state change a client may be waiting for (a message stored, a callback attempted,
an account reset) is announced with :meth:`Changes.bump`, saying what changed. Listeners
(:meth:`Changes.listen`) are told synchronously, in order, with a :class:`Change`; the
counter ``version`` moves on with every change. Waking too often is harmless, missing a
change is not, so producers announce generously and waiters always re-check.
"""

from __future__ import annotations

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

    def close(self) -> None:
        """The server is stopping: tell whoever asked (:meth:`when_closed`), so that open
        long-polls and event streams end instead of holding up the shutdown."""
        self.closed = True
        closing, self._closing = self._closing, []
        for callback in closing:
            callback()
