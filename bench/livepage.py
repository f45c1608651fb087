"""A live web page at 100,000 stored messages: what two open pages cost a send, and how soon a
page hears of a message (docs/ui.md, 'Live updates').

    python bench/livepage.py [--messages N] [--rate R] [--seconds S] [--pages P]

1. Starts the emulator (realtime clock, default scenario: every send gets its status events)
   and stores N messages (default 100,000) through the API, 32 sends in flight, to 2,000
   handsets from 10 of our numbers, some tagged.
2. Sends at a fixed rate R (open loop, default 200/s) for S seconds with no page open: the
   202 latency of each send, from the moment it was due.
3. The same with P pages open (default 2), each in a process of its own doing what app.js
   does: read the first page of conversations and the thread of the first one, then on every
   event read the changed conversations' rows by key and the changed messages of its thread by
   id, and the clock once a second. Each page records when the event naming a message arrived,
   and when the rows it read for it were in. Sends go on at rate R while the pages open (their
   first read builds the emulator's index): the longest 202 latency then is the stall a first
   page open causes.
4. Step 2 again, so that a drift of the machine's load shows.

Prints a table and, as its last line, JSON. Times are time.monotonic(), one clock for every
process on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
AUTH = aiohttp.BasicAuth("user", "pass")
ACCOUNT = "9900000"
OURS = [f"+1555444{n:04d}" for n in range(10)]


def send_body(i: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "applicationId": "bench",
        "from": OURS[i % len(OURS)],
        "to": [f"+1777{i % 2000:07d}"],
        "text": f"benchmark message {i}",
    }
    if i % 10 == 0:
        body["tag"] = f"campaign-{i % 7}"
    return body


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


# -- the sender ---------------------------------------------------------------------------


async def store(url: str, count: int, start: int = 0) -> float:
    """Store ``count`` messages, 32 sends in flight; returns the seconds it took."""
    target = f"{url}/api/v2/users/{ACCOUNT}/messages"
    queue = iter(range(start, start + count))
    begun = time.monotonic()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32)) as session:

        async def worker() -> None:
            for i in queue:
                async with session.post(target, json=send_body(i), auth=AUTH) as resp:
                    await resp.read()
                    if resp.status != 202:
                        raise RuntimeError(f"send {i}: {resp.status}")

        await asyncio.gather(*(worker() for _ in range(32)))
    return time.monotonic() - begun


async def open_loop(
    url: str, rate: float, seconds: float, start: int, until: asyncio.Event | None = None
) -> dict[str, Any]:
    """Send at ``rate``/s for ``seconds`` (or until ``until`` is set): each send's latency from
    when it was due, and when its 202 came."""
    target = f"{url}/api/v2/users/{ACCOUNT}/messages"
    latencies: list[float] = []
    accepted: dict[str, float] = {}
    errors = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as session:

        async def one(i: int, due: float) -> None:
            nonlocal errors
            async with session.post(target, json=send_body(i), auth=AUTH) as resp:
                data = await resp.read()
                now = time.monotonic()
                if resp.status != 202:
                    errors += 1
                    return
                latencies.append((now - due) * 1000)
                accepted[json.loads(data)["id"]] = now

        t0 = time.monotonic() + 0.1
        tasks = []
        n = int(rate * seconds)
        for k in range(n):
            if until is not None and until.is_set():
                n = k
                break
            due = t0 + k / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(start + k, due)))
        await asyncio.gather(*tasks)
    return {
        "sent": n,
        "errors": errors,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies) if latencies else float("nan"),
        "accepted": accepted,
    }


# -- a page, as app.js behaves ----------------------------------------------------------------


async def page(url: str, heard: dict[str, float], shown: dict[str, float], ready: asyncio.Event) -> None:
    ui = f"{url}/_emulator/ui"
    async with aiohttp.ClientSession() as session:

        async def get(path: str, params: Any = None) -> Any:
            async with session.get(ui + path, params=params) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"{path}: {resp.status} {await resp.text()}")
                return await resp.json()

        async with session.get(f"{ui}/events", timeout=aiohttp.ClientTimeout(total=None)) as stream:
            first = await get("/conversations", {"limit": "50", "count": "1"})
            selected = first["conversations"][0]["key"]
            await get("/thread", {"conversation": selected, "limit": "50"})

            async def clock() -> None:
                while True:
                    async with session.get(f"{url}/_emulator/clock") as resp:
                        await resp.read()
                    await asyncio.sleep(1)

            ticking = asyncio.create_task(clock())
            ready.set()
            pending: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()

            async def reader() -> None:
                name = ""
                async for raw in stream.content:
                    line = raw.decode().rstrip("\n")
                    if line.startswith("event: "):
                        name = line[7:]
                    elif line.startswith("data: ") and name in ("change", "reset", "resync"):
                        now = time.monotonic()
                        data = json.loads(line[6:])
                        for m in data["messages"]:
                            heard.setdefault(m["id"], now)
                        pending.put_nowait(data["messages"])

            async def catch_up() -> None:
                # One read at a time; events that came meanwhile are read together, as app.js does.
                while True:
                    changed = [await pending.get()]
                    while not pending.empty():
                        changed.append(pending.get_nowait())
                    messages = [m for batch in changed for m in batch]
                    keys = list(dict.fromkeys(m["conversation"] for m in messages if m["conversation"]))
                    ids = [m["id"] for m in messages if m["conversation"] == selected]
                    reads = []
                    for i in range(0, len(keys), 100):
                        reads.append(get("/conversations", [("key", k) for k in keys[i : i + 100]]))
                    if ids:
                        reads.append(get("/messages", [("id", m) for m in ids[:100]]))
                    await asyncio.gather(*reads)
                    now = time.monotonic()
                    for m in messages:
                        shown.setdefault(m["id"], now)

            try:
                await asyncio.gather(reader(), catch_up())
            finally:
                ticking.cancel()


async def pages_main(url: str, count: int, out: str) -> None:
    heard: list[dict[str, float]] = [{} for _ in range(count)]
    shown: list[dict[str, float]] = [{} for _ in range(count)]
    readies = [asyncio.Event() for _ in range(count)]
    tasks = [asyncio.create_task(page(url, heard[i], shown[i], readies[i])) for i in range(count)]
    await asyncio.gather(*(r.wait() for r in readies))
    print("ready", flush=True)
    # Until told to stop (a line on stdin).
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for t in tasks:
        t.cancel()
    Path(out).write_text(json.dumps({"heard": heard, "shown": shown}))


# -- orchestration ------------------------------------------------------------------------------


def start_emulator() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--port", "0", "--log-format", "json"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    match = re.search(r"http://127\.0\.0\.1:\d+", process.stdout.readline())
    if not match:
        process.kill()
        raise RuntimeError("the emulator did not start")
    return process, match.group(0)


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def main(args: argparse.Namespace) -> dict[str, Any]:
    process, url = start_emulator()
    try:
        load_seconds = await store(url, args.messages)
        n = args.messages
        await open_loop(url, args.rate, 2, n)  # warm-up
        n += int(args.rate * 2)
        rss_before_pages = rss_mb(process.pid)
        before = await open_loop(url, args.rate, args.seconds, n)
        n += before["sent"]
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
            out = f.name
        pages = subprocess.Popen(
            [sys.executable, __file__, "pages", url, "--pages", str(args.pages), "--out", out],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert pages.stdout is not None and pages.stdin is not None
        opened = time.monotonic()
        # Sends go on while the pages open: the first read builds the emulator's index of the
        # stored messages, which must not stall them (docs/ui.md, 'Live updates').
        page_ready = asyncio.Event()
        while_opening = asyncio.create_task(open_loop(url, args.rate, 600, n, page_ready))
        line = await asyncio.get_running_loop().run_in_executor(None, pages.stdout.readline)
        first_read = time.monotonic() - opened
        page_ready.set()
        opening = await while_opening
        n += opening["sent"]
        if line.strip() != "ready":
            raise RuntimeError("the pages did not open")
        with_pages = await open_loop(url, args.rate, args.seconds, n)
        n += with_pages["sent"]
        await asyncio.sleep(1)  # the last events reach the pages
        pages.stdin.write("stop\n")
        pages.stdin.flush()
        pages.wait(30)
        seen = json.loads(Path(out).read_text())
        os.unlink(out)
        rss_pages = rss_mb(process.pid)
        after = await open_loop(url, args.rate, args.seconds, n)
    finally:
        process.terminate()
        process.wait(10)
    accepted: dict[str, float] = with_pages["accepted"]
    heard = [(t - accepted[mid]) * 1000 for p in seen["heard"] for mid, t in p.items() if mid in accepted]
    shown = [(t - accepted[mid]) * 1000 for p in seen["shown"] for mid, t in p.items() if mid in accepted]
    missed = sum(1 for p in seen["heard"] for mid in accepted if mid not in p)
    no_page = [before["p99_ms"], after["p99_ms"]]
    return {
        "messages": args.messages,
        "load_seconds": load_seconds,
        "rate": args.rate,
        "seconds": args.seconds,
        "pages": args.pages,
        "no_page": {k: v for k, v in before.items() if k != "accepted"},
        "no_page_after": {k: v for k, v in after.items() if k != "accepted"},
        "with_pages": {k: v for k, v in with_pages.items() if k != "accepted"},
        # The sends due while the pages made their first read: the longest is the stall.
        "while_opening": {k: v for k, v in opening.items() if k != "accepted"},
        "opening_ratio": opening["p99_ms"] / min(no_page),
        # Against the better of the two runs without a page: a stall of the machine's in one of
        # them must not make the pages look cheap.
        "ratio": with_pages["p99_ms"] / min(no_page),
        "first_read_ms": first_read * 1000,
        "event_p50_ms": percentile(heard, 50),
        "event_p99_ms": percentile(heard, 99),
        "shown_p50_ms": percentile(shown, 50),
        "shown_p99_ms": percentile(shown, 99),
        "missed": missed,
        "rss_mb_before_pages": rss_before_pages,
        "rss_mb_after_pages": rss_pages,
        "loadavg": os.getloadavg()[0],
    }


def report(r: dict[str, Any]) -> None:
    a, b, c = r["no_page"], r["with_pages"], r["no_page_after"]
    print(f"{r['messages']:,} messages stored in {r['load_seconds']:.0f} s; open loop at {r['rate']:.0f}/s for {r['seconds']:.0f} s")
    print(f"send 202 latency, no page:         p50 {a['p50_ms']:6.1f} ms  p99 {a['p99_ms']:6.1f} ms  max {a['max_ms']:6.1f} ms")
    print(f"send 202 latency, {r['pages']} pages open:    p50 {b['p50_ms']:6.1f} ms  p99 {b['p99_ms']:6.1f} ms  max {b['max_ms']:6.1f} ms")
    print(f"send 202 latency, no page (again): p50 {c['p50_ms']:6.1f} ms  p99 {c['p99_ms']:6.1f} ms  max {c['max_ms']:6.1f} ms")
    print(f"p99 with pages / the better p99 without: {r['ratio']:.2f} (target <= 1.5)")
    print(f"202 -> event at the page: p50 {r['event_p50_ms']:.1f} ms, p99 {r['event_p99_ms']:.1f} ms (target <= 100 ms)")
    print(f"202 -> the page has read the rows: p50 {r['shown_p50_ms']:.1f} ms, p99 {r['shown_p99_ms']:.1f} ms")
    o = r["while_opening"]
    print(f"send 202 latency, pages opening:   p50 {o['p50_ms']:6.1f} ms  p99 {o['p99_ms']:6.1f} ms  max {o['max_ms']:6.1f} ms"
          f" ({o['sent']} sends)")
    print(f"p99 while the pages open / the better p99 without: {r['opening_ratio']:.2f}; longest send stall {o['max_ms']:.0f} ms")
    print(f"first read of the pages: {r['first_read_ms']:.0f} ms; events missed: {r['missed']}; load average {r['loadavg']:.1f}")


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode")
    pages = sub.add_parser("pages", help="(internal) the open pages, in their own process")
    pages.add_argument("url")
    pages.add_argument("--pages", type=int, default=2)
    pages.add_argument("--out", required=True)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--pages", type=int, default=2)
    args = parser.parse_args()
    if args.mode == "pages":
        asyncio.run(pages_main(args.url, args.pages, args.out))
        return
    result = asyncio.run(main(args))
    report(result)
    print(json.dumps(result))


if __name__ == "__main__":
    cli()
