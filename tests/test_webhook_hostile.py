"""Webhooks that misbehave on purpose, on 127.0.0.1: a huge or endless answer, headers or a
body dripped byte by byte. Whatever they do, an attempt reads a bounded prefix of the answer,
ends at its time limit, and the emulator's event loop keeps running (docs/callbacks.md,
'Timeout'). Both transports: the HTTP/1.1 fast path and aiohttp's client
(taken for a URL with credentials in it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from emulator.delivery.dispatcher import MAX_BODY, Dispatcher

BODY = b'[{"type":"message-delivered"}]'
HUGE = 256 * 1024 * 1024
# What loopback socket buffers can hold between the two ends, whatever the client reads.
IN_TRANSIT = 16 * 1024 * 1024
LIMIT = 1.0
# Generous for a loaded CI machine; a frozen loop (the bug) stalls for the whole attempt.
LOOP_LAG = 1.0


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


class LoopWatch:
    """The longest the event loop went without running a 10 ms ticker, while watched."""

    def __init__(self) -> None:
        self.longest = 0.0

    async def run(self, done: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while not done.is_set():
            await asyncio.sleep(0.01)
            now = loop.time()
            self.longest = max(self.longest, now - last)
            last = now


async def watched_post(dispatcher: Dispatcher, url: str, timeout: float = LIMIT):
    done = asyncio.Event()
    watch = LoopWatch()
    ticker = asyncio.create_task(watch.run(done))
    try:
        outcome = await asyncio.wait_for(dispatcher.post(url, BODY, timeout=timeout), timeout + 10)
    finally:
        done.set()
        await ticker
    return outcome, watch


@pytest.mark.parametrize("transport", ["fast", "aiohttp"])
@pytest.mark.parametrize("mode", ["huge", "unframed", "endless-chunked"])
async def test_a_huge_or_endless_answer_is_read_only_as_far_as_a_bounded_prefix(hostile, dispatcher, mode, transport):
    server = await hostile(mode)
    outcome, watch = await watched_post(dispatcher, url_for(server, transport), timeout=5.0)
    # The status is the outcome; the body beyond MAX_BODY is never waited for.
    assert (outcome.status, outcome.error) == (200, None)
    assert server.sent < MAX_BODY + IN_TRANSIT
    assert watch.longest < LOOP_LAG


@pytest.mark.parametrize("transport", ["fast", "aiohttp"])
@pytest.mark.parametrize("mode", ["drip-chunked", "drip-headers"])
async def test_a_dripped_answer_times_out_at_the_limit(hostile, dispatcher, mode, transport):
    server = await hostile(mode)
    outcome, watch = await watched_post(dispatcher, url_for(server, transport))
    assert (outcome.status, outcome.error) == (None, "timeout")
    # Counted from the start of the attempt to its end: the limit, not the limit plus a drift.
    assert LIMIT * 1000 <= outcome.duration_ms < LIMIT * 1000 + LOOP_LAG * 1000
    assert watch.longest < LOOP_LAG


async def test_the_connection_after_a_cut_answer_is_not_reused(hostile, dispatcher):
    server = await hostile("huge")
    first = await dispatcher.post(url_for(server, "fast"), BODY, timeout=5.0)
    second = await dispatcher.post(url_for(server, "fast"), BODY, timeout=5.0)
    assert first.status == second.status == 200
