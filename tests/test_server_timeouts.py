"""Stalled clients of the emulator's own server are timed out (docs/compatibility.md, 'What
the emulator refuses'): a connection that sends no request head in time is closed, a body that
does not arrive in time gets a 408, and a flood of failed accepts is logged once, not per
connection. Real sockets on 127.0.0.1, with timeouts shortened for the test."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from support import ACCOUNT, AUTH, Receiver

from emulator.app import create_app
from emulator.config import Settings
from emulator.web.server import ACCEPT_FAILED, AcceptErrors, EmulatorRunner

SHORT = 0.3
# Far longer than SHORT: the test fails by this bound, not by hanging, when nothing times out.
BOUND = 10.0


class Served:
    def __init__(self, port: int, runner: EmulatorRunner) -> None:
        self.port = port
        self.runner = runner

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)


@pytest.fixture
async def served(receiver: Receiver) -> AsyncIterator[Served]:
    app = create_app(Settings(clock="manual", callback_url=receiver.url))
    runner = EmulatorRunner(app, idle_timeout=SHORT, body_timeout=SHORT, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield Served(site._server.sockets[0].getsockname()[1], runner)  # type: ignore[union-attr]
    await runner.cleanup()


async def test_a_connection_that_sends_nothing_is_closed(served: Served):
    reader, writer = await served.connect()
    assert await asyncio.wait_for(reader.read(), BOUND) == b""
    writer.close()


async def test_a_request_head_dripped_slowly_is_cut_off(served: Served):
    reader, writer = await served.connect()
    writer.write(b"GET /_emulator/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")

    async def drip() -> None:
        while True:
            writer.write(b"X-Slow: y\r\n")
            await asyncio.sleep(0.05)

    dripping = asyncio.create_task(drip())
    try:
        # Cut off: a clean close, or a reset when the server closed with drip bytes still unread
        # in its socket (the kernel answers those with RST; which one comes depends on timing).
        try:
            assert await asyncio.wait_for(reader.read(), BOUND) == b""
        except ConnectionResetError:
            pass
    finally:
        dripping.cancel()
        writer.close()


async def test_a_body_that_does_not_arrive_gets_a_408_and_the_connection_closed(served: Served):
    reader, writer = await served.connect()
    writer.write(
        b"POST /_emulator/clock/advance HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n{"
    )
    answer = await asyncio.wait_for(reader.read(), BOUND)  # the whole answer, up to the close
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408")
    assert json.loads(body) == {"type": "request-timeout", "description": f"The request body did not arrive within {SHORT:g} s"}
    writer.close()


async def test_every_control_operation_that_waits_for_its_body_declares_the_408(served: Served):
    from emulator.control.openapi import OPENAPI

    answered = {}
    for path, item in OPENAPI["paths"].items():
        for method in item:
            if method == "get":
                continue  # no GET handler reads a body
            reader, writer = await served.connect()
            address = path.replace("{messageId}", "m1").replace("{callbackId}", "cb-m1-0")
            writer.write(
                f"{method.upper()} {address} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                "Content-Length: 100\r\n\r\n{".encode()
            )
            status = int((await asyncio.wait_for(reader.readline(), BOUND)).split()[1])
            writer.close()
            answered[(method, path)] = status
            if status == 408:
                assert "408" in item[method]["responses"], f"{method.upper()} {path} answers 408; declare it"
    assert answered[("post", "/_emulator/inbound")] == 408  # the check has something to check


async def test_kept_alive_connections_and_long_requests_are_not_cut(served: Served, receiver: Receiver):
    reader, writer = await served.connect()
    # A hanging webhook makes the advance take longer than both timeouts; its body came at once.
    receiver.fail(1, "hang")
    send = json.dumps({"applicationId": "a", "from": "+15554443333", "to": ["+15552221111"], "text": "hi"}).encode()
    auth = AUTH["Authorization"].encode()
    scenario = b"applications:\n  - id: a\n    callbackTimeout: 1s\n    retrySchedule: [0]\n"
    advance = b'{"seconds": 5}'
    # Three requests on one connection, written at once: each is answered in turn, and no gap
    # between them depends on how fast this (maybe busy) machine reads an answer and writes on.
    writer.write(
        b"POST /api/v2/users/%s/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: %s\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (ACCOUNT.encode(), auth, len(send), send)
        + b"PUT /_emulator/scenario HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n%s" % (len(scenario), scenario)
        + b"POST /_emulator/clock/advance HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(advance), advance)
    )
    for status in (b"202", b"200", b"200"):
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), BOUND)
        assert head.startswith(b"HTTP/1.1 " + status), head
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
        await asyncio.wait_for(reader.readexactly(length), BOUND)
    writer.close()


async def test_clients_gone_while_sending_a_body_are_neither_logged_nor_internal_errors(
    served: Served, caplog: pytest.LogCaptureFixture
):
    with caplog.at_level(logging.INFO):
        for _ in range(20):
            _, writer = await served.connect()
            writer.write(b"POST /_emulator/inbound HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 500\r\n\r\n{")
            await writer.drain()
            writer.close()

        async def all_gone() -> None:
            server = served.runner.server
            assert server is not None
            while server.connections:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(all_gone(), BOUND)
        reader, writer = await served.connect()
        writer.write(b"GET /_emulator/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), BOUND)
        writer.close()
    health = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert health["internalErrors"]["count"] == 0
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_a_flood_of_failed_accepts_is_logged_once(caplog: pytest.LogCaptureFixture):
    loop = asyncio.new_event_loop()
    try:
        others: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _loop, context: others.append(context))
        handler = AcceptErrors(loop)
        with caplog.at_level(logging.ERROR, logger="emulator.server"):
            for _ in range(1000):
                handler(loop, {"message": ACCEPT_FAILED, "exception": OSError(24, "Too many open files")})
        assert len(caplog.records) == 1
        assert "cannot accept connections" in caplog.records[0].getMessage()
        assert handler.suppressed == 999
        handler(loop, {"message": "something else"})
        assert others == [{"message": "something else"}]
    finally:
        loop.close()


async def test_a_request_waiting_for_its_body_does_not_hold_the_shutdown(receiver: Receiver):
    app = create_app(Settings(clock="manual", callback_url=receiver.url))
    # The body timeout is long here: the shutdown itself must cut the wait short.
    runner = EmulatorRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /_emulator/inbound HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 500\r\n\r\n{")
    await writer.drain()

    async def handler_started() -> None:
        server = runner.server
        assert server is not None
        while not any(getattr(c, "_current_request", None) is not None for c in server.connections):
            await asyncio.sleep(0.01)

    await asyncio.wait_for(handler_started(), BOUND)
    # aiohttp would wait up to its shutdown_timeout (60 s) for the handler.
    await asyncio.wait_for(runner.cleanup(), BOUND)
    assert (await asyncio.wait_for(reader.read(), BOUND)).startswith(b"HTTP/1.1 408")
    writer.close()
