"""Retry storm: N always-failing callbacks, the manual clock advanced through 24 hours.

Measures the callback engine alone: N messages are accepted in process (the accept path has
its own benchmark), then one ``advance`` of 25 virtual hours fires every scheduled attempt.
The failing webhook runs in a separate process so that it does not share the emulator's
core: either a minimal HTTP server answering 500 to everything, or a closed port that
refuses connections.

The target is in attempts/s against the bare-aiohttp accept rate of the same run (>= 1.5),
so that baseline (bench/baseline.py loaded as bench/run.py's accept rows load it) is measured
right before and right after the storms; their mean is the ratio's denominator. RSS is
sampled through each storm: at its start (the messages stored, before the first attempt),
its peak and its end, beside what the journal's attempt records hold.

    .venv/bin/python bench/retry_storm.py [--callbacks N] [--mode 500|refused|both] [--no-baseline]

``--callbacks 100000`` is the 1,000,000-attempt run (minutes; not part of CI).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import socket
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fixed_webhook  # bench/fixed_webhook.py, beside this script
from aiohttp import web

from emulator.app import create_app
from emulator.cli import tuned_gc
from emulator.config import Settings
from emulator.keys import SERVICE
from emulator.state.models import Attempt

HERE = Path(__file__).resolve().parent
TARGET = 1.5  # attempts/s over the bare-aiohttp accept rate of the same run

ACCOUNT = "9900000"
WINDOW = 25 * 3600


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]



def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class RssSampler:
    """The process's RSS every ``interval`` seconds, from a thread (the event loop is busy)."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.start = self.peak = self.end = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_mb())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.end = rss_mb()
        self.peak = max(self.peak, self.end)


def journal_bytes(attempts: list[Attempt]) -> float:
    """What one journaled attempt holds, on average: the record, its slot in the callback's
    list, and its values, each object counted once however many attempts share it (small
    ints, the error texts, a manual clock's instants, the interned status codes)."""
    total = 0
    seen: set[int] = set()
    for attempt in attempts:
        total += sys.getsizeof(attempt) + 8
        for value in (attempt.time, attempt.status, attempt.error, attempt.duration_ms):
            if value is not None and id(value) not in seen:
                seen.add(id(value))
                total += sys.getsizeof(value)
    return total / max(1, len(attempts))


async def storm(url: str, callbacks: int) -> dict[str, Any]:
    app = create_app(Settings(clock="manual", callback_url=url))
    runner = web.AppRunner(app)
    await runner.setup()  # starts the dispatcher's session and the scheduler, as the server does
    try:
        service = app[SERVICE]
        for i in range(callbacks):
            body = {"applicationId": "storm", "from": "+15554443333", "to": [f"+1555{i:07d}"], "text": "retry storm"}
            service.send(ACCOUNT, body)
        blocks = sys.getallocatedblocks()
        with RssSampler() as rss:
            started, cpu_started = time.perf_counter(), time.process_time()
            await service.scheduler.advance(WINDOW)
            wall = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
        # Objects still allocated per attempt once the storm is over: the journal's record and
        # its duration (2, plus the lists' growth); a task, future or exception kept per attempt
        # would add to it.
        blocks = sys.getallocatedblocks() - blocks
        journal = list(service.store.callbacks(ACCOUNT))
        attempts = sum(len(c.attempts) for c in journal)
        exhausted = sum(1 for c in journal if c.state == "exhausted")
        # The journal's own bytes per attempt: RSS growth that is data, not a leak.
        per_attempt = journal_bytes([a for c in journal for a in c.attempts])
        # What must be gone once every callback is exhausted: a leak would be left here.
        left = (len(asyncio.all_tasks()) - 1, service.scheduler.pending(), service.callbacks.pending())
        return {"wall": wall, "cpu": cpu, "attempts": attempts, "exhausted": exhausted, "callbacks": len(journal),
                "rss_start": rss.start, "rss_peak": rss.peak, "rss_end": rss.end, "journal_bytes": per_attempt,
                "blocks": blocks / max(1, attempts), "left": left}
    finally:
        await runner.cleanup()


