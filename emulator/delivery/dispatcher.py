"""Network I/O for callbacks: POST one encoded event array to a webhook and report the outcome.

The dispatcher knows nothing of retries, scenarios or virtual time; :mod:`emulator.delivery.callbacks`
decides what an outcome means and when the next attempt happens.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections import deque
from functools import lru_cache
from typing import NamedTuple

import aiohttp

from emulator.delivery import http1

USER_AGENT = "BandwidthAPI/v2"
CONTENT_TYPE = "application/json; charset=utf-8"
DEFAULT_CONCURRENCY = 100
# POSTs in flight to one receiver (one URL without its query): a webhook that hangs holds at
# most this many of the DEFAULT_CONCURRENCY slots, so other receivers' callbacks still go
# out at once (docs/callbacks.md, 'Time, scale and shutdown').
PER_RECEIVER = 64
# How much of an answer's body is read before the rest is given up on (docs/callbacks.md,
# 'Timeout'); the same bound as the HTTP/1.1 fast path's.
MAX_BODY = http1.MAX_BODY


class Outcome(NamedTuple):
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
        return http1.REFUSED
    if isinstance(exc, http1.Disconnected):
        return "server disconnected"
    if isinstance(exc, http1.BadResponse):
        return f"invalid response: {exc}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        os_error = exc.os_error
        if isinstance(os_error, ConnectionRefusedError):
            return http1.REFUSED
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


# The attempt's own deadline (asyncio.timeout, around connect, send and the whole answer) is
# the limit; aiohttp's would round a limit above 5 s up to a whole second of loop time.
_NO_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=None, sock_read=None)


@lru_cache(maxsize=4096)
def receiver_of(url: str) -> str:
    """The receiver a URL names, for fairness: the URL without its query or fragment."""
    return url.split("?", 1)[0].split("#", 1)[0]


class _Gate:
    """A counting semaphore for the slots: taking a free slot is a decrement, with no
    coroutine call; waiters are served first come, first served, each handed the slot that
    was released."""

    __slots__ = ("free", "users", "waiters")

    def __init__(self, size: int) -> None:
        self.free = size
        self.users = 0  # lanes only: POSTs holding or waiting for a slot, to drop idle lanes
        self.waiters: deque[asyncio.Future[None]] = deque()

    async def wait(self) -> None:
        """Wait for a slot (when ``free`` is 0): it is handed over by :meth:`release`."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if not waiter.cancelled():
                self.release()  # handed a slot, then cancelled before it could be used
            elif waiter in self.waiters:  # release() drops the cancelled waiters it meets
                self.waiters.remove(waiter)
            raise

    def release(self) -> None:
        waiters = self.waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.free += 1


async def _read_prefix(response: aiohttp.ClientResponse) -> bool:
    """Read at most MAX_BODY bytes of the body; True when the whole body was read."""
    read = 0
    while read <= MAX_BODY:
        chunk = await response.content.read(MAX_BODY + 1 - read)
        if not chunk:
            return True
        read += len(chunk)
    return False


class Dispatcher:
    """One shared client session; at most ``concurrency`` POSTs in flight at a time, and at
    most ``per_receiver`` of them to any one receiver."""

    def __init__(
        self, concurrency: int = DEFAULT_CONCURRENCY, per_receiver: int = PER_RECEIVER, *, builtin_client: bool = True
    ) -> None:
        self._concurrency = concurrency
        # False: every POST goes through aiohttp's client, plain http too (--callback-client aiohttp).
        self._builtin_client = builtin_client
        self._per_receiver = min(per_receiver, concurrency)
        self._session: aiohttp.ClientSession | None = None
        self._pool = http1.Pool(max_idle=concurrency)
        # The timeout must measure the webhook, not the wait for a free slot: acquire first.
        # A POST takes its receiver's slot before a global one, so the callbacks queued behind
        # a hanging receiver wait in its lane without holding slots other receivers need.
        self._limit = _Gate(concurrency)
        self._lanes: dict[str, _Gate] = {}

    @property
    def per_receiver(self) -> int:
        """POSTs in flight to one receiver at most."""
        return self._per_receiver

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
        """One POST of an already encoded event array; never raises for network trouble.

        ``timeout`` bounds the whole attempt, from connecting to the end of the answer; at
        most MAX_BODY bytes of the answer's body are read."""
        key = receiver_of(url)
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Gate(self._per_receiver)
        lane.users += 1
        try:
            if lane.free:
                lane.free -= 1
            else:
                await lane.wait()
            try:
                limit = self._limit
                if limit.free:
                    limit.free -= 1
                else:
                    await limit.wait()
                # One coroutine for the whole attempt, slots and POST: there is one per attempt.
                started = time.perf_counter()
                try:
                    fast = http1.target(url, USER_AGENT, CONTENT_TYPE) if self._builtin_client else None
                    if fast is not None:
                        answer = await self._pool.post(fast, body, authorization, timeout)
                        if isinstance(answer, str):  # the connection failed at once (refused)
                            return Outcome(None, answer, round((time.perf_counter() - started) * 1000, 3))
                        status, challenged = answer
                    else:
                        async with asyncio.timeout(timeout):
                            status, challenged = await self._post(url, body, authorization)
                except Exception as exc:
                    return Outcome(None, _error_text(exc), round((time.perf_counter() - started) * 1000, 3))
                finally:
                    limit.release()
                return Outcome(status, None, round((time.perf_counter() - started) * 1000, 3), challenged)
            finally:
                lane.release()
        finally:
            lane.users -= 1
            if lane.users == 0:
                del self._lanes[key]

    async def _post(self, url: str, body: bytes, authorization: str | None) -> tuple[int, bool]:
        """The POST through aiohttp's client (https, credentials in the URL, or --callback-client aiohttp)."""
        if self._session is None:
            await self.start()
        session = self._session
        assert session is not None
        headers = {"Authorization": authorization} if authorization else None
        # Never follow redirects: whether a 3xx counts is the application's `redirects` setting.
        async with session.post(url, data=body, headers=headers, allow_redirects=False, timeout=_NO_TIMEOUT) as response:
            if not await _read_prefix(response):
                response.close()  # the rest of a body nobody reads: drop the connection instead
            return response.status, response.status == 401 and "WWW-Authenticate" in response.headers
