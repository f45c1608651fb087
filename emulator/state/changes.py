"""A change counter that long-polls wait on.

Every state change a client may be waiting for (a message stored, a callback attempted,
an account reset) bumps it, waking every waiter; waiters then re-check their own
condition. Waking too often is harmless, missing a change is not, so producers bump
generously and waiters always re-check.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Changes:
    def __init__(self) -> None:
        self.version = 0
        self._event = asyncio.Event()
        self._waiting = 0
        self.closed = False

    def bump(self) -> None:
        self.version += 1
        if self._waiting:  # nearly every bump (each send) has nobody to wake
            self._event.set()
            self._event = asyncio.Event()

    def close(self) -> None:
        """The server is stopping: wake every waiter, and make later waits return at once,
        so that open long-polls answer instead of holding up the shutdown."""
        self.closed = True
        self._event.set()

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

