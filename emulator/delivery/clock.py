"""Virtual time.

Everything in the emulator reads time from a clock object, never from the wall clock,
so that a manual clock can step through a day of Bandwidth's callback retries in
milliseconds and a realtime clock can run faster than real time (``--time-scale``).
Times are POSIX seconds (float) in *virtual* time.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """What the scheduler and the domain need from time."""

    manual: bool

    def now(self) -> float:
        """The current virtual time, POSIX seconds."""

    def real_delay(self, virtual_seconds: float) -> float:
        """How many real seconds until ``virtual_seconds`` of virtual time pass."""


class RealtimeClock:
    """Virtual time runs ``scale`` times as fast as the wall clock, from the real now."""

    manual = False

    def __init__(self, scale: float = 1.0, start: float | None = None) -> None:
        if scale <= 0:
            raise ValueError("time scale must be positive")
        self.scale = scale
        self._origin_virtual = time.time() if start is None else start
        self._origin_mono = time.monotonic()

    def now(self) -> float:
        return self._origin_virtual + (time.monotonic() - self._origin_mono) * self.scale

    def real_delay(self, virtual_seconds: float) -> float:
        return max(0.0, virtual_seconds / self.scale)


def keeps_own_time(clock: Clock) -> bool:
    """Whether the clock's time is its own (manual, or scaled) rather than the wall clock's."""
    return clock.manual or getattr(clock, "scale", 1.0) != 1.0


class ManualClock:
    """Time stands still until somebody advances it (``POST /_emulator/clock/advance``)."""

    manual = True

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        # Serialises advances: two concurrent advance calls must not interleave their firing.
        self.lock = asyncio.Lock()

    def now(self) -> float:
        return self._now

    def set(self, t: float) -> None:
        # Time never goes backwards, even if a job was due "in the past".
        if t > self._now:
            self._now = t

    def move_to(self, t: float) -> None:
        """Put the clock at ``t``, earlier or later: only when nothing is scheduled (the pytest
        plugin starts each test at the same virtual time, docs/testing.md)."""
        self._now = t

    def real_delay(self, virtual_seconds: float) -> float:
        return float("inf")


@functools.lru_cache(maxsize=4096)
def isoformat(t: float) -> str:
    """Bandwidth's timestamp format: ISO 8601, UTC, milliseconds, ``Z``."""
    # Cached: messages accepted at one instant (always, on a manual clock) and their events
    # then share one string instead of keeping a copy each.
    # The same digits as datetime.fromtimestamp(t, utc) (microseconds rounded half-even,
    # then truncated to milliseconds) at a seventh of the cost: every send formats two or
    # three timestamps, and within one second only the milliseconds change.
    frac, whole = math.modf(t)
    micros = round(frac * 1e6)
    seconds = int(whole)
    if micros >= 1_000_000:
        seconds += 1
        micros -= 1_000_000
    return _second_prefix(seconds) + f"{micros // 1000:03d}Z"


@functools.lru_cache(maxsize=1024)
def _second_prefix(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(seconds))


def parse_isoformat(value: object, *, naive_is_utc: bool = False) -> float | None:
    """POSIX seconds of an ISO 8601 / RFC 3339 date-time (``Z`` or an offset), else None.

    The one parser for every timestamp a client sends (expiration, list filters) and the
    emulator's own (:func:`isoformat`). A time without an offset is None, as RFC 3339
    requires one, unless ``naive_is_utc``: then it is read as UTC.
    """
    if not isinstance(value, str):
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        if not naive_is_utc:
            return None
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()