def run(mode: str, callbacks: int) -> dict[str, Any]:
    # This process stands for the CLI's, garbage collector settings included.
    with tuned_gc():
        return _run(mode, callbacks)


def _run(mode: str, callbacks: int) -> dict[str, Any]:
    if mode == "refused":
        return asyncio.run(storm(f"http://127.0.0.1:{_closed_port()}/callbacks", callbacks))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    port = sock.getsockname()[1]
    proc = multiprocessing.get_context("fork").Process(target=fixed_webhook.serve, args=(sock, '500 Internal Server Error'), daemon=True)
    proc.start()
    sock.close()
    try:
        return asyncio.run(storm(f"http://127.0.0.1:{port}/callbacks", callbacks))
    finally:
        proc.terminate()
        proc.join()


def accept_baseline(seconds: float = 3) -> float:
    """The bare-aiohttp accept rate now, in req/s: bench/baseline.py loaded as bench/run.py does."""
    sys.path.insert(0, str(HERE))
    import run as harness  # bench/run.py: the same server, load generator and connections

    with harness.baseline("accept") as server:
        harness.load(server.url, 1, 32)  # warm-up
        return harness.load(server.url, seconds, 32)[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--callbacks", type=int, default=10_000, help="how many callbacks (default 10000)")
    parser.add_argument("--mode", choices=["500", "refused", "both"], default="both", help="how the webhook fails")
    parser.add_argument("--no-baseline", action="store_true", help="skip the bare-aiohttp accept measurement")
    args = parser.parse_args()
    print(f"retry storm: {args.callbacks} callbacks, manual clock advanced {WINDOW // 3600} h "
          f"(Python {platform.python_version()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f})", flush=True)
    accept = [] if args.no_baseline else [accept_baseline()]
    modes = ["500", "refused"] if args.mode == "both" else [args.mode]
    results = {mode: run(mode, args.callbacks) for mode in modes}
    if accept:
        accept.append(accept_baseline())
        print(f"bare aiohttp accept: {statistics.mean(accept):.0f} req/s (before {accept[0]:.0f}, after "
              f"{accept[1]:.0f}; load {os.getloadavg()[0]:.1f})")
    # CPU s: the emulator process's own CPU time, less sensitive than wall time to a busy machine.
    # ratio: attempts/s over the bare accept rate. RSS MB: before the first attempt, peak, after
    # the last. B/attempt: RSS growth per attempt; journal B: the attempt records' own bytes;
    # objs/attempt: memory blocks still allocated per attempt after the storm.
    print(f"{'webhook':<20} {'wall s':>8} {'CPU s':>7} {'attempts':>9} {'attempts/s':>11} {'ratio':>6} {'target':>7} "
          f"{'exhausted':>13} {'RSS MB start/peak/end':>22} {'B/attempt':>10} {'journal B':>10} {'objs/attempt':>13}")
    for mode in modes:
        r = results[mode]
        label = "answers 500" if mode == "500" else "refuses connections"
        rate = r["attempts"] / r["wall"]
        ratio = f"{rate / statistics.mean(accept):.2f}" if accept else "-"
        grown = (r["rss_end"] - r["rss_start"]) * 2**20 / max(1, r["attempts"])
        rss = f"{r['rss_start']:.0f}/{r['rss_peak']:.0f}/{r['rss_end']:.0f}"
        exhausted = f"{r['exhausted']}/{r['callbacks']}"
        print(f"{label:<20} {r['wall']:>8.2f} {r['cpu']:>7.2f} {r['attempts']:>9} {rate:>11.0f} {ratio:>6} "
              f"{'>= ' + str(TARGET):>7} {exhausted:>13} {rss:>22} {grown:>10.0f} {r['journal_bytes']:>10.0f} {r['blocks']:>13.2f}")
        tasks, scheduled, pending = r["left"]
        if tasks or scheduled or pending:
            print(f"  left after the storm: {tasks} tasks, {scheduled} scheduled, {pending} pending callbacks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
