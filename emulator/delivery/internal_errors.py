"""Bugs of the emulator's own that it survived, kept for ``GET /_emulator/health``.

An unexpected exception while attempting a callback, in a scheduled job or in a request
handler is logged with its traceback and recorded here, so that a test suite can notice it:
the pytest plugin fails the test during which one happened (docs/testing.md, 'Internal errors').
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

KEEP = 20


class InternalErrors:
    def __init__(self, now: Callable[[], str] | None = None) -> None:
        self.count = 0
        self.recent: deque[dict[str, Any]] = deque(maxlen=KEEP)
        self._now = now

    def record(self, where: str, exc: BaseException) -> None:
        self.count += 1
        self.recent.append(
            {"time": self._now() if self._now is not None else None, "where": where, "error": describe(exc)}
        )

    def summary(self) -> dict[str, Any]:
        return {"count": self.count, "recent": list(self.recent)}


def describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__
