"""Webhooks that misbehave on purpose, on 127.0.0.1: a huge or endless answer, headers or a
body dripped byte by byte. Whatever they do, an attempt reads a bounded prefix of the answer
and ends at its time limit (docs/callbacks.md, 'Timeout'). Both transports: the HTTP/1.1 fast
path and aiohttp's client (taken for a URL with credentials in it).

What is asserted holds however busy the machine is: how many bytes the webhook got to write
(an answer read whole, the old bug that froze the event loop, writes far more than a bounded
prefix does), the outcome, and a duration that is at least the limit and no longer than the
call took. How long the event loop went without a turn is not: on a loaded machine that is
whatever the scheduler makes it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from emulator.delivery.dispatcher import MAX_BODY, Dispatcher

BODY = b'[{"type":"message-delivered"}]'
HUGE = 256 * 1024 * 1024
# What loopback socket buffers can hold between the two ends, whatever the client reads.
IN_TRANSIT = 16 * 1024 * 1024
LIMIT = 1.0
# The limit of an attempt whose answer is cut after its prefix: it never takes that long, so
# generous, for a loaded machine (an answer read whole fails by the bytes written, not by this).
GENEROUS = 30.0


class Hostile:
    """One misbehaving answer per connection; counts the bytes it got to write."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.sent = 0
        self.url = ""
        self._server: asyncio.Server | None = None

    async def _write(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await writer.drain()
        self.sent += len(data)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        block = b"x" * 65536
        try:
            await reader.readuntil(b"\r\n\r\n")
            if self.mode == "huge":
                await self._write(writer, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % HUGE)
                while self.sent < HUGE:
                    await self._write(writer, block)
            elif self.mode == "unframed":  # no length: the body ends when the server closes
                await self._write(writer, b"HTTP/1.1 200 OK\r\n\r\n")
                while self.sent < HUGE:
                    await self._write(writer, block)
            elif self.mode == "endless-chunked":
                await self._write(writer, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                chunk = b"%x\r\n%s\r\n" % (len(block), block)
                while self.sent < HUGE:
                    await self._write(writer, chunk)
            elif self.mode == "drip-chunked":
                await self._write(writer, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                while True:
                    await self._write(writer, b"1\r\nx\r\n")
                    await asyncio.sleep(0.02)
            elif self.mode == "drip-headers":
                await self._write(writer, b"HTTP/1.1 200 OK\r\n")
                while True:
                    await self._write(writer, b"X: y\r\n")
                    await asyncio.sleep(0.02)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()


@pytest.fixture
async def hostile() -> AsyncIterator[Callable[[str], Awaitable[Hostile]]]:
    servers: list[Hostile] = []

    async def start(mode: str) -> Hostile:
        server = Hostile(mode)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


def url_for(server: Hostile, transport: str) -> str:
    # Credentials in the URL send the POST through aiohttp's client instead of the fast path.
    credentials = "u:p@" if transport == "aiohttp" else ""
    return f"http://{credentials}127.0.0.1:{server.port}/hook"


async def timed_post(dispatcher: Dispatcher, url: str, timeout: float = LIMIT):
    """The outcome, and how long the call took as seen from outside (ms)."""
    started = time.perf_counter()
    outcome = await asyncio.wait_for(dispatcher.post(url, BODY, timeout=timeout), timeout + 10)
    return outcome, (time.perf_counter() - started) * 1000


@pytest.mark.parametrize("transport", ["fast", "aiohttp"])
@pytest.mark.parametrize("mode", ["huge", "unframed", "endless-chunked"])
async def test_a_huge_or_endless_answer_is_read_only_as_far_as_a_bounded_prefix(hostile, dispatcher, mode, transport):
    server = await hostile(mode)
    outcome, _ = await timed_post(dispatcher, url_for(server, transport), timeout=GENEROUS)
    # The status is the outcome; the body beyond MAX_BODY is never waited for.
    assert (outcome.status, outcome.error) == (200, None)
    assert server.sent < MAX_BODY + IN_TRANSIT


@pytest.mark.parametrize("transport", ["fast", "aiohttp"])
@pytest.mark.parametrize("mode", ["drip-chunked", "drip-headers"])
async def test_a_dripped_answer_times_out_at_the_limit(hostile, dispatcher, mode, transport):
    server = await hostile(mode)
    outcome, took_ms = await timed_post(dispatcher, url_for(server, transport))
    # One deadline for the whole attempt: a deadline per read would never end (wait_for fails).
    assert (outcome.status, outcome.error) == (None, "timeout")
    # Counted from the start of the attempt to its end: never short of the limit, and within the call.
    assert LIMIT * 1000 <= outcome.duration_ms <= took_ms


async def test_the_connection_after_a_cut_answer_is_not_reused(hostile, dispatcher):
    server = await hostile("huge")
    first = await dispatcher.post(url_for(server, "fast"), BODY, timeout=GENEROUS)
    second = await dispatcher.post(url_for(server, "fast"), BODY, timeout=GENEROUS)
    assert first.status == second.status == 200
