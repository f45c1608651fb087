"""The dispatcher's wire behaviour against raw HTTP servers on 127.0.0.1: how answers are read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from support import Receiver, closed_port_url

from emulator.delivery.dispatcher import Dispatcher, basic_authorization

BODY = b'[{"type":"message-delivered"}]'


class RawServer:
    """Answers each request with the next canned bytes; ``None`` closes the connection unanswered."""

    def __init__(self, answers: list[bytes | None]) -> None:
        self.answers = answers
        self.requests: list[bytes] = []
        self.connections = 0
        self.url = ""
        self._server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
                self.requests.append(head + await reader.readexactly(length))
                answer = self.answers.pop(0) if self.answers else b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
                if b"Connection: close" in answer or (b"Content-Length" not in answer and b"chunked" not in answer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/hook?x=1"

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()


@pytest.fixture
async def raw() -> AsyncIterator[Callable[[list[bytes | None]], asyncio.Future[RawServer]]]:
    servers: list[RawServer] = []

    async def start(answers: list[bytes | None]) -> RawServer:
        server = RawServer(answers)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


async def test_request_line_and_headers(raw, dispatcher: Dispatcher):
    server = await raw([])
    outcome = await dispatcher.post(server.url, BODY, timeout=5, authorization=basic_authorization("u", "p"))
    assert outcome.status == 200 and outcome.error is None
    request = server.requests[0]
    head, body = request.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /hook?x=1 HTTP/1.1"
    headers = dict(line.split(b": ", 1) for line in lines[1:])
    assert headers[b"Content-Type"] == b"application/json; charset=utf-8"
    assert headers[b"User-Agent"] == b"BandwidthAPI/v2"
    assert headers[b"Authorization"] == b"Basic dTpw"
    assert headers[b"Host"].startswith(b"127.0.0.1:")
    assert body == BODY


async def test_keep_alive_reuses_one_connection(raw, dispatcher: Dispatcher):
    server = await raw([b"HTTP/1.1 500 Oops\r\nContent-Length: 5\r\n\r\nerror"] * 3)
    statuses = [(await dispatcher.post(server.url, BODY, timeout=5)).status for _ in range(4)]
    assert statuses == [500, 500, 500, 200]
    assert server.connections == 1


async def test_chunked_answer(raw, dispatcher: Dispatcher):
    chunked = b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbusy\r\n3;x=y\r\n...\r\n0\r\nX-Trailer: 1\r\n\r\n"
    server = await raw([chunked, chunked])
    assert [(await dispatcher.post(server.url, BODY, timeout=5)).status for _ in range(3)] == [503, 503, 200]
    assert server.connections == 1


async def test_close_delimited_and_connection_close(raw, dispatcher: Dispatcher):
    server = await raw([b"HTTP/1.0 201 Created\r\n\r\nno length", b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"])
    assert (await dispatcher.post(server.url, BODY, timeout=5)).status == 201
    assert (await dispatcher.post(server.url, BODY, timeout=5)).status == 204
    assert (await dispatcher.post(server.url, BODY, timeout=5)).status == 200
    assert server.connections == 3


async def test_interim_100_continue_is_skipped(raw, dispatcher: Dispatcher):
    server = await raw([b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"])
    assert (await dispatcher.post(server.url, BODY, timeout=5)).status == 202


async def test_challenge_header_is_seen(raw, dispatcher: Dispatcher):
    server = await raw([
        b'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=""\r\nContent-Length: 0\r\n\r\n',
        b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n",
    ])
    first = await dispatcher.post(server.url, BODY, timeout=5)
    second = await dispatcher.post(server.url, BODY, timeout=5)
    assert (first.status, first.challenged) == (401, True)
    assert (second.status, second.challenged) == (401, False)


async def test_server_closing_without_answer(raw, dispatcher: Dispatcher):
    server = await raw([None])
    outcome = await dispatcher.post(server.url, BODY, timeout=5)
    assert (outcome.status, outcome.error) == (None, "server disconnected")


async def test_stale_kept_alive_connection_is_replaced(raw, dispatcher: Dispatcher):
    server = await raw([b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", None])
    assert (await dispatcher.post(server.url, BODY, timeout=5)).status == 200
    # The server now drops that idle connection without answering; a fresh one is used.
    assert (await dispatcher.post(server.url, BODY, timeout=5)).status == 200
    assert server.connections == 2


async def test_garbage_answer(raw, dispatcher: Dispatcher):
    server = await raw([b"SMTP ready\r\n\r\n"])
    outcome = await dispatcher.post(server.url, BODY, timeout=5)
    assert outcome.status is None and outcome.error.startswith("invalid response")


async def test_refused(dispatcher: Dispatcher):
    outcome = await dispatcher.post(closed_port_url(), BODY, timeout=5)
    assert (outcome.status, outcome.error) == (None, "connection refused")


async def test_localhost_name_is_resolved(receiver: Receiver, dispatcher: Dispatcher):
    url = receiver.url.replace("127.0.0.1", "localhost")
    outcome = await dispatcher.post(url, BODY, timeout=5)
    if outcome.error is not None:  # localhost may resolve to ::1 first where nothing listens
        pytest.skip(f"localhost is not 127.0.0.1 here: {outcome.error}")
    assert outcome.status == 200 and receiver.requests[0]["body"] == [{"type": "message-delivered"}]


async def test_url_with_credentials_goes_through_aiohttp(receiver: Receiver, dispatcher: Dispatcher):
    url = receiver.url.replace("http://", "http://u:p@")
    outcome = await dispatcher.post(url, BODY, timeout=5)
    assert outcome.status == 200
    request = receiver.requests[0]
    assert request["headers"]["Authorization"] == "Basic dTpw"
    assert request["headers"]["User-Agent"] == "BandwidthAPI/v2"
    assert request["headers"]["Content-Type"] == "application/json; charset=utf-8"


async def test_invalid_url_is_an_error_text(dispatcher: Dispatcher):
    outcome = await dispatcher.post("not a url", BODY, timeout=5)
    assert outcome.status is None and outcome.error
