"""In-process measurements, each in a fresh interpreter (run by bench/run.py).

    python bench/inprocess.py memory [--messages N]   RSS with N stored messages and their callbacks
    python bench/inprocess.py startup [--runs N]      in-process emulator start, median of N

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp import web

from emulator.app import create_app
from emulator.config import Settings
from emulator.keys import SERVICE


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def memory(n: int) -> dict:
    app = create_app(Settings(clock="manual", callback_url="http://127.0.0.1:9/callbacks"))
    runner = web.AppRunner(app)
    await runner.setup()
    service = app[SERVICE]
    # Each send gets its own strings, as in the server, where every request's JSON is parsed
    # (emulator/web/bodies.py) and its account id read from the path: nothing is shared by
    # accident with the previous message.
    template = '{"applicationId":"93de2206-9669-4e07-948d-329f4b722ee2","from":"+15554443333",' \
        '"to":["+1777%07d"],"text":"memory benchmark"}'
    account = "9900000"
    gc.collect()
    before = rss_mb()
    started = time.perf_counter()
    for i in range(n):
        body = json.loads(template % i)
        result = service.send(account[:3] + account[3:], body)
        assert not isinstance(result, list), result
    seconds = time.perf_counter() - started
    gc.collect()
    after = rss_mb()
    messages = sum(1 for _ in service.store.messages())
    callbacks = sum(1 for _ in service.store.callbacks())
    await runner.cleanup()
    return {"messages": messages, "callbacks": callbacks, "rss_mb": after, "rss_empty_mb": before,
            "bytes_per_message": (after - before) * 1024 * 1024 / max(1, messages), "seconds": seconds}


async def startup(runs: int) -> dict:
    times = []
    try:
        from emulator.testing.runner import Emulator
    except ImportError:  # an older tree: the factory and an AppRunner, as the fixture does
        Emulator = None  # type: ignore[assignment]
    for _ in range(runs):
        started = time.perf_counter()
        if Emulator is not None:
            emu = Emulator(clock="manual")
            await emu.start()
            times.append((time.perf_counter() - started) * 1000)
            await emu.stop()
        else:
            runner = web.AppRunner(create_app(Settings(clock="manual")))
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            times.append((time.perf_counter() - started) * 1000)
            await runner.cleanup()
    return {"median_ms": statistics.median(times), "max_ms": max(times), "runs": runs,
            "runner": "emulator.testing.runner.Emulator" if Emulator is not None else "create_app + AppRunner"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["memory", "startup"])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    result = asyncio.run(memory(args.messages) if args.what == "memory" else startup(args.runs))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
