"""Network I/O for callbacks: POST one event array to a webhook and report the attempt.

The dispatcher knows nothing of retries or scenarios; :mod:`emulator.callbacks` decides
what an attempt means and when the next one happens.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp

from .models import Attempt

USER_AGENT = "BandwidthAPI/v2"
CONTENT_TYPE = "application/json; charset=utf-8"


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return "timeout"
    if isinstance(exc, aiohttp.ClientConnectorError):
        os_error = exc.os_error
        if isinstance(os_error, ConnectionRefusedError):
            return "connection refused"
        return f"connection error: {os_error.strerror or os_error}" if os_error else "connection error"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server disconnected"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "invalid response payload"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"invalid response: {exc.message}"
    if isinstance(exc, aiohttp.InvalidURL):
        return f"invalid URL: {exc}"
    if isinstance(exc, aiohttp.ClientError):
        return f"{type(exc).__name__}: {exc}"
    if isinstance(exc, ConnectionError):
        return f"connection error: {exc}"
    raise exc


class Dispatcher:
    def __init__(self, concurrency: int = 100) -> None:
        self._concurrency = concurrency
        self._session: aiohttp.ClientSession | None = None
        self._limit = asyncio.Semaphore(concurrency)

    async def start(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._concurrency, force_close=False)
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": USER_AGENT},
                # Never follow redirects: how a 3xx counts is the retry policy's decision.
                auto_decompress=True,
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(
        self,
        url: str,
        events: list[dict[str, Any]],
        *,
        at: float,
        timeout: float,
        auth: tuple[str, str] | None = None,
    ) -> tuple[Attempt, dict[str, str]]:
        """One POST. Returns the attempt (stamped with virtual time ``at``) and the answer's headers."""
        await self.start()
        assert self._session is not None
        body = json.dumps(events, separators=(",", ":")).encode()
        headers = {"Content-Type": CONTENT_TYPE}
        basic = aiohttp.BasicAuth(*auth) if auth else None
        started = time.perf_counter()
        async with self._limit:
            try:
                async with self._session.post(
                    url,
                    data=body,
                    headers=headers,
                    auth=basic,
                    allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=timeout),
                ) as response:
                    await response.read()
                    duration = (time.perf_counter() - started) * 1000
                    return (
                        Attempt(at, response.status, None, round(duration, 3), authorization=basic is not None),
                        dict(response.headers),
                    )
            except Exception as exc:  # noqa: BLE001 - every network failure is an attempt result
                duration = (time.perf_counter() - started) * 1000
                return Attempt(at, None, _error_text(exc), round(duration, 3), authorization=basic is not None), {}
