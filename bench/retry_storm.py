"""Retry storm: N always-failing callbacks, the manual clock advanced through 24 hours.

Measures the callback engine alone: N messages are accepted in process (the accept path has
its own benchmark), then one ``advance`` of 25 virtual hours fires every scheduled attempt.
The failing webhook runs in a separate process so that it does not share the emulator's
core: either a minimal HTTP server answering 500 to everything, or a closed port that
refuses connections.

    .venv/bin/python bench/retry_storm.py [--callbacks N] [--mode 500|refused|both]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp import web

from emulator.app import create_app
from emulator.cli import tuned_gc
from emulator.config import Settings
from emulator.keys import SERVICE

ACCOUNT = "9900000"
WINDOW = 25 * 3600


class _Answer500(asyncio.Protocol):
    """Just enough HTTP/1.1 to answer every request 500 on a kept-alive connection."""

    RESPONSE = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.buffer = b""

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
            self.transport.write(self.RESPONSE)  # type: ignore[attr-defined]


def _serve_500(sock: socket.socket) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Answer500, sock=sock)
        await server.serve_forever()

    asyncio.run(main())


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def storm(url: str, callbacks: int) -> dict[str, float]:
    app = create_app(Settings(clock="manual", callback_url=url))
    runner = web.AppRunner(app)
    await runner.setup()  # starts the dispatcher's session and the scheduler, as the server does
    try:
        service = app[SERVICE]
        for i in range(callbacks):
            body = {"applicationId": "storm", "from": "+15554443333", "to": [f"+1555{i:07d}"], "text": "retry storm"}
            service.send(ACCOUNT, body)
        started, cpu_started = time.perf_counter(), time.process_time()
        await service.scheduler.advance(WINDOW)
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        journal = list(service.store.callbacks(ACCOUNT))
        attempts = sum(len(c.attempts) for c in journal)
        exhausted = sum(1 for c in journal if c.state == "exhausted")
        return {"wall": wall, "cpu": cpu, "attempts": attempts, "exhausted": exhausted, "callbacks": len(journal)}
    finally:
        await runner.cleanup()


def run(mode: str, callbacks: int) -> dict[str, float]:
    # This process stands for the CLI's, garbage collector settings included.
    with tuned_gc():
        return _run(mode, callbacks)


def _run(mode: str, callbacks: int) -> dict[str, float]:
    if mode == "refused":
        return asyncio.run(storm(f"http://127.0.0.1:{_closed_port()}/callbacks", callbacks))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    port = sock.getsockname()[1]
    proc = multiprocessing.get_context("fork").Process(target=_serve_500, args=(sock,), daemon=True)
    proc.start()
    sock.close()
    try:
        return asyncio.run(storm(f"http://127.0.0.1:{port}/callbacks", callbacks))
    finally:
        proc.terminate()
        proc.join()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--callbacks", type=int, default=10_000, help="how many callbacks (default 10000)")
    parser.add_argument("--mode", choices=["500", "refused", "both"], default="both", help="how the webhook fails")
    args = parser.parse_args()
    print(f"retry storm: {args.callbacks} callbacks, manual clock advanced {WINDOW // 3600} h "
          f"(Python {platform.python_version()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f})")
    # CPU s: the emulator process's own CPU time, less sensitive than wall time to a busy machine.
    print(f"{'webhook':<20} {'wall s':>8} {'CPU s':>7} {'attempts':>9} {'attempts/s':>11} {'exhausted':>12}")
    modes = ["500", "refused"] if args.mode == "both" else [args.mode]
    for mode in modes:
        r = run(mode, args.callbacks)
        label = "answers 500" if mode == "500" else "refuses connections"
        print(f"{label:<20} {r['wall']:>8.2f} {r['cpu']:>7.2f} {r['attempts']:>9} {r['attempts'] / r['wall']:>11.0f} "
              f"{r['exhausted']:>6}/{r['callbacks']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
