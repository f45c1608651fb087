"""Bandwidth's rate limit on listing messages: 3,500 requests per 5 minutes per source IP, then
429 with ``Retry-After`` (the spec's listMessages 429; docs/scenarios.md, 'The listing rate limit').

Counted on the wall clock (monotonic), not the virtual one: it limits how fast a client calls,
and a manual clock that stands still would otherwise never let a request age out.
"""

from __future__ import annotations

import time
from collections import deque

from aiohttp import web


class SlidingWindow:
    """Request times per client within the last ``window`` seconds."""

    # One entry per source address; a flood of addresses only empties the memory now and then.
    MAX_CLIENTS = 1024

    def __init__(self) -> None:
        self._hits: dict[str, deque[float]] = {}

    def admit(self, client: str, requests: int, window: float, now: float | None = None) -> float | None:
        """None when the request is within the limit (and counts); else seconds until one is."""
        now = time.monotonic() if now is None else now
        hits = self._hits.get(client)
        if hits is None:
            if len(self._hits) >= self.MAX_CLIENTS:
                self._hits.clear()
            hits = self._hits[client] = deque()
        while hits and hits[0] <= now - window:
            hits.popleft()
        if len(hits) >= requests:
            return hits[-requests] + window - now
        hits.append(now)
        return None


LIST_LIMITER = web.AppKey("list_limiter", SlidingWindow)
