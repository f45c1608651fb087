"""A webhook that answers every request with one fixed status on kept-alive connections:
the cheapest receiving end for the benchmarks' callbacks (bench/retry_storm.py answers 500,
bench/retention.py 200), so that what is measured is the emulator's side."""

from __future__ import annotations

import asyncio
import socket


class FixedAnswer(asyncio.Protocol):
    """Just enough HTTP/1.1 to answer every request with ``response`` on a kept-alive connection."""

    def __init__(self, response: bytes) -> None:
        self.response = response
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            length = 0
            at = head.find(b"content-length:")
            if at >= 0:
                length = int(head[at + 15 :].split(b"\r\n", 1)[0])
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            self.buffer = self.buffer[total:]
            self.transport.write(self.response)  # type: ignore[attr-defined]


def serve(sock: socket.socket, status: str) -> None:
    """Answer ``HTTP/1.1 {status}`` (e.g. "200 OK") to everything on ``sock``, forever (run it in
    a process of its own)."""
    response = f"HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n".encode()

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(lambda: FixedAnswer(response), sock=sock)
        await server.serve_forever()

    asyncio.run(main())
