"""Network I/O for callbacks: POST one encoded event array to a webhook and report the outcome.

The dispatcher knows nothing of retries, scenarios or virtual time; :mod:`emulator.delivery.callbacks`
decides what an outcome means and when the next attempt happens.
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass
from functools import lru_cache

import aiohttp

from emulator.delivery import http1

USER_AGENT = "BandwidthAPI/v2"
CONTENT_TYPE = "application/json; charset=utf-8"
DEFAULT_CONCURRENCY = 100


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one POST came to: a status code, or an error text such as "timeout"."""

    status: int | None
    error: str | None
    duration_ms: float
    # A 401 carrying WWW-Authenticate: the signal to resend with credentials (challenge mode).
    challenged: bool = False


def basic_authorization(username: str, password: str) -> str:
    """The Authorization header value, as Bandwidth sends it: ``Basic base64(user:password)``."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, http1.Disconnected):
        return "server disconnected"
    if isinstance(exc, http1.BadResponse):
        return f"invalid response: {exc}"
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
    if isinstance(exc, OSError):
        return f"connection error: {exc.strerror or exc}"
    if isinstance(exc, ValueError):  # e.g. a URL aiohttp cannot parse
        return f"invalid URL: {exc}"
    raise exc


@lru_cache(maxsize=64)
def _timeout(seconds: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=seconds)


class Dispatcher:
    """One shared client session; at most ``concurrency`` POSTs in flight at a time."""

    def __init__(self, concurrency: int = DEFAULT_CONCURRENCY) -> None:
        self._concurrency = concurrency
        self._session: aiohttp.ClientSession | None = None
        self._pool = http1.Pool(max_idle=concurrency)
        # The timeout must measure the webhook, not the wait for a free slot: acquire first.
        self._limit = asyncio.Semaphore(concurrency)

    async def start(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._concurrency)
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": USER_AGENT, "Content-Type": CONTENT_TYPE},
                cookie_jar=aiohttp.DummyCookieJar(),
            )

    async def close(self) -> None:
        self._pool.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, url: str, body: bytes, *, timeout: float, authorization: str | None = None) -> Outcome:
        """One POST of an already encoded event array; never raises for network trouble."""
        fast = http1.target(url, USER_AGENT, CONTENT_TYPE)
        if fast is not None:
            async with self._limit:
                started = time.perf_counter()
                try:
                    async with asyncio.timeout(timeout):
                        status, challenged = await self._pool.post(fast, body, authorization)
                except Exception as exc:
                    return Outcome(None, _error_text(exc), round((time.perf_counter() - started) * 1000, 3))
                return Outcome(status, None, round((time.perf_counter() - started) * 1000, 3), challenged)
        if self._session is None:
            await self.start()
        session = self._session
        assert session is not None
        headers = {"Authorization": authorization} if authorization else None
        async with self._limit:
            started = time.perf_counter()
            try:
                # Never follow redirects: whether a 3xx counts is the application's `redirects` setting.
                async with session.post(
                    url, data=body, headers=headers, allow_redirects=False, timeout=_timeout(timeout)
                ) as response:
                    await response.read()
                    status = response.status
                    challenged = status == 401 and "WWW-Authenticate" in response.headers
            except Exception as exc:
                return Outcome(None, _error_text(exc), round((time.perf_counter() - started) * 1000, 3))
            return Outcome(status, None, round((time.perf_counter() - started) * 1000, 3), challenged)
